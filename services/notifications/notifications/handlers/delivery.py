"""The delivery job: sends due deliveries, one try each, and records the outcome.

It claims one due delivery at a time (a conditional update under a lease, so several worker copies
never take the same one), sends it OUTSIDE any transaction (re-checking consent and choices at send
time), then records the outcome with its NotificationDelivered or NotificationFailed event in one
transaction. A job is an entry point: it opens its own units of work.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime

from shared.events.notifications import NotificationDelivered, NotificationFailed
from shared.mongo import is_unavailable, utcnow
from shared.unit_of_work import UnitOfWork

from notifications import model, templates
from notifications.channels import Channels, SendFailed
from notifications.config import Settings
from notifications.handlers.unsubscribe import unsubscribe_url
from notifications.repository import Repository, Store, new_id

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The delivery must not go out any more (consent revoked, channel off, endpoint removed)."""


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
                due = self.repo.reader().due_deliveries(utcnow(), batch)
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
        changes = {"status": "delivered", "attempts": attempts, "delivered_at": now, "last_error": None,
                   "next_attempt_at": None}
        if d.get("template") == "sign_in":  # what was sent, without its code and link
            changes["redacted_body"] = self._sign_in_message(d, d.get("event_data") or {})["text"]
        self._finish(d, changes, event=(NotificationDelivered, {"attempts": attempts}), inapp=inapp_doc)

    def _failed(self, d: dict, attempts: int, reason: str, *, permanent: bool = False) -> None:
        s = self.settings
        status, next_at = model.after_failure(s.max_attempts if permanent else attempts, s.max_attempts, utcnow(),
                                              s.retry_base_seconds, s.retry_multiplier)
        event = (NotificationFailed, {"attempts": attempts, "reason": reason[:1000]}) if status == "failed" else None
        self._finish(d, {"status": status, "attempts": attempts, "last_error": reason, "next_attempt_at": next_at},
                     event=event)

    def _finish(self, d: dict, changes: dict, *, event=None, inapp: dict | None = None) -> None:
        def work(uow: UnitOfWork) -> None:
            store = Store.of(uow)
            if not store.finish_delivery(d, changes):
                return  # someone else took it over after our lease ran out: their outcome counts
            if d.get("template") == "sign_in" and changes.get("status") in ("delivered", "cancelled", "failed"):
                store.forget_signin_secret(d["_id"])  # settled: the code is kept nowhere any more
            if inapp is not None:
                store.add_inapp_message(inapp)
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
        if d.get("template") == "sign_in":
            self._send_sign_in(d)
            return None
        org, person_id, channel = d["organization_id"], d["recipient_id"], d["channel"]
        now = utcnow()
        contact, consents, prefs = self.repo.reader().person_state(org, person_id)
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

    def _send_sign_in(self, d: dict) -> None:
        """A sign-in code, to the address it was asked for: no consent or channel choice is checked (the
        person asked for it), no quiet hours, no unsubscribe link, never an organization's template."""
        reader = self.repo.reader()
        secret = reader.signin_secret(d["_id"])
        if secret is None:
            raise Cancelled("the sign-in code is no longer held (already settled, or expired)")
        if model.as_utc(secret["expires_at"]) <= utcnow():
            raise Cancelled("the sign-in code expired before it could be sent")
        message = self._sign_in_message(d, {**(d.get("event_data") or {}), "code": secret["code"],
                                            "link": secret["link"]})
        if d["channel"] == "email":
            address = self.channels.email.check_address(secret["address"])
            self.channels.email.send(self.channels.email.build(
                to=address, subject=message["subject"], text=message["text"], html=message["html"],
                delivery_id=d["_id"], unsubscribe_url=None))
        elif d["channel"] == "sms":
            self.channels.sms.send(to=secret["address"], text=message["text"], delivery_id=d["_id"])
        else:
            raise Cancelled(f"a sign-in code is not sent by {d['channel']}")

    def _sign_in_message(self, d: dict, data: dict) -> dict:
        contact = self.repo.reader().contact(d["organization_id"], d["recipient_id"]) or {}
        return templates.render("sign_in", d["channel"], preferred_language=data.get("language"),
                                time_zone=contact.get("time_zone"),
                                context={"name": "", "role": d.get("recipient_role"), "data": data, "meeting": {},
                                         "items": []})

    def _render(self, d: dict, contact: dict, unsubscribe: str | None = None) -> dict:
        kind, channel = d["template"], d["channel"]
        context = {"name": contact.get("display_name") or "", "role": d.get("recipient_role"),
                   "data": d.get("event_data") or {}, "meeting": d.get("meeting") or {}, "items": []}
        if kind == "digest":
            context["items"] = [self._digest_line(item, contact) for item in (d.get("event_data") or {}).get("items", [])]
        overrides = self.repo.reader().template_overrides(d["organization_id"], kind, channel)
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
        hook = self.repo.reader().webhook(d["organization_id"], d["recipient_id"])
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
