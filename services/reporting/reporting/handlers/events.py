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


# --- a batch folded in memory (the worker and the rebuild) ---------------------------------------------
# Every handler of ``subscriptions(settings)`` carries a ``prepare`` hook (``folded``): the shared consumer
# calls it first in a batch's transaction with the batch's events
# still to apply. It reads the facts of every member they name and the erasure markers among them in one
# query each, and the handlers then read and change those facts in memory and add their aggregate
# differences to one Counter; when the batch's last event is handled, each changed member and each touched
# aggregate document is written once (Store.save_members, Store.add_counts). Everything stays in the one
# transaction: if any of it fails, none of it is kept (the consumer retries in smaller batches or one by
# one, without the hook: then each handler reads and writes for itself).
BATCH = "_reporting_batch"
FOLDED = {"batches": 0, "events": 0}  # written folded by this process (the rebuild reports them)


class _Batch:
    def __init__(self, ids: set[str]):
        self.remaining, self.size = set(ids), len(set(ids))
        self.facts: dict[tuple[str, str], dict | None] = {}  # (org, pseudonym) -> facts (None: none stored)
        self.checked: set[str] = set()  # erasure markers looked up (of the members the batch names)
        self.erased: set[str] = set()  # those of erased members
        self.changed: dict[str, dict[str, dict]] = {}  # org -> pseudonym -> facts to write
        self.counts: dict[str, Counter] = {}  # org -> aggregate difference to write

    def flush(self, st: Store) -> None:
        for org, docs in self.changed.items():
            st.save_members(org, docs)
        for org, diff in self.counts.items():
            st.add_counts(org, Counter({k: v for k, v in diff.items() if v}))
        self.changed, self.counts = {}, {}


def _named(evt) -> list[str]:
    data = evt.data
    if "present_member_ids" in data:
        return list(data["present_member_ids"]) + list(data.get("absent_member_ids") or [])
    if "recipient_id" in data:
        return [data["recipient_id"]] if data.get("recipient_kind", "member") == "member" else []
    return [data["member_id"]] if "member_id" in data else []


def _prepare(events: list, uow: UnitOfWork) -> None:
    st, key = Store.of(uow), KEY["pseudonym_key"]
    batch = _Batch({evt.id for evt in events})
    by_org: dict[str, set[str]] = {}
    for evt in events:
        by_org.setdefault(evt.organization_id, set()).update(_named(evt))
    for org, people in by_org.items():
        pseudonyms = {_pseudonym(org, m) for m in people}
        found = st.members_of(org, sorted(pseudonyms))
        for p in pseudonyms:
            batch.facts[(org, p)] = found.get(p)
        markers = sorted(model.erasure_marker(key, org, m) for m in people)
        batch.checked.update(markers)
        batch.erased |= st.erased_among(markers)
    setattr(uow, BATCH, batch)


def _folded(handler):
    """``handler`` applied within a folded batch (writes the batch when its last event is handled)."""
    def handle(evt, uow: UnitOfWork) -> None:
        handler(evt, uow)
        batch = getattr(uow, BATCH, None)
        if batch is not None:
            batch.remaining.discard(evt.id)
            if not batch.remaining:
                batch.flush(Store.of(uow))
                FOLDED["batches"] += 1  # (counted when written: a transaction that aborts after may count twice)
                FOLDED["events"] += batch.size
    handle.prepare = _prepare
    handle.__name__ = getattr(handler, "__name__", "handle")
    return handle


def folded(subscriptions: dict) -> dict:
    return {decl: _folded(handler) for decl, handler in subscriptions.items()}


class _Facts:
    """Members' facts and the aggregates as a handler sees them: through the batch when one is folded,
    else straight from and to the database."""

    def __init__(self, uow: UnitOfWork):
        self.st, self.batch = Store.of(uow), getattr(uow, BATCH, None)

    def member(self, org: str, p: str) -> dict | None:
        if self.batch is not None and (org, p) in self.batch.facts:
            return self.batch.facts[(org, p)]
        return self.st.member(org, p)

    def members_of(self, org: str, pseudonyms: list[str]) -> dict[str, dict]:
        if self.batch is None or any((org, p) not in self.batch.facts for p in pseudonyms):
            return self.st.members_of(org, pseudonyms)
        return {p: self.batch.facts[(org, p)] for p in pseudonyms if self.batch.facts[(org, p)] is not None}

    def is_erased(self, marker: str) -> bool:
        return bool(self.erased_among([marker]))

    def erased_among(self, markers: list[str]) -> set[str]:
        if self.batch is None:
            return self.st.erased_among(markers)
        unknown = [m for m in markers if m not in self.batch.checked]
        return {m for m in markers if m in self.batch.erased} | (self.st.erased_among(unknown) if unknown else set())

    def save_members(self, org: str, docs: dict[str, dict]) -> None:
        if self.batch is None:
            self.st.save_members(org, docs)
            return
        for p, doc in docs.items():
            self.batch.facts[(org, p)] = doc
            self.batch.changed.setdefault(org, {})[p] = doc

    def save_member(self, org: str, p: str, doc: dict) -> None:
        if self.batch is None:
            self.st.save_member(org, p, doc)
        else:
            self.save_members(org, {p: doc})

    def add_counts(self, org: str, diff: Counter) -> None:
        if self.batch is None:
            self.st.add_counts(org, diff)
        else:
            self.batch.counts.setdefault(org, Counter()).update(diff)


def _update_member(st: _Facts, org: str, person: str, change: Callable[[dict], dict], diff: Counter) -> bool:
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
        st = _Facts(uow)

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
    st = _Facts(uow)
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
    p, marker = _pseudonym(org, person), model.erasure_marker(KEY["pseudonym_key"], org, person)
    batch = getattr(uow, BATCH, None)
    if batch is not None:  # the batch's changes so far are written first: the erasure reads the stored facts
        batch.flush(store)
    store.erase_member(org, p, marker)
    store.forget_subjects(org, [person, f"member:{person}"])
    if batch is not None:
        batch.facts[(org, p)] = None
        batch.checked.add(marker)
        batch.erased.add(marker)


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
        st = _Facts(uow)
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
