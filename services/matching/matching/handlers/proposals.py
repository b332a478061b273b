"""Proposing: the best leader for a member (or the waitlist, with the reason in words), the waitlist
re-matched optimally when capacity appears, and a member's candidates as the API explains them."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import numpy as np

from shared.clock import utcnow
from shared.events.matching import MatchProposed, MemberWaitlisted
from shared.unit_of_work import UnitOfWork

from matching import access, model
from matching.handlers.settings import policy
from matching.repository import Store, leader_from_doc, member_from_doc

# Capacity appearing re-assigns at most this many of the longest-waiting members at once (inside the
# event's transaction); a batch run takes everyone.
WAITLIST_REMATCH_LIMIT = 500


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def context(st: Store, org: str, now: datetime, member_ids: list[str] | None = None,
            excluded: dict[str, frozenset[str]] | None = None) -> model.Context:
    """``excluded``: the members' excluded leaders when the caller read them already."""
    virtual_only, names = st.site_facts(org)
    if excluded is None:
        excluded = st.excluded_leaders(org, member_ids)
    return model.Context(now=now, virtual_only_sites=virtual_only, excluded=excluded, site_names=names)


def leader_table(st: Store, org: str, now: datetime) -> model.LeaderTable:
    return model.LeaderTable([leader_from_doc(d) for d in st.leaders(org)], now)


def propose_for_member(uow: UnitOfWork, org: str, member_id: str, *, origin: str = "new",
                       now: datetime | None = None) -> dict | None:
    """Propose the best leader for a member without an open match, or put them on the waitlist.
    Returns the new match, or None."""
    now = now or utcnow()
    st = Store.of(uow)
    doc = st.member(org, member_id)
    if doc is None or st.open_match(org, member_id):
        return None
    return propose_unmatched(uow, st, org, member_from_doc(doc), origin=origin, now=now)


def propose_unmatched(uow: UnitOfWork, st: Store, org: str, member: model.Member, *, origin: str,
                      now: datetime) -> dict | None:
    """``propose_for_member`` for a member the caller found without an open match in this transaction (a
    registration's recheck: no second look, as each is a round trip in the consumer's path)."""
    member_id = member.member_id
    if not (model.member_consent_ok(member, now) and member.status in model.ELIGIBLE_MEMBER_STATUSES):
        st.remove_from_waitlist(org, member_id)
        return None
    pol = policy(st, org)
    excluded, pinned = st.member_overrides(org, member_id)
    ctx = context(st, org, now, excluded={member_id: excluded})
    table = leader_table(st, org, now)
    ev = model.evaluate(member, table, pol["weights"], ctx)
    choice = None
    if pinned is not None and pinned in table.index and ev.feasible[table.index[pinned]]:
        choice, origin = table.index[pinned], "pinned"
    elif ev.feasible.any():
        choice = int(np.argmax(np.where(ev.feasible, ev.score, -1.0)))
    if choice is None:
        waitlist(uow, st, org, member, *model.waitlist_reason(ev, table, ctx), now=now)
        return None
    return create_proposal(uow, st, org, member, table, ev, choice, pol, ctx, origin, now)


def create_proposal(uow: UnitOfWork, st: Store, org: str, member: model.Member, table: model.LeaderTable,
                    ev: model.Evaluation, i: int, pol: dict, ctx: model.Context, origin: str, now: datetime,
                    *, deferred: list | None = None) -> dict:
    """Write the proposal, count it against the leader, take the member off the waitlist, emit it.
    With ``deferred`` (a batch run) the writes are collected there and done together by the caller."""
    leader = table.leaders[i]
    score, breakdown, rules = model.explain(ev, table, i, pol["weights"], ctx)
    expires_at = now + timedelta(hours=pol["proposal_ttl_hours"])
    match = {
        "_id": str(uuid.uuid4()), "organization_id": org, "member_id": member.member_id,
        "leader_id": leader.leader_id, "site_id": member.site_id, "status": model.PROPOSED,
        "score": score, "breakdown": breakdown, "rules_passed": rules,
        "origin": origin, "proposed_at": now, "expires_at": expires_at, "version": 0,
        "history": [{"at": now, "status": model.PROPOSED, "by": "system", "role": "system", "note": origin}],
    }
    leader.open_count += 1
    if deferred is None:
        st.insert_match(match)
        st.add_to_leader_load(org, leader.leader_id, +1)
        st.remove_from_waitlist(org, member.member_id)
    else:
        deferred.append(match)
    uow.emit(MatchProposed, {
        "organization_id": org, "match_id": match["_id"], "member_id": member.member_id,
        "leader_id": leader.leader_id, "site_id": member.site_id, "score": score, "breakdown": breakdown,
        "rules_passed": rules, "expires_at": iso(expires_at), "origin": origin})
    return match


def waitlist(uow: UnitOfWork, st: Store, org: str, member: model.Member, reason: str, codes: list[str], *,
             now: datetime) -> None:
    before = st.waitlist_entry(org, member.member_id)
    entry = st.put_on_waitlist(org, member.member_id, member.site_id, reason, codes, now)
    if before is None or before.get("reason") != reason:
        uow.emit(MemberWaitlisted, {"organization_id": org, "member_id": member.member_id,
                                    "site_id": member.site_id, "reason": reason, "reason_codes": codes,
                                    "waiting_since": iso(entry["since"])})


def rematch_waitlist(uow: UnitOfWork, org: str, now: datetime | None = None) -> int:
    """Capacity appeared (a new leader, more places, a match ended): assign waiting members optimally."""
    now = now or utcnow()
    st = Store.of(uow)
    waiting = st.waitlisted_member_ids(org)[:WAITLIST_REMATCH_LIMIT]
    if not waiting:
        return 0
    docs = [d for d in st.members(org, waiting) if not st.open_match(org, d["member_id"])]
    pinned = [d for d in docs if st.pinned_leader(org, d["member_id"])]
    made = sum(1 for d in pinned if propose_for_member(uow, org, d["member_id"], origin="waitlist", now=now))
    docs = [d for d in docs if d not in pinned]
    pol = policy(st, org)
    ctx = context(st, org, now, [d["member_id"] for d in docs])
    table = leader_table(st, org, now)
    members = [member_from_doc(d) for d in docs]
    evaluations = [model.evaluate(m, table, pol["weights"], ctx) for m in members]
    rows = [(np.flatnonzero(ev.feasible), ev.base_score[ev.feasible]) for ev in evaluations]
    result = model.assign(rows, None, table.open_count, table.capacity, pol["weights"]["leader_load"])
    for m_index, l_index in result.pairs.items():
        create_proposal(uow, st, org, members[m_index], table, evaluations[m_index], l_index, pol, ctx, "waitlist", now)
        made += 1
    return made


def proposals_for(st: Store, org: str, member_id: str, principal, limit: int = 5,
                  now: datetime | None = None) -> dict:
    """The member's best candidates with their breakdowns, and why the others are out (a read, audited)."""
    now = now or utcnow()
    doc = access.visible_member(st, org, member_id, principal)
    member = member_from_doc(doc)
    pol = policy(st, org)
    ctx = context(st, org, now, [member_id])
    table = leader_table(st, org, now)
    ev = model.evaluate(member, table, pol["weights"], ctx)
    order = [int(i) for i in np.argsort(-ev.score, kind="stable") if ev.feasible[i]][:limit]
    candidates = []
    for i in order:
        score, breakdown, rules = model.explain(ev, table, i, pol["weights"], ctx)
        candidates.append({"leader_id": table.leaders[i].leader_id, "score": score, "breakdown": breakdown,
                           "rules_passed": rules})
    out = {"member_id": member_id, "candidates": candidates, "excluded": []}
    for i in range(len(table.leaders)):
        if not ev.feasible[i]:
            out["excluded"].append({"leader_id": table.leaders[i].leader_id,
                                    "rules_failed": model.rules_failed_in_words(ev, i)})
    if not candidates:
        out["waitlist_reason"] = model.waitlist_reason(ev, table, ctx)[0]
    st.audit(principal, "read", "member_matching_candidates", member_id, org)
    return out
