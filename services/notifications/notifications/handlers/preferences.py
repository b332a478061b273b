"""Use cases of a person's notification preferences (channel choices, quiet hours, digest) and of the
contact directory as the API shows it (who coordinates a site)."""
from __future__ import annotations

from shared.errors import NotFound, PreconditionFailed
from shared.mongo import utcnow
from shared.unit_of_work import UnitOfWork

from notifications import access, model
from notifications.repository import Store


def _view(store: Store, organization_id: str, person_id: str, contact: dict | None, prefs: dict | None) -> dict:
    prefs = prefs or {}
    consents = store.consents(organization_id, person_id) if contact and contact.get("kind") == "member" else []
    kind = (contact or {}).get("kind", "member")
    effective = model.channels_for(contact, kind, consents, prefs, utcnow()) if contact else []
    return {"person_id": person_id, "channels": {k: v for k, v in (prefs.get("channels") or {}).items() if v is not None},
            "quiet_hours": prefs.get("quiet_hours"), "digest": bool(prefs.get("digest")),
            "time_zone": (contact or {}).get("time_zone"), "effective_channels": effective,
            "version": prefs.get("version", 0)}


def read(store: Store, principal, organization_id: str, person_id: str) -> dict:
    """A person's preferences and where messages go now (``version`` is what the ETag is made of)."""
    contact = access.person_in_reach(store, principal, organization_id, person_id)
    if access.reads_are_audited(contact):
        store.audit(principal, "read", "notification_preferences", person_id, organization_id)
    return _view(store, organization_id, person_id, contact, store.preferences(organization_id, person_id))


def version(store: Store, principal, organization_id: str, person_id: str) -> int:
    """The version of a person's preferences the caller may change (0: none yet)."""
    access.person_in_reach(store, principal, organization_id, person_id)
    return (store.preferences(organization_id, person_id) or {}).get("version", 0)


def save(uow: UnitOfWork, principal, organization_id: str, person_id: str, body: dict, expected_version: int) -> dict:
    """Replace a person's preferences if they are still at ``expected_version``, with the audit entry."""
    store = Store.of(uow)
    contact = access.person_in_reach(store, principal, organization_id, person_id)
    body["channels"] = {k: v for k, v in (body.get("channels") or {}).items() if v is not None}
    current = store.preferences(organization_id, person_id)
    if (current or {}).get("version", 0) != expected_version:
        raise PreconditionFailed("The preferences changed since you read them; read them again and retry.")
    doc = {"_id": person_id, "organization_id": organization_id, "channels": body.get("channels") or {},
           "quiet_hours": body.get("quiet_hours"), "digest": bool(body.get("digest")), "updated_at": utcnow(),
           "version": expected_version + 1}
    store.replace_preferences(doc)
    store.audit(principal, "update", "notification_preferences", person_id, organization_id, fields=sorted(body))
    return _view(store, organization_id, person_id, contact, doc)


def site_coordinators(store: Store, principal, organization_id: str, site_id: str) -> list[dict]:
    """Who is told about the site's risk flags and long waits; NotFound for a site that is not the
    organization's (or that intake never announced), or not the caller's."""
    if not access.may_see_site(principal, site_id) or not store.knows_site(organization_id, site_id):
        raise NotFound("No such site.")
    return store.coordinator_directory(organization_id, site_id)
