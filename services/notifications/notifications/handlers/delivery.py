"""The delivery job: sends due deliveries, one try each, and records the outcomes.

It claims a batch of due deliveries at once (one round trip of conditional one-delivery updates under a
lease id of its own, so several senders -- threads of one worker or worker copies -- take disjoint batches), reads the
batch's recipients in one query per collection, sends each OUTSIDE any transaction over one reused SMTP
connection (re-checking consent and choices at send time), marks each message the channel accepted
(``sent_at``, an unacknowledged single-document write: no round trip), then records every outcome of the
batch with its NotificationDelivered or NotificationFailed event in ONE transaction.

Nothing is sent twice when a sender dies mid-batch: the deliveries it had not sent yet are taken over
when its lease lapses, and those it had sent carry ``sent_at``, so the next holder records them as
delivered without sending them again. A job is an entry point: it opens its own units of work.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from shared.events.notifications import NotificationDelivered, NotificationFailed
from shared.mongo import is_unavailable, utcnow
from shared.unit_of_work import UnitOfWork

from notifications import model, templates
from notifications.channels import Channels, SendFailed
from notifications.config import Settings
from notifications.handlers.unsubscribe import unsubscribe_url
from notifications.repository import Repository, Store, new_id

log = logging.getLogger(__name__)

# Channels whose acceptance is outside our database: a message they took is marked sent at once.
EXTERNAL = ("email", "sms", "webhook")
# How often a sender also looks for deliveries whose sender died (their lease, a minute or more, lapsed):
# not at every look for due ones, which the job makes after every batch of events the worker applies.
ABANDONED_LOOK_SECONDS = 5.0


class RecipientNotYetKnown(SendFailed):
    """The recipient's contact or consents have not arrived yet: the delivery waits for them (the handlers
    of ContactChanged and the member's events make it due again), not for the channel's back-off."""


class Cancelled(Exception):
    """The delivery must not go out any more (consent revoked, channel off, endpoint removed)."""


class _Batch:
    """What one sender knows while it works through one claimed batch: the recipients' state (read in
    one query per collection) and the organizations' template overrides (read once per kind)."""

    def __init__(self, reader: Store, deliveries: list[dict]):
        self.reader = reader
        people = {(d["organization_id"], d["recipient_id"]) for d in deliveries
                  if d["channel"] != "webhook" and d.get("template") != "sign_in"}
        self.people = reader.people_state(people) if people else {}
        self._overrides: dict[tuple, dict] = {}

    def person_state(self, organization_id: str, person_id: str):
        known = self.people.get((organization_id, person_id))
        return known if known is not None else self.reader.person_state(organization_id, person_id)

    def template_overrides(self, organization_id: str, kind: str, channel: str) -> dict:
        key = (organization_id, kind, channel)
        if key not in self._overrides:
            self._overrides[key] = self.reader.template_overrides(organization_id, kind, channel)
        return self._overrides[key]


class Deliverer:
    """Sends due deliveries. Safe with several senders: each batch is claimed atomically under its own
    lease. ``settings.delivery_senders`` senders (threads, each with its own SMTP connection) share the
    work of one ``run_once``."""

    def __init__(self, settings: Settings, repo: Repository, channels: Channels | None = None):
        self.settings, self.repo = settings, repo
        self.channels = channels or Channels(settings)
        self._more_channels: list[Channels] = []  # one per extra sender, made when first needed
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._abandoned_looked_at = -float("inf")

    def run_once(self, budget_seconds: float = 5.0, batch: int | None = None) -> int:
        """Send what is due, for up to ``budget_seconds`` (then the worker's other jobs get their turn and
        this one runs again at once). Returns how many deliveries this copy sent or settled. One look
        first: with nothing due (most runs: the job runs after every batch of events) or no more than one
        batch, the other senders are not started, as they would only look and find nothing."""
        batch = batch or self.settings.delivery_batch
        senders = max(1, self.settings.delivery_senders)
        first = self._look_for_due(batch)
        if not first:
            return 0
        if senders == 1 or len(first) < batch:
            return self._send_due(self.channels, 0, batch, budget_seconds, first=first)
        with self._pool_lock:
            while len(self._more_channels) < senders - 1:
                self._more_channels.append(Channels(self.settings))
            if self._pool is None:
                self._pool = ThreadPoolExecutor(senders - 1, thread_name_prefix="notifications-sender")
        others = [self._pool.submit(self._send_due, channels, i + 1, batch, budget_seconds)
                  for i, channels in enumerate(self._more_channels[:senders - 1])]
        failure, done = None, 0
        try:
            done += self._send_due(self.channels, 0, batch, budget_seconds, first=first)
        except Exception as exc:  # noqa: BLE001 - the other senders are waited for first
            failure = exc
        for future in others:
            try:
                done += future.result()
            except Exception as exc:  # noqa: BLE001
                failure = failure or exc
        if failure is not None:
            raise failure
        return done

    def _look_for_due(self, batch: int, skip: int = 0) -> list[dict]:
        now, look = time.monotonic(), False
        if skip == 0 and now - self._abandoned_looked_at >= ABANDONED_LOOK_SECONDS:
            self._abandoned_looked_at, look = now, True
        return self.repo.reader().due_deliveries(utcnow(), batch, skip=skip, abandoned=look)

    def _send_due(self, channels: Channels, sender: int, batch: int, budget_seconds: float,
                  first: list[dict] | None = None) -> int:
        """One sender's loop: claim a batch, send it, record it; again until nothing is due or time is up.
        Sender ``k`` looks first at the k-th batch of what is due, so senders rarely race for the same.
        ``first``: what the caller's look found due, taken as this sender's first look."""
        done, deadline = 0, time.monotonic() + budget_seconds
        with channels.email.connection_reuse():
            while time.monotonic() < deadline:
                if first is not None:
                    due, first = first, None
                else:
                    due = (self._look_for_due(batch, skip=sender * batch) if sender else []) or self._look_for_due(batch)
                if not due:
                    break
                claimed = self._claim(due)
                if not claimed:
                    continue  # another sender took them all: look again
                done += self._deliver_batch(claimed, channels)
        return done

    def _claim(self, due: list[dict]) -> list[dict]:
        lease_id = new_id()
        try:
            return self.repo.claim_batch(due, utcnow(), self.settings.sending_lease_seconds, lease_id)
        except Exception:
            # The database failed half-way: the leases may be ours without our knowing. Nothing was sent,
            # so give the deliveries back rather than leave them 'sending' until the lease lapses.
            ids = [d["_id"] for d in due]
            self._when_database_answers(ids[0], lambda: self.repo.release_unsent(ids, lease_id))
            raise

    def _deliver_batch(self, claimed: list[dict], channels: Channels) -> int:
        """Send a claimed batch, then record every outcome in one transaction. Sending stops at half the
        lease (a slow channel); what was not sent is given back, due at once."""
        stop_at = time.monotonic() + 0.5 * self.settings.sending_lease_seconds
        context = _Batch(self.repo.reader(), claimed)
        outcomes, unsent = [], []
        for i, d in enumerate(claimed):
            if time.monotonic() > stop_at:
                unsent = claimed[i:]
                break
            outcomes.append((d, self._outcome(d, channels, context)))
        try:
            self._record(outcomes)
        finally:
            if unsent:
                ids, lease_id = [d["_id"] for d in unsent], unsent[0]["lease_id"]
                self._when_database_answers(ids[0], lambda: self.repo.release_unsent(ids, lease_id))
        return len(outcomes)

    def deliver(self, d: dict) -> None:
        """Send one claimed delivery and record its outcome (a batch of one)."""
        self._record([(d, self._outcome(d, self.channels, _Batch(self.repo.reader(), [d])))])

    def _outcome(self, d: dict, channels: Channels, context: _Batch) -> tuple[dict, tuple | None, dict | None]:
        """One try: (changes, event or None, in-app message or None)."""
        attempts = d.get("attempts", 0) + 1
        inapp_doc = None
        if d.get("sent_at") is None:
            try:
                inapp_doc = self._send(d, channels, context)
            except Cancelled as exc:
                return ({"status": "cancelled", "last_error": str(exc), "next_attempt_at": None,
                         "waiting_for_person": False}, None, None)
            except RecipientNotYetKnown as exc:
                return self._waiting_for_person(d, attempts, str(exc))
            except SendFailed as exc:
                return self._failed(attempts, str(exc), permanent=exc.permanent)
            except Exception as exc:  # noqa: BLE001 - anything else is this try's failure, retried like one
                log.exception("delivery failed unexpectedly", extra={"delivery_id": d["_id"]})
                return self._failed(attempts, f"error: {exc!r}"[:500])
            if d["channel"] in EXTERNAL:
                self._mark_sent(d)
        # else: the channel took it under an earlier lease whose holder died before recording it: not again
        changes = {"status": "delivered", "attempts": attempts, "delivered_at": d.get("sent_at") or utcnow(),
                   "last_error": None, "next_attempt_at": None, "waiting_for_person": False}
        if d.get("template") == "sign_in":  # what was sent, without its code and link
            changes["redacted_body"] = self._sign_in_message(d, d.get("event_data") or {})["text"]
        return changes, (NotificationDelivered, {"attempts": attempts}), inapp_doc

    def _mark_sent(self, d: dict) -> None:
        try:
            self.repo.mark_sent(d["_id"], utcnow())
        except Exception as exc:  # noqa: BLE001 - only the protection against a crash before recording is lost
            log.warning("could not mark a delivery sent", extra={"delivery_id": d["_id"], "error": repr(exc)[:200]})

    def _waiting_for_person(self, d: dict, attempts: int, reason: str) -> tuple[dict, tuple | None, None]:
        """The recipient is not known yet: no channel was tried, so no try is counted. The delivery is due
        again when their events arrive (the wake in the handlers, or ``_arrived_meanwhile``), and meanwhile
        after a wait that doubles from ``recipient_wait_seconds`` up to five minutes (the wake can miss: the
        person's events and this outcome may be written at the same moment). After
        ``recipient_wait_limit_seconds`` the tries count, with the channel's back-off, until ``failed``."""
        s, now = self.settings, utcnow()
        if now - model.as_utc(d["created_at"]) > timedelta(seconds=s.recipient_wait_limit_seconds):
            return self._failed(attempts, reason, waiting_for_person=True)
        waits = d.get("person_waits", 0)
        wait = min(s.recipient_wait_seconds * 2 ** waits, max(s.recipient_wait_seconds, 300.0))
        return ({"status": "pending", "attempts": attempts - 1, "person_waits": waits + 1, "last_error": reason,
                 "next_attempt_at": now + timedelta(seconds=wait), "waiting_for_person": True}, None, None)

    def _failed(self, attempts: int, reason: str, *, permanent: bool = False,
                waiting_for_person: bool = False) -> tuple[dict, tuple | None, None]:
        s, now = self.settings, utcnow()
        status, next_at = model.after_failure(s.max_attempts if permanent else attempts, s.max_attempts, now,
                                              s.retry_base_seconds, s.retry_multiplier)
        event = (NotificationFailed, {"attempts": attempts, "reason": reason[:1000]}) if status == "failed" else None
        return ({"status": status, "attempts": attempts, "last_error": reason, "next_attempt_at": next_at,
                 "waiting_for_person": waiting_for_person and status == "pending"}, event, None)

    def _record(self, outcomes: list[tuple[dict, tuple]]) -> None:
        """Every outcome of a batch, with its events, in one transaction; only for the deliveries whose
        lease we still hold (another sender took over one whose lease ran out: its outcome counts)."""
        if not outcomes:
            return

        def work(uow: UnitOfWork) -> None:
            store = Store.of(uow)
            recorded = _arrived_meanwhile(store, [(d, changes) for d, (changes, _, _) in outcomes])
            held = store.finish_deliveries(recorded)
            settled_sign_ins, inapp_docs = [], []
            for d, (changes, event, inapp) in outcomes:
                if d["_id"] not in held:
                    continue
                if d.get("template") == "sign_in" and changes.get("status") in ("delivered", "cancelled", "failed"):
                    settled_sign_ins.append(d["_id"])  # settled: the code is kept nowhere any more
                if inapp is not None:
                    inapp_docs.append(inapp)
                if event is not None:
                    declaration, extra = event
                    uow.emit(declaration, {
                        "organization_id": d["organization_id"], "delivery_id": d["_id"],
                        "recipient_id": d["recipient_id"], "recipient_kind": d["recipient_kind"],
                        "channel": d["channel"], "source_event_id": d["source_event_id"],
                        "source_event_type": d["source_event_type"], **extra,
                    })
            store.forget_signin_secrets(settled_sign_ins)
            store.add_inapp_messages(inapp_docs)
        # The messages may already be out: if the database is away now, wait for it (most of the lease)
        # rather than leave the deliveries 'sending' until their lease lapses.
        self._when_database_answers(outcomes[0][0]["_id"], lambda: self.repo.transaction(work))

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
    def _send(self, d: dict, channels: Channels, context: _Batch) -> dict | None:
        if d["channel"] == "webhook":
            self._send_webhook(d, channels)
            return None
        if d.get("template") == "sign_in":
            self._send_sign_in(d, channels)
            return None
        org, person_id, channel = d["organization_id"], d["recipient_id"], d["channel"]
        now = utcnow()
        contact, consents, prefs = context.person_state(org, person_id)
        if contact is None:
            raise RecipientNotYetKnown("the person is not in the contact directory (yet)")
        if d["recipient_kind"] == "member" and consents is None:
            # unknown is not refused: the member's registration event has not arrived yet
            raise RecipientNotYetKnown("the member's consents are not known (yet)")
        if channel not in model.channels_for(contact, d["recipient_kind"], consents, prefs, now):
            raise Cancelled(f"no consent or no choice for {channel} (or no address) at send time")
        link = unsubscribe_url(self.settings, org, person_id, "email") if channel == "email" else None
        message = self._render(d, contact, unsubscribe=link, batch=context)
        if channel == "email":
            address = channels.email.check_address(contact["email"])
            msg = channels.email.build(to=address, subject=message["subject"], text=message["text"],
                                       html=message["html"], delivery_id=d["_id"], unsubscribe_url=link)
            channels.email.send(msg)
            return None
        if channel == "sms":
            channels.sms.send(to=contact["phone"], text=message["text"], delivery_id=d["_id"])
            return None
        if channel == "inapp":
            return {"_id": d["_id"], "organization_id": org, "person_id": person_id, "title": message["subject"],
                    "body": message["text"], "language": message["language"], "template": d["template"],
                    "priority": d["priority"], "source_event_id": d["source_event_id"],
                    "source_event_type": d["source_event_type"], "created_at": now, "read_at": None}
        raise Cancelled(f"unknown channel {channel}")

    def _send_sign_in(self, d: dict, channels: Channels) -> None:
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
            address = channels.email.check_address(secret["address"])
            channels.email.send(channels.email.build(
                to=address, subject=message["subject"], text=message["text"], html=message["html"],
                delivery_id=d["_id"], unsubscribe_url=None))
        elif d["channel"] == "sms":
            channels.sms.send(to=secret["address"], text=message["text"], delivery_id=d["_id"])
        else:
            raise Cancelled(f"a sign-in code is not sent by {d['channel']}")

    def _sign_in_message(self, d: dict, data: dict) -> dict:
        contact = self.repo.reader().contact(d["organization_id"], d["recipient_id"]) or {}
        return templates.render("sign_in", d["channel"], preferred_language=data.get("language"),
                                time_zone=contact.get("time_zone"),
                                context={"name": "", "role": d.get("recipient_role"), "data": data, "meeting": {},
                                         "items": []})

    def _render(self, d: dict, contact: dict, unsubscribe: str | None = None, batch: _Batch | None = None) -> dict:
        kind, channel = d["template"], d["channel"]
        context = {"name": contact.get("display_name") or "", "role": d.get("recipient_role"),
                   "data": d.get("event_data") or {}, "meeting": d.get("meeting") or {}, "items": []}
        if kind == "digest":
            context["items"] = [self._digest_line(item, contact) for item in (d.get("event_data") or {}).get("items", [])]
        overrides = (batch or _Batch(self.repo.reader(), [])).template_overrides(d["organization_id"], kind, channel)
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

    def _send_webhook(self, d: dict, channels: Channels) -> None:
        hook = self.repo.reader().webhook(d["organization_id"], d["recipient_id"])
        if hook is None or not hook.get("active", True):
            raise Cancelled("the webhook endpoint was removed or turned off")
        body = webhook_body(d)
        channels.webhook.send(url=hook["url"], secret=hook["secret"], body=body, delivery_id=d["_id"],
                                   event_type=d["source_event_type"])


def _arrived_meanwhile(store: Store, outcomes: list[tuple[dict, dict]]) -> list[tuple[dict, dict]]:
    """A try that found its recipient unknown read them at the start of its batch; if their contact (and a
    member's consents) arrived while the batch was sent, their events found the delivery still 'sending' and
    could not wake it: it is due again at once instead."""
    waiting = {(d["organization_id"], d["recipient_id"])
               for d, changes in outcomes if changes.get("waiting_for_person")}
    if not waiting:
        return outcomes
    state, now = store.people_state(waiting), utcnow()

    def known(d: dict) -> bool:   # what _send asks of a recipient
        contact, consents, _ = state.get((d["organization_id"], d["recipient_id"]), (None, None, None))
        return contact is not None and (consents is not None or d["recipient_kind"] != "member")

    return [(d, {**changes, "next_attempt_at": now, "waiting_for_person": False})
            if changes.get("waiting_for_person") and known(d) else (d, changes) for d, changes in outcomes]


def webhook_body(d: dict) -> bytes:
    """What an endpoint receives: the event as a CloudEvents-like JSON object (ids only, no contact details)."""
    time = d.get("source_event_time")
    return json.dumps({
        "specversion": "1.0", "id": d["source_event_id"], "type": d["source_event_type"],
        "source": "/recoverynet/notifications", "time": time.isoformat() if isinstance(time, datetime) else time,
        "organization_id": d["organization_id"], "delivery_id": d["_id"], "data": d.get("event_data") or {},
    }, separators=(",", ":"), sort_keys=True, default=str).encode()
