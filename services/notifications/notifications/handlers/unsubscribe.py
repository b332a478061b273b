"""The signed unsubscribe link in every email: making it, showing what it would stop, and applying it."""
from __future__ import annotations

from urllib.parse import quote

from shared.errors import DomainError
from shared.events.notifications import ChannelUnsubscribed
from shared.unit_of_work import UnitOfWork

from notifications import model
from notifications.config import Settings
from notifications.repository import Store


def unsubscribe_url(settings: Settings, organization_id: str, person_id: str, channel: str) -> str:
    token = model.sign_unsubscribe(settings.link_secret, organization_id, person_id, channel)
    return f"{settings.public_base_url}/v1/unsubscribe?token={quote(token)}"


def _claims(settings: Settings, token: str) -> dict:
    try:
        return model.verify_unsubscribe(settings.link_secret, token)
    except model.BadToken:
        raise DomainError("This unsubscribe link is not valid.",
                          errors={"token": ["Not a valid unsubscribe token."]}) from None


def request(store: Store, settings: Settings, token: str) -> dict:
    """What a signed link would stop, without changing anything (the page a GET shows):
    {'organization_id', 'person_id', 'channel', 'organization_name' (None when not known)}."""
    claims = _claims(settings, token)
    return {**claims, "organization_name": store.organization_name(claims["organization_id"])}


def apply(uow: UnitOfWork, settings: Settings, token: str) -> dict:
    """Turn that person's channel off (doing it again changes nothing more), with the audit entry."""
    claims = _claims(settings, token)
    store = Store.of(uow)
    before = store.find_one("preferences", {"_id": claims["person_id"], "organization_id": claims["organization_id"]})
    store.turn_channel_off(claims["organization_id"], claims["person_id"], claims["channel"])
    if ((before or {}).get("channels") or {}).get(claims["channel"]) is not False:  # once per change
        uow.emit(ChannelUnsubscribed, {"organization_id": claims["organization_id"],
                                       "recipient_id": claims["person_id"], "channel": claims["channel"]})
    store.audit(None, "update", "notification_preferences", claims["person_id"], claims["organization_id"],
                via="unsubscribe_link", fields=[f"channels.{claims['channel']}"])
    return {**claims, "organization_name": store.organization_name(claims["organization_id"])}
