"""Use cases of the notifications service: one function per subscribed event, the delivery jobs
(send due deliveries, release held ones, daily digests) and the API's use cases.

The rule that makes "exactly once" hold: an event handler only RECORDS deliveries (pending, held or
for the digest) in the consumer's transaction, keyed by (event id, recipient, channel) under a unique
index; nothing is sent there. The delivery job then claims one due delivery at a time (atomically),
sends it outside any transaction, and records the outcome with its NotificationDelivered or
NotificationFailed event in one transaction. A redelivered event finds its deliveries already there.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote

from shared.audit import audit_entry
from shared.events.notifications import NotificationDelivered, NotificationFailed
from shared.messaging.envelope import Event
from shared.mongo import is_unavailable, utcnow
from shared.unit_of_work import UnitOfWork

from notifications import model, templates
from notifications.channels import Channels, SendFailed
from notifications.config import Settings
from notifications.repository import Repository, new_id

log = logging.getLogger(__name__)

DIGEST_EVENT_TYPE = "org.recoverynet.notifications.digest.v1"


# --- the contact directory and consents (restricted contacts topic; members topic) ----------------

def on_contact_changed(evt: Event, uow: UnitOfWork) -> None:
    d = evt.data
    if Repository.is_erased(uow.db, evt.organization_id, d["person_id"], uow.session):
        return  # the contacts topic can lag behind the erasure: an erased person stays erased
    Repository.save_contact(uow, evt.organization_id, d["person_id"], {
        "kind": d["person_kind"], "display_name": d["display_name"], "email": d.get("email"),
        "phone": d.get("phone"), "preferred_language": d.get("preferred_language") or "en",
        "time_zone": d["time_zone"], "site_ids": d.get("site_ids") or [], "channels": d.get("channels") or [],
    })


def on_member_snapshot(evt: Event, uow: UnitOfWork) -> None:
    """MemberRegistered / MemberUpdated / MemberConsentChanged carry the whole set of consents in force."""
    if Repository.is_erased(uow.db, evt.organization_id, evt.data["member_id"], uow.session):
        return
    Repository.save_consents(uow, evt.organization_id, evt.data["member_id"], evt.data.get("consents") or [])


def on_member_erased(evt: Event, uow: UnitOfWork) -> None:
    Repository.erase_person(uow, evt.organization_id, evt.data["member_id"])


def on_coordinator_assigned(evt: Event, uow: UnitOfWork) -> None:
    """The site coordinator directory: risk flags and waiting members reach the coordinators of the
    member's site. Their addresses come from ContactChanged (person_kind staff) like anyone's."""
    Repository.save_coordinator(uow, evt.organization_id, evt.data["staff_id"], evt.data.get("site_ids") or [])
    # A risk flag (or long wait) that found no coordinator for the site -- CoordinatorAssigned travels on
    # another topic and can arrive after it -- now reaches the coordinator named for that site.
    now = utcnow()
    for failed in Repository.untold_coordinator_messages(uow.db, evt.organization_id, evt.data.get("site_ids") or [],
                                                         uow.session):
        base = {k: v for k, v in failed.items() if k not in (
            "_id", "key", "recipient_id", "recipient_kind", "recipient_role", "channel", "status", "next_attempt_at",
            "held_until", "last_error", "delivered_at", "attempts", "lease_until", "lease_id", "takeovers")}
        _record_for_person(uow, {**base, "attempts": 0, "created_at": now, "updated_at": now, "delivered_at": None,
                                 "last_error": None}, failed["priority"], evt.data["staff_id"], "staff", "coordinator",
                           failed.get("event_data", {}).get("time_zone"), now)


def on_organization_created(evt: Event, uow: UnitOfWork) -> None:
    """The organization's name, so the unsubscribe page can say whose emails stop."""
    Repository.save_organization(uow, evt.organization_id, evt.data["name"])


def on_site_changed(evt: Event, uow: UnitOfWork) -> None:
    """SiteCreated / SiteUpdated: which sites are the organization's, and their names (reasons name a site
    by name; its id stays in the delivery's site_id)."""
    Repository.save_site(uow, evt.organization_id, evt.data["site_id"], evt.data["name"])


def on_meeting_snapshot(evt: Event, uow: UnitOfWork) -> None:
    """MeetingCreated / MeetingUpdated: remember the meeting's name; an update also tells registrants."""
    Repository.save_meeting(uow, evt.organization_id, evt.data["meeting_id"], evt.data["name"], evt.data.get("time_zone"))
    on_notifiable_event(evt, uow)


# --- events that tell people something --------------------------------------------------------------

def on_notifiable_event(evt: Event, uow: UnitOfWork) -> None:
    """Record one delivery per recipient and channel (and one per subscribed webhook endpoint)."""
    plan = model.plan_for(evt.type, evt.data)
    if plan is None:
        return
    now = utcnow()
    org = evt.organization_id
    site_id = evt.data.get("site_id")
    base = {"organization_id": org, "site_id": site_id, "source_event_id": evt.id, "source_event_type": evt.type,
            "source_event_time": evt.time, "template": plan.template, "priority": plan.priority,
            "event_data": evt.data, "meeting": Repository.meeting_of(uow.db, org, evt.data.get("meeting_id"), uow.session),
            "attempts": 0, "created_at": now, "updated_at": now,
            "delivered_at": None, "last_error": None}
    for recipient in plan.recipients:
        if recipient.person_id == model.COORDINATORS:
            person_ids = Repository.coordinators_of_site(uow.db, org, site_id, uow.session)
            if not person_ids:
                _nobody_to_tell(evt, uow, base, site_id)
        else:
            person_ids = [recipient.person_id]
        for person_id in person_ids:
            _record_for_person(uow, base, plan.priority, person_id, recipient.kind, recipient.role,
                               evt.data.get("time_zone"), now)
    for hook in Repository.webhooks_for(uow.db, org, evt.type, uow.session):
        Repository.record_delivery(uow, {
            **base, "_id": new_id(), "key": model.idempotency_key(evt.id, hook["_id"], "webhook"),
            "recipient_id": hook["_id"], "recipient_kind": "webhook", "recipient_role": "webhook",
            "channel": "webhook", "status": "pending", "next_attempt_at": now, "held_until": None,
        })


def _record_for_person(uow: UnitOfWork, base: dict, priority: str, person_id: str, kind: str, role: str,
                       event_time_zone: str | None, now: datetime) -> None:
    """One delivery per channel the person receives this message on (keyed by source event, person, channel)."""
    org = base["organization_id"]
    if Repository.is_erased(uow.db, org, person_id, uow.session):
        return
    contact, consents, prefs = Repository.person_state(uow.db, org, person_id, uow.session)
    if contact is None or (kind == "member" and consents is None):
        # Not in the directory yet, or the member's consents not known yet (the contacts and members
        # topics may lag behind this one): try every channel; the send-time check decides, and retries
        # until they arrive or the tries run out.
        channels = list(model.CHANNELS)
        time_zone = contact.get("time_zone") if contact else event_time_zone
    else:
        channels = model.channels_for(contact, kind, consents, prefs, now)
        time_zone = contact.get("time_zone")
    status, at = model.when_to_send(priority, now, time_zone, prefs)
    for channel in channels:
        Repository.record_delivery(uow, {
            **base, "_id": new_id(), "key": model.idempotency_key(base["source_event_id"], person_id, channel),
            "recipient_id": person_id, "recipient_kind": kind, "recipient_role": role,
            "channel": channel, "status": status, "next_attempt_at": at,
            "held_until": at if status == "held" else None,
        })


def _nobody_to_tell(evt: Event, uow: UnitOfWork, base: dict, site_id: str | None) -> None:
    """No coordinator is known for the site: the message cannot go anywhere. Say so loudly — a failed
    delivery in the log and a NotificationFailed event — rather than drop it silently."""
    log.warning("no coordinator known for the site; nobody to tell",
                extra={"event_id": evt.id, "event_type": evt.type, "site_id": site_id})
    recipient = f"coordinators-of:{site_id}"
    site_name = Repository.site_name(uow.db, evt.organization_id, site_id, uow.session)
    # Coordinators read this reason: the site by its name; its id is in the delivery's site_id.
    where = f'the site "{site_name}"' if site_name else "the member's site"
    reason = f"no coordinator is known for {where}: intake has not named one (CoordinatorAssigned)"
    doc = {**base, "site_name": site_name, "_id": new_id(), "key": model.idempotency_key(evt.id, recipient, "inapp"),
           "recipient_id": recipient, "recipient_kind": "staff", "recipient_role": "coordinator", "channel": "inapp",
           "status": "failed", "next_attempt_at": None, "held_until": None, "last_error": reason}
    if Repository.record_delivery(uow, doc):
        uow.emit(NotificationFailed, {"organization_id": base["organization_id"], "delivery_id": doc["_id"],
                                      "recipient_id": recipient, "recipient_kind": "staff", "channel": "inapp",
                                      "source_event_id": evt.id, "source_event_type": evt.type, "attempts": 0,
                                      "reason": reason})


# --- the delivery jobs ------------------------------------------------------------------------------

class Cancelled(Exception):
    """The delivery must not go out any more (consent revoked, channel off, endpoint removed)."""


def unsubscribe_url(settings: Settings, organization_id: str, person_id: str, channel: str) -> str:
    token = model.sign_unsubscribe(settings.link_secret, organization_id, person_id, channel)
    return f"{settings.public_base_url}/v1/unsubscribe?token={quote(token)}"


class Deliverer:
    """Sends due deliveries. Safe with several worker copies: a delivery is claimed atomically."""

    def __init__(self, settings: Settings, repo: Repository, channels: Channels | None = None):
        self.settings, self.repo = settings, repo
        self.channels = channels or Channels(settings)

    def run_once(self, budget_seconds: float = 5.0, batch: int = 50) -> int:
        """Send what is due, for up to ``budget_seconds`` (then the worker's other jobs get their turn and
        this one runs again at once). Returns how many deliveries this copy sent or settled."""
        done, deadline = 0, time.monotonic() + budget_seconds
        with self.channels.email.connection_reuse():
            while time.monotonic() < deadline:
                due = self.repo.due_deliveries(utcnow(), batch)
                if not due:
                    break
                for one in due:
                    delivery = self._claim(one)
                    if delivery is not None:  # else another copy took it
                        self.deliver(delivery)
                        done += 1
                    if time.monotonic() >= deadline:
                        break
        return done

    def _claim(self, due: dict) -> dict | None:
        lease_id = new_id()
        try:
            return self.repo.claim(due, utcnow(), self.settings.sending_lease_seconds, lease_id)
        except Exception:
            # The database failed half-way: the lease may be ours without our knowing. Nothing was sent,
            # so give the delivery back rather than leave it 'sending' until the lease lapses.
            self._when_database_answers(due["_id"], lambda: self.repo.release_unsent(due["_id"], lease_id))
            raise

    def deliver(self, d: dict) -> None:
        attempts = d.get("attempts", 0) + 1
        inapp_doc = None
        try:
            inapp_doc = self._send(d)
        except Cancelled as exc:
            self._finish(d, {"status": "cancelled", "last_error": str(exc), "next_attempt_at": None})
            return
        except SendFailed as exc:
            self._failed(d, attempts, str(exc), permanent=exc.permanent)
            return
        except Exception as exc:  # noqa: BLE001 - anything else is this try's failure, retried like one
            log.exception("delivery failed unexpectedly", extra={"delivery_id": d["_id"]})
            self._failed(d, attempts, f"error: {exc!r}"[:500])
            return
        now = utcnow()
        self._finish(d, {"status": "delivered", "attempts": attempts, "delivered_at": now, "last_error": None,
                         "next_attempt_at": None},
                     event=(NotificationDelivered, {"attempts": attempts}), inapp=inapp_doc)

    def _failed(self, d: dict, attempts: int, reason: str, *, permanent: bool = False) -> None:
        s = self.settings
        status, next_at = model.after_failure(s.max_attempts if permanent else attempts, s.max_attempts, utcnow(),
                                              s.retry_base_seconds, s.retry_multiplier)
        event = (NotificationFailed, {"attempts": attempts, "reason": reason[:1000]}) if status == "failed" else None
        self._finish(d, {"status": status, "attempts": attempts, "last_error": reason, "next_attempt_at": next_at},
                     event=event)

    def _finish(self, d: dict, changes: dict, *, event=None, inapp: dict | None = None) -> None:
        def work(uow: UnitOfWork) -> None:
            if not Repository.finish_delivery(uow, d, changes):
                return  # someone else took it over after our lease ran out: their outcome counts
            if inapp is not None:
                Repository.add_inapp_message(uow, inapp)
            if event is not None:
                declaration, extra = event
                uow.emit(declaration, {
                    "organization_id": d["organization_id"], "delivery_id": d["_id"],
                    "recipient_id": d["recipient_id"], "recipient_kind": d["recipient_kind"],
                    "channel": d["channel"], "source_event_id": d["source_event_id"],
                    "source_event_type": d["source_event_type"], **extra,
                })
        # The message may already be out: if the database is away now, wait for it (most of the lease)
        # rather than leave the delivery 'sending' until its lease lapses (then it would be sent again).
        self._when_database_answers(d["_id"], lambda: self.repo.transaction(work))

    def _when_database_answers(self, delivery_id: str, write: Callable[[], object]) -> None:
        """Run ``write``, again every second while the database is unavailable, for at most three
        quarters of the sending lease (a delivery's state must be written before the lease lapses)."""
        deadline = time.monotonic() + 0.75 * self.settings.sending_lease_seconds
        while True:
            try:
                write()
                return
            except Exception as exc:
                if not is_unavailable(exc) or time.monotonic() > deadline:
                    raise
                log.warning("database unavailable while writing a delivery's state; waiting",
                            extra={"delivery_id": delivery_id, "error": type(exc).__name__})
                time.sleep(1.0)

    # -- one try ----------------------------------------------------------------------------------
    def _send(self, d: dict) -> dict | None:
        if d["channel"] == "webhook":
            self._send_webhook(d)
            return None
        org, person_id, channel = d["organization_id"], d["recipient_id"], d["channel"]
        now = utcnow()
        contact, consents, prefs = Repository.person_state(self.repo.db, org, person_id)
        if contact is None:
            raise SendFailed("the person is not in the contact directory (yet)")
        if d["recipient_kind"] == "member" and consents is None:
            # unknown is not refused: the member's registration event has not arrived yet
            raise SendFailed("the member's consents are not known (yet)")
        if channel not in model.channels_for(contact, d["recipient_kind"], consents, prefs, now):
            raise Cancelled(f"no consent or no choice for {channel} (or no address) at send time")
        link = unsubscribe_url(self.settings, org, person_id, "email") if channel == "email" else None
        message = self._render(d, contact, unsubscribe=link)
        if channel == "email":
            address = self.channels.email.check_address(contact["email"])
            msg = self.channels.email.build(to=address, subject=message["subject"], text=message["text"],
                                            html=message["html"], delivery_id=d["_id"], unsubscribe_url=link)
            self.channels.email.send(msg)
            return None
        if channel == "sms":
            self.channels.sms.send(to=contact["phone"], text=message["text"], delivery_id=d["_id"])
            return None
        if channel == "inapp":
            return {"_id": d["_id"], "organization_id": org, "person_id": person_id, "title": message["subject"],
                    "body": message["text"], "language": message["language"], "template": d["template"],
                    "priority": d["priority"], "source_event_id": d["source_event_id"],
                    "source_event_type": d["source_event_type"], "created_at": now, "read_at": None}
        raise Cancelled(f"unknown channel {channel}")

    def _render(self, d: dict, contact: dict, unsubscribe: str | None = None) -> dict:
        kind, channel = d["template"], d["channel"]
        context = {"name": contact.get("display_name") or "", "role": d.get("recipient_role"),
                   "data": d.get("event_data") or {}, "meeting": d.get("meeting") or {}, "items": []}
        if kind == "digest":
            context["items"] = [self._digest_line(item, contact) for item in (d.get("event_data") or {}).get("items", [])]
        overrides = self.repo.template_overrides(d["organization_id"], kind, channel)
        kwargs = dict(preferred_language=contact.get("preferred_language"), time_zone=contact.get("time_zone"),
                      context=context, unsubscribe_url=unsubscribe)
        try:
            return templates.render(kind, channel, overrides=overrides, **kwargs)
        except templates.TemplateProblem as exc:
            if not overrides:
                raise
            log.warning("organization template does not render; using the shipped one",
                        extra={"delivery_id": d["_id"], "error": str(exc)})
            return templates.render(kind, channel, **kwargs)

    def _digest_line(self, item: dict, contact: dict) -> str:
        rendered = templates.render(item["template"], "inapp", preferred_language=contact.get("preferred_language"),
                                    time_zone=contact.get("time_zone"),
                                    context={"name": contact.get("display_name") or "", "role": item.get("role"),
                                             "data": item.get("data") or {}, "meeting": item.get("meeting") or {},
                                             "items": []})
        return rendered["subject"]

    def _send_webhook(self, d: dict) -> None:
        hook = self.repo.get_webhook(d["organization_id"], d["recipient_id"])
        if hook is None or not hook.get("active", True):
            raise Cancelled("the webhook endpoint was removed or turned off")
        body = webhook_body(d)
        self.channels.webhook.send(url=hook["url"], secret=hook["secret"], body=body, delivery_id=d["_id"],
                                   event_type=d["source_event_type"])


def webhook_body(d: dict) -> bytes:
    """What an endpoint receives: the event as a CloudEvents-like JSON object (ids only, no contact details)."""
    time = d.get("source_event_time")
    return json.dumps({
        "specversion": "1.0", "id": d["source_event_id"], "type": d["source_event_type"],
        "source": "/recoverynet/notifications", "time": time.isoformat() if isinstance(time, datetime) else time,
        "organization_id": d["organization_id"], "delivery_id": d["_id"], "data": d.get("event_data") or {},
    }, separators=(",", ":"), sort_keys=True, default=str).encode()


def release_held(repo: Repository, now: datetime | None = None) -> int:
    """Quiet hours ended: held deliveries become due now."""
    return repo.release_held(now or utcnow())


def run_digests(settings: Settings, repo: Repository, now: datetime | None = None) -> int:
    """Once a day per person and channel (from the digest hour in their zone), the low-priority
    messages that waited become one digest delivery."""
    now = now or utcnow()
    made = 0
    for group in repo.digest_groups():
        org, person_id, channel = group["_id"]["o"], group["_id"]["r"], group["_id"]["c"]
        contact = repo.get_contact(org, person_id)
        time_zone = (contact or {}).get("time_zone")

        def work(uow: UnitOfWork) -> bool:
            local_date = model.digest_due(now, time_zone, settings.digest_local_hour,
                                          Repository.last_digest_date(uow, org, person_id, channel))
            if local_date is None:
                return False
            digest_id = new_id()
            items = Repository.take_digest_items(uow, group["ids"], digest_id)
            if not items:
                return False
            Repository.record_delivery(uow, {
                "_id": digest_id, "key": model.idempotency_key(f"digest:{local_date}", person_id, channel),
                "organization_id": org, "site_id": items[0].get("site_id"), "source_event_id": digest_id,
                "source_event_type": DIGEST_EVENT_TYPE, "source_event_time": now, "template": "digest",
                "priority": "low", "attempts": 0, "created_at": now, "updated_at": now, "delivered_at": None,
                "last_error": None, "recipient_id": person_id, "recipient_kind": group["kind"],
                "recipient_role": items[0].get("recipient_role"), "channel": channel, "status": "pending",
                "next_attempt_at": now, "held_until": None,
                "event_data": {"items": [{"template": i["template"], "role": i.get("recipient_role"),
                                          "data": i.get("event_data"), "meeting": i.get("meeting") or {}}
                                         for i in items]},
            })
            Repository.mark_digest_sent(uow, org, person_id, channel, local_date)
            return True

        if repo.transaction(work):
            made += 1
    return made


# --- API use cases ----------------------------------------------------------------------------------

def unsubscribe_request(settings: Settings, repo: Repository, token: str) -> dict:
    """What a signed link would stop, without changing anything (the page a GET shows). Raises model.BadToken.
    {'organization_id', 'person_id', 'channel', 'organization_name' (None when not known)}"""
    claims = model.verify_unsubscribe(settings.link_secret, token)
    return {**claims, "organization_name": repo.organization_name(claims["organization_id"])}


def unsubscribe(settings: Settings, repo: Repository, token: str) -> dict:
    """A signed link from an email: turn that person's channel off. Raises model.BadToken."""
    claims = model.verify_unsubscribe(settings.link_secret, token)
    audit = audit_entry(None, "update", "notification_preferences", claims["person_id"], claims["organization_id"],
                        via="unsubscribe_link", fields=[f"channels.{claims['channel']}"])
    repo.turn_channel_off(claims["organization_id"], claims["person_id"], claims["channel"], audit)
    return {**claims, "organization_name": repo.organization_name(claims["organization_id"])}


def save_preferences(repo: Repository, principal, organization_id: str, person_id: str, body: dict,
                     expected_version: int) -> dict | None:
    audit = audit_entry(principal, "update", "notification_preferences", person_id, organization_id,
                        fields=sorted(body))
    return repo.save_preferences(organization_id, person_id, body, expected_version, audit)


def add_webhook(repo: Repository, organization_id: str, body: dict) -> dict:
    import secrets as _secrets

    now = utcnow()
    return repo.add_webhook({
        "_id": new_id(), "organization_id": organization_id, "url": body["url"],
        "secret": body.get("secret") or _secrets.token_urlsafe(32), "event_types": body.get("event_types") or [],
        "active": body.get("active", True), "description": body.get("description"), "created_at": now,
    })


def save_template(repo: Repository, organization_id: str, kind: str, channel: str, language: str, parts: dict) -> dict:
    """Raises templates.TemplateProblem naming the part that does not compile."""
    allowed = templates.PARTS[channel]
    for part, source in parts.items():
        if part not in allowed:
            raise templates.TemplateProblem(f"{part}: channel {channel} has no such part (has {', '.join(allowed)})")
        try:
            templates.check_template(source)
        except templates.TemplateProblem as exc:
            raise templates.TemplateProblem(f"{part}: {exc}") from exc
    return repo.save_template(organization_id, kind, channel, language.lower(), parts)



def preview(repo: Repository, organization_id: str, kind: str, channel: str, language: str, body: dict) -> dict:
    """How a message would read (raises templates.TemplateProblem when it does not render)."""
    overrides = repo.template_overrides(organization_id, kind, channel)
    context = {"name": body["name"], "role": body["role"], "data": body["data"], "meeting": body["meeting"],
               "items": body["items"]}
    return templates.render(kind, channel, preferred_language=language, time_zone=body["time_zone"], context=context,
                            overrides=overrides, unsubscribe_url="https://example.invalid/unsubscribe" if channel == "email" else None)
