"""The platform's events kept as per-member facts and, in the same transaction, as the aggregates the
reports read (reporting.aggregates: the difference a change makes to the member's contribution):
``handler(evt, uow)``, run by the shared consumer in one transaction with the inbox. People's ids become
keyed pseudonyms at this edge and go no further."""
from __future__ import annotations

from collections import Counter
from typing import Callable

from shared.unit_of_work import UnitOfWork

from reporting import aggregates, model
from reporting.repository import Store

KEY: dict[str, str] = {}  # "pseudonym_key": set by subscriptions(settings) before the consumer starts


def _pseudonym(org: str, person_id: str) -> str:
    return model.pseudonym(KEY["pseudonym_key"], org, person_id)


def _update_member(st: Store, org: str, person: str, change: Callable[[dict], dict], diff: Counter) -> bool:
    """Apply ``change`` to one member's facts (created if new) unless the member was erased, and add what it
    changes in the aggregates to ``diff`` (aggregates.difference: the member's contribution after minus
    before). False when the member was erased."""
    p = _pseudonym(org, person)
    before = st.member(org, p)
    # an erased member has no facts under their pseudonym: only a member not known yet can be one (their
    # events are dropped: nothing of theirs is stored again)
    if before is None and st.is_erased(model.erasure_marker(KEY["pseudonym_key"], org, person)):
        return False
    after = aggregates.as_stored(change(before or model.new_member(org)))
    if after != before:
        st.save_member(org, p, after)
        diff.update(aggregates.difference(before, after))
    return True


def _member_change(change: Callable[[dict, dict, object], dict], member_field: str = "member_id",
                   places: bool = True):
    """A handler that applies ``change(facts, data, at)`` to one member's facts (created if new), unless
    the member was erased (then the event is dropped: nothing of theirs is stored again), and keeps the
    aggregates in step in the same transaction."""
    def handle(evt, uow: UnitOfWork) -> None:
        org, person = evt.organization_id, evt.data[member_field]
        st = Store.of(uow)

        def apply(doc: dict) -> dict:
            if places:  # the member's own site (a meeting's or a session's site is not necessarily theirs)
                doc = model.place(doc, evt.data.get("site_id"), evt.time)
            return change(doc, evt.data, evt.time)
        diff: Counter = Counter()
        _update_member(st, org, person, apply, diff)
        st.add_counts(org, diff)
    return handle


def _registered(doc, data, at):
    return model.registered(doc, data, at)


def _updated(doc, data, at):
    return model.profile(model.status(doc, data["status"], at), data, at)


on_member_registered = _member_change(_registered)
on_member_updated = _member_change(_updated)
on_member_status_changed = _member_change(lambda d, data, at: model.status(d, data["to_status"], at))
on_member_transferred = _member_change(lambda d, data, at: model.place(d, data["to_site_id"], at))
on_screening_recorded = _member_change(lambda d, data, at: model.add(
    d, "screenings", {"id": data["screening_id"], "at": at, "instrument": data["instrument"], "total": data["total"]},
    "id"))
on_risk_flagged = _member_change(lambda d, data, at: model.add(d, "flags", {"id": data["screening_id"], "at": at}, "id"))
on_risk_resolved = _member_change(lambda d, data, at: model.add(d, "resolved", {"at": at}, "at"))
on_match_proposed = _member_change(lambda d, data, at: model.add(d, "proposals", {"id": data["match_id"], "at": at}, "id"))
on_match_accepted = _member_change(lambda d, data, at: model.add(d, "accepted", {"id": data["match_id"], "at": at}, "id"))
on_match_declined = _member_change(lambda d, data, at: model.add(
    d, "declines", {"id": data["match_id"], "at": at, "reason": data["reason"]}, "id"))
on_member_waitlisted = _member_change(lambda d, data, at: model.add(
    d, "waitlisted", {"at": model.as_utc(data["waiting_since"])}, "at"))
on_session_held = _member_change(lambda d, data, at: model.add(
    d, "sessions", {"id": data["session_id"], "at": model.as_utc(data["start"])}, "id"), places=False)


def on_attendance_recorded(evt, uow: UnitOfWork) -> None:
    """Each member present or absent at an occurrence; a later record of the same occurrence replaces an
    earlier one for the members it names (attendance corrected). The members' facts are read and written
    together and the aggregates updated once: a meeting names tens of members, and one transaction must
    stay short."""
    data, org = evt.data, evt.organization_id
    st = Store.of(uow)
    key = KEY["pseudonym_key"]
    named = [(True, m) for m in data["present_member_ids"]] + [(False, m) for m in data.get("absent_member_ids") or []]
    erased = st.erased_among([model.erasure_marker(key, org, m) for _, m in named])
    named = [(present, m) for present, m in named if model.erasure_marker(key, org, m) not in erased]
    pseudonyms = {m: _pseudonym(org, m) for _, m in named}
    found = st.members_of(org, list(pseudonyms.values()))
    at = model.occurrence_start(data["occurrence_id"]) or evt.time
    diff: Counter = Counter()
    changed = {}
    for present, member_id in named:
        p = pseudonyms[member_id]
        before = changed.get(p, found.get(p))
        entry = {"id": data["occurrence_id"], "meeting_id": data["meeting_id"], "at": at, "present": present,
                 "recorded_at": evt.time}
        after = aggregates.as_stored(model.attend(before or model.new_member(org), entry))
        if after != before:
            diff.update(aggregates.difference(before, after))
            changed[p] = after
    st.save_members(org, changed)
    st.add_counts(org, diff)


def on_member_erased(evt, uow: UnitOfWork) -> None:
    org, person = evt.organization_id, evt.data["member_id"]
    store = Store.of(uow)
    store.erase_member(org, _pseudonym(org, person), model.erasure_marker(KEY["pseudonym_key"], org, person))
    store.forget_subjects(org, [person, f"member:{person}"])


# --- leaders ----------------------------------------------------------------------------------------

def _leader_change(change):
    def handle(evt, uow: UnitOfWork) -> None:
        org = evt.organization_id
        st = Store.of(uow)
        p = _pseudonym(org, evt.data["leader_id"])
        doc = st.leader(org, p) or {"site_ids": [], "site_at": None, "statuses": []}
        st.save_leader(org, p, change(doc, evt.data, evt.time))
    return handle


def _leader_snapshot(doc, data, at):
    doc = model.status(doc, data["status"], at)
    if doc["site_at"] is None or at >= doc["site_at"]:
        doc = {**doc, "site_ids": list(data["site_ids"]), "site_at": at}
    return doc


on_leader_registered = _leader_change(_leader_snapshot)
on_leader_deactivated = _leader_change(lambda d, data, at: model.status(d, data["to_status"], at))
on_leader_reactivated = _leader_change(lambda d, data, at: model.status(d, "active", at))


# --- meetings and messages --------------------------------------------------------------------------

def on_meeting_changed(evt, uow: UnitOfWork) -> None:
    data = evt.data
    Store.of(uow).save_meeting(evt.organization_id, data["meeting_id"],
                               {"name": data.get("name"), "site_id": data.get("site_id")})


def _message(outcome: str):
    """A message counts at its recipient's site now: kept as a counter on a member's facts (so it moves
    with a transfer); a message to a leader, staff or an erased member counts organization-wide only."""
    def handle(evt, uow: UnitOfWork) -> None:
        org, data = evt.organization_id, evt.data
        st = Store.of(uow)
        key = aggregates.message_key(evt.time, data["channel"], outcome)

        def count(doc: dict) -> dict:
            counts = dict(doc.get("messages") or {})
            counts[key] = counts.get(key, 0) + 1
            return {**doc, "messages": counts}
        diff: Counter = Counter()
        if data.get("recipient_kind", "member") != "member" or \
                not _update_member(st, org, data["recipient_id"], count, diff):
            diff = aggregates.message(None, evt.time, data["channel"], outcome)
        st.add_counts(org, diff)
    return handle


on_delivered = _message("delivered")
on_failed = _message("failed")
on_unsubscribed = _message("unsubscribed")
