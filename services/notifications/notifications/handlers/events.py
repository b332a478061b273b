"""Handlers of the events notifications subscribes to (run in the consumer's transaction, with its inbox
entry): the contact directory, consents, coordinators, names of organizations, sites and meetings,
erasure, and the events that tell people something, which become PLANNED deliveries.

The rule that makes "exactly once" hold: an event handler only RECORDS deliveries (pending, held or for
the digest), keyed by (event id, recipient, channel) under a unique index; nothing is sent here. The
delivery job (handlers/delivery.py) sends them. A redelivered event finds its deliveries already there.
"""
from __future__ import annotations

import logging
from datetime import datetime

from shared.events.notifications import NotificationFailed
from shared.messaging.envelope import Event
from shared.mongo import utcnow
from shared.unit_of_work import UnitOfWork

from notifications import model
from notifications.repository import Store, new_id

log = logging.getLogger(__name__)


# --- the contact directory and consents (restricted contacts topic; members topic) ----------------

def on_contact_changed(evt: Event, uow: UnitOfWork) -> None:
    d, store = evt.data, Store.of(uow)
    _forget_person(uow, evt.organization_id, d["person_id"])
    if store.is_erased(evt.organization_id, d["person_id"]):
        return  # the contacts topic can lag behind the erasure: an erased person stays erased
    store.save_contact(evt.organization_id, d["person_id"], {
        "kind": d["person_kind"], "display_name": d["display_name"], "email": d.get("email"),
        "phone": d.get("phone"), "preferred_language": d.get("preferred_language") or "en",
        "time_zone": d["time_zone"], "site_ids": d.get("site_ids") or [], "channels": d.get("channels") or [],
    })
    store.wake_deliveries_waiting_for(evt.organization_id, d["person_id"])


def on_member_snapshot(evt: Event, uow: UnitOfWork) -> None:
    """MemberRegistered / MemberUpdated / MemberConsentChanged carry the whole set of consents in force."""
    store = Store.of(uow)
    _forget_person(uow, evt.organization_id, evt.data["member_id"])
    if store.is_erased(evt.organization_id, evt.data["member_id"]):
        return
    if store.save_consents(evt.organization_id, evt.data["member_id"], evt.data.get("consents") or []):
        store.wake_deliveries_waiting_for(evt.organization_id, evt.data["member_id"])


def read_people_ahead(events: list[Event], uow: UnitOfWork) -> None:
    """Before a consumer batch's member and contact events are applied: whether each person is erased and their
    consents as held, for the whole batch at once (the consumer runner calls a handler's ``prepare``)."""
    Store.of(uow).read_people_ahead({(evt.organization_id, evt.data.get("member_id") or evt.data["person_id"])
                                     for evt in events})


on_contact_changed.prepare = read_people_ahead
on_member_snapshot.prepare = read_people_ahead


def on_member_erased(evt: Event, uow: UnitOfWork) -> None:
    _forget_person(uow, evt.organization_id, evt.data["member_id"])
    _record_gathered(uow)  # this batch's deliveries to the person too
    Store.of(uow).erase_person(evt.organization_id, evt.data["member_id"])


def on_coordinator_assigned(evt: Event, uow: UnitOfWork) -> None:
    """The site coordinator directory: risk flags and waiting members reach the coordinators of the
    member's site. Their addresses come from ContactChanged (person_kind staff) like anyone's."""
    store = Store.of(uow)
    store.save_coordinator(evt.organization_id, evt.data["staff_id"], evt.data.get("site_ids") or [])
    # A risk flag (or long wait) that found no coordinator for the site -- CoordinatorAssigned travels on
    # another topic and can arrive after it -- now reaches the coordinator named for that site.
    now = utcnow()
    for failed in store.untold_coordinator_messages(evt.organization_id, evt.data.get("site_ids") or []):
        base = {k: v for k, v in failed.items() if k not in (
            "_id", "key", "recipient_id", "recipient_kind", "recipient_role", "channel", "status", "next_attempt_at",
            "held_until", "last_error", "delivered_at", "attempts", "lease_until", "lease_id", "takeovers")}
        _record_for_person(uow, store, {**base, "attempts": 0, "created_at": now, "updated_at": now,
                                        "delivered_at": None, "last_error": None},
                           failed["priority"], evt.data["staff_id"], "staff", "coordinator",
                           failed.get("event_data", {}).get("time_zone"), now)


def on_organization_created(evt: Event, uow: UnitOfWork) -> None:
    """The organization's name, so the unsubscribe page can say whose emails stop."""
    Store.of(uow).save_organization(evt.organization_id, evt.data["name"])


def on_site_changed(evt: Event, uow: UnitOfWork) -> None:
    """SiteCreated / SiteUpdated: which sites are the organization's, and their names (reasons name a site
    by name; its id stays in the delivery's site_id)."""
    Store.of(uow).save_site(evt.organization_id, evt.data["site_id"], evt.data["name"])


def on_meeting_snapshot(evt: Event, uow: UnitOfWork) -> None:
    """MeetingCreated / MeetingUpdated: remember the meeting's name; an update also tells registrants."""
    store = Store.of(uow)
    store.forget(("meeting", evt.organization_id, evt.data["meeting_id"]))
    store.save_meeting(evt.organization_id, evt.data["meeting_id"], evt.data["name"], evt.data.get("time_zone"))
    on_notifiable_event(evt, uow)


# --- sign-in codes (restricted contacts topic) --------------------------------------------------------

def on_signin_code_issued(evt: Event, uow: UnitOfWork) -> None:
    """Send a sign-in code at once: urgent (no quiet hours, no digest), and no notify consent needed (it is
    not a marketing message; the person asked for it, or was invited). The delivery log gets a delivery
    like any other, whose data holds no code, no link and no address; those wait in ``signin_secrets``
    only until the delivery is settled or the code expires."""
    d, store, now = evt.data, Store.of(uow), utcnow()
    expires_at = model.as_utc(model.parse_time(d["expires_at"]) if isinstance(d["expires_at"], str) else d["expires_at"])
    delivery_id = new_id()
    recorded = store.record_delivery({
        "_id": delivery_id, "key": model.idempotency_key(evt.id, d["person_id"], d["channel"]),
        "organization_id": evt.organization_id, "site_id": None, "source_event_id": evt.id,
        "source_event_type": evt.type, "source_event_time": evt.time, "template": "sign_in", "priority": "urgent",
        "event_data": model.redacted_sign_in(d), "meeting": {}, "attempts": 0, "created_at": now, "updated_at": now,
        "delivered_at": None, "last_error": None, "recipient_id": d["person_id"], "recipient_kind": d["person_kind"],
        "recipient_role": d.get("role") or d["person_kind"], "channel": d["channel"], "status": "pending",
        "next_attempt_at": now, "held_until": None,
    })
    if recorded:  # a redelivered event finds its delivery (and its secret) already there
        store.save_signin_secret(delivery_id, {"organization_id": evt.organization_id, "person_id": d["person_id"],
                                               "address": d["address"], "code": d["code"], "link": d["link"],
                                               "expires_at": expires_at})


# --- events that tell people something --------------------------------------------------------------

def _forget_person(uow: UnitOfWork, organization_id: str, person_id: str) -> None:
    """A handler changed what is known of the person: a state read before it is stale."""
    Store.of(uow).forget(("person", organization_id, person_id))


def prepare_recipients(events: list[Event], uow: UnitOfWork) -> None:
    """Before a consumer batch's events are applied: read the contact, consents and preferences of every
    person they tell, in one query per collection instead of three per recipient (the consumer runner
    calls a handler's ``prepare`` with the batch's events, in the batch's transaction)."""
    people = set()
    for evt in events:
        plan = model.plan_for(evt.type, evt.data)
        for recipient in plan.recipients if plan else ():
            if recipient.person_id != model.COORDINATORS:
                people.add((evt.organization_id, recipient.person_id))
    if people:
        store = Store.of(uow)
        for (org, person_id), state in store.people_state(people).items():
            store.remember(("person", org, person_id), state)


def _record_later(uow: UnitOfWork, doc: dict) -> None:
    """A delivery to record with the rest of the transaction's (a consumer batch of reminders: one write, not
    one per recipient), before it commits, or before a handler that looks at deliveries runs."""
    gathered = getattr(uow, "_notifications_deliveries", None)
    if gathered is None:
        gathered = uow._notifications_deliveries = []
        uow.before_commit("notifications.deliveries", lambda: _record_gathered(uow))
    gathered.append(doc)


def _record_gathered(uow: UnitOfWork) -> None:
    gathered = getattr(uow, "_notifications_deliveries", None)
    if gathered:
        Store.of(uow).record_deliveries(gathered)
        gathered.clear()


def on_notifiable_event(evt: Event, uow: UnitOfWork) -> None:
    """Record one delivery per recipient and channel (and one per subscribed webhook endpoint)."""
    plan = model.plan_for(evt.type, evt.data)
    if plan is None:
        return
    store = Store.of(uow)
    now = utcnow()
    org = evt.organization_id
    site_id = evt.data.get("site_id") or next(iter(evt.data.get("site_ids") or []), None)  # a leader: their first site
    base = {"organization_id": org, "site_id": site_id, "source_event_id": evt.id, "source_event_type": evt.type,
            "source_event_time": evt.time, "template": plan.template, "priority": plan.priority,
            "event_data": evt.data,
            # a consumer batch is often many reminders of one meeting: its name read once per transaction
            "meeting": store.remembered(("meeting", org, evt.data.get("meeting_id")),
                                        lambda: store.meeting_of(org, evt.data.get("meeting_id"))),
            "attempts": 0, "created_at": now, "updated_at": now,
            "delivered_at": None, "last_error": None}
    for recipient in plan.recipients:
        if recipient.person_id == model.COORDINATORS:
            person_ids = _coordinators_of(store, org, evt.data, site_id)
            if not person_ids:
                _nobody_to_tell(evt, uow, store, base, site_id)
        else:
            person_ids = [recipient.person_id]
        for person_id in person_ids:
            _record_for_person(uow, store, base, plan.priority, person_id, recipient.kind, recipient.role,
                               evt.data.get("time_zone"), now, store.take(("person", org, person_id)))
    for hook in store.remembered(("webhooks", org, evt.type), lambda: store.webhooks_for(org, evt.type)):
        _record_later(uow, {
            **base, "_id": new_id(), "key": model.idempotency_key(evt.id, hook["_id"], "webhook"),
            "recipient_id": hook["_id"], "recipient_kind": "webhook", "recipient_role": "webhook",
            "channel": "webhook", "status": "pending", "next_attempt_at": now, "held_until": None,
        })


def _coordinators_of(store: Store, org: str, data: dict, site_id: str | None) -> list[str]:
    """The coordinators of the event's site; for an event about a peer leader (``site_ids``), of every site of theirs."""
    sites = [site_id] if data.get("site_id") or not data.get("site_ids") else data["site_ids"]
    return list(dict.fromkeys(p for s in sites for p in store.coordinators_of_site(org, s)))


def _record_for_person(uow: UnitOfWork, store: Store, base: dict, priority: str, person_id: str, kind: str, role: str,
                       event_time_zone: str | None, now: datetime, state: tuple | None = None) -> None:
    """One delivery per channel the person receives this message on (keyed by source event, person, channel).
    ``state``: the person's (contact, consents, preferences) when the batch read them already."""
    org = base["organization_id"]
    contact, consents, prefs = state if state is not None else store.person_state(org, person_id)
    # An erased person has no contact (erasure removes it and a later ContactChanged is refused): only
    # then is the erased list worth a look.
    if contact is None and store.is_erased(org, person_id):
        return
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
        _record_later(uow, {
            **base, "_id": new_id(), "key": model.idempotency_key(base["source_event_id"], person_id, channel),
            "recipient_id": person_id, "recipient_kind": kind, "recipient_role": role,
            "channel": channel, "status": status, "next_attempt_at": at,
            "held_until": at if status == "held" else None,
        })


def _nobody_to_tell(evt: Event, uow: UnitOfWork, store: Store, base: dict, site_id: str | None) -> None:
    """No coordinator is known for the site: the message cannot go anywhere. Say so loudly — a failed
    delivery in the log and a NotificationFailed event — rather than drop it silently."""
    log.warning("no coordinator known for the site; nobody to tell",
                extra={"event_id": evt.id, "event_type": evt.type, "site_id": site_id})
    recipient = f"coordinators-of:{site_id}"
    site_name = store.site_name(evt.organization_id, site_id)
    # Coordinators read this reason: the site by its name; its id is in the delivery's site_id.
    where = f'the site "{site_name}"' if site_name else "the member's site"
    reason = f"no coordinator is known for {where}: intake has not named one (CoordinatorAssigned)"
    doc = {**base, "site_name": site_name, "_id": new_id(), "key": model.idempotency_key(evt.id, recipient, "inapp"),
           "recipient_id": recipient, "recipient_kind": "staff", "recipient_role": "coordinator", "channel": "inapp",
           "status": "failed", "next_attempt_at": None, "held_until": None, "last_error": reason}
    if store.record_delivery(doc):
        uow.emit(NotificationFailed, {"organization_id": base["organization_id"], "delivery_id": doc["_id"],
                                      "recipient_id": recipient, "recipient_kind": "staff", "channel": "inapp",
                                      "source_event_id": evt.id, "source_event_type": evt.type, "attempts": 0,
                                      "reason": reason})


on_notifiable_event.prepare = prepare_recipients  # the consumer runner reads a batch's recipients at once
