"""Matching's use cases: one function per subscribed event and per API command or periodic job.

Event handlers are ``handler(evt, uow)`` (run by the shared consumer in one transaction with the inbox);
commands take a ``uow`` from ``Repository.transaction``. Rules come from ``model``; storage from
``repository.Store``; events leave through ``uow.emit`` (the outbox).
"""
from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from shared.events.matching import (MatchAccepted, MatchActivated, MatchDeclined, MatchEnded, MatchExpired,
                                    MatchProposed, MemberWaitingTooLong, MemberWaitlisted)
from shared.mongo import utcnow
from shared.errors import NotYetKnown
from shared.unit_of_work import UnitOfWork, run_in_transaction

from matching import model
from matching.repository import SOURCE, Store, key, leader_from_doc, member_from_doc, to_dt

log = logging.getLogger(__name__)

DEFAULT_PROPOSAL_TTL_HOURS = 72.0
DEFAULT_WAITLIST_ALERT_DAYS = 14
BATCH_CANDIDATES_PER_MEMBER = 25   # a batch keeps each member's best 25 feasible leaders as candidates
BATCH_WRITE_CHUNK = 100
# Capacity appearing re-assigns at most this many of the longest-waiting members at once (inside the
# event's transaction); a batch run takes everyone.
WAITLIST_REMATCH_LIMIT = 500


class NotFound(LookupError):
    pass


class Forbidden(PermissionError):
    pass


class Contradiction(Exception):
    """A command that contradicts an override in force (``override``: the one in the way)."""

    def __init__(self, message: str, override: dict):
        super().__init__(message)
        self.override = override


class Invalid(ValueError):
    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def _iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def _store(uow: UnitOfWork) -> Store:
    return Store(uow.db, uow.session)


# --- organization policy ---------------------------------------------------------------------------

def policy(st: Store, org: str) -> dict[str, Any]:
    doc = st.org_settings(org)
    return {
        "weights": model.normalise_weights(doc.get("weights")),
        "raw_weights": {**model.DEFAULT_WEIGHTS, **(doc.get("weights") or {})},
        "proposal_ttl_hours": float(doc.get("proposal_ttl_hours") or DEFAULT_PROPOSAL_TTL_HOURS),
        "waitlist_alert_days": int(doc.get("waitlist_alert_days") or DEFAULT_WAITLIST_ALERT_DAYS),
        "version": doc.get("version", 0),
    }


def _context(st: Store, org: str, now: datetime, member_ids: list[str] | None = None) -> model.Context:
    virtual_only, names = st.site_facts(org)
    return model.Context(now=now, virtual_only_sites=virtual_only, excluded=st.excluded_leaders(org, member_ids),
                         site_names=names)


# --- proposing ------------------------------------------------------------------------------------

def propose_for_member(uow: UnitOfWork, org: str, member_id: str, *, origin: str = "new",
                       now: datetime | None = None) -> dict | None:
    """Propose the best leader for a member without an open match, or put them on the waitlist.
    Returns the new match, or None."""
    now = now or utcnow()
    st = _store(uow)
    doc = st.member(org, member_id)
    if doc is None or st.open_match(org, member_id):
        return None
    member = member_from_doc(doc)
    if not (model.member_consent_ok(member, now) and member.status in model.ELIGIBLE_MEMBER_STATUSES):
        st.remove_from_waitlist(org, member_id)
        return None
    pol = policy(st, org)
    ctx = _context(st, org, now, [member_id])
    table = model.LeaderTable([leader_from_doc(d) for d in st.leaders(org)], now)
    ev = model.evaluate(member, table, pol["weights"], ctx)
    choice = None
    pinned = st.pinned_leader(org, member_id)
    if pinned is not None and pinned in table.index and ev.feasible[table.index[pinned]]:
        choice, origin = table.index[pinned], "pinned"
    elif ev.feasible.any():
        choice = int(np.argmax(np.where(ev.feasible, ev.score, -1.0)))
    if choice is None:
        _waitlist(uow, st, org, member, *model.waitlist_reason(ev, table, ctx), now=now)
        return None
    return _create_proposal(uow, st, org, member, table, ev, choice, pol, ctx, origin, now)


def _create_proposal(uow: UnitOfWork, st: Store, org: str, member: model.Member, table: model.LeaderTable,
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
        "open_key": key(org, member.member_id), "score": score, "breakdown": breakdown, "rules_passed": rules,
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
        "rules_passed": rules, "expires_at": _iso(expires_at), "origin": origin})
    return match


def _waitlist(uow: UnitOfWork, st: Store, org: str, member: model.Member, reason: str, codes: list[str], *,
              now: datetime) -> None:
    before = st.waitlist_entry(org, member.member_id)
    entry = st.put_on_waitlist(org, member.member_id, member.site_id, reason, codes, now)
    if before is None or before.get("reason") != reason:
        uow.emit(MemberWaitlisted, {"organization_id": org, "member_id": member.member_id,
                                    "site_id": member.site_id, "reason": reason, "reason_codes": codes,
                                    "waiting_since": _iso(entry["since"])})


def rematch_waitlist(uow: UnitOfWork, org: str, now: datetime | None = None) -> int:
    """Capacity appeared (a new leader, more places, a match ended): assign waiting members optimally."""
    now = now or utcnow()
    st = _store(uow)
    waiting = st.waitlisted_member_ids(org)[:WAITLIST_REMATCH_LIMIT]
    if not waiting:
        return 0
    docs = [d for d in st.members(org, waiting) if not st.open_match(org, d["member_id"])]
    pinned = [d for d in docs if st.pinned_leader(org, d["member_id"])]
    made = sum(1 for d in pinned if propose_for_member(uow, org, d["member_id"], origin="waitlist", now=now))
    docs = [d for d in docs if d not in pinned]
    pol = policy(st, org)
    ctx = _context(st, org, now, [d["member_id"] for d in docs])
    table = model.LeaderTable([leader_from_doc(d) for d in st.leaders(org)], now)
    members = [member_from_doc(d) for d in docs]
    evaluations = [model.evaluate(m, table, pol["weights"], ctx) for m in members]
    rows = [(np.flatnonzero(ev.feasible), ev.base_score[ev.feasible]) for ev in evaluations]
    result = model.assign(rows, None, table.open_count, table.capacity, pol["weights"]["leader_load"])
    for m_index, l_index in result.pairs.items():
        _create_proposal(uow, st, org, members[m_index], table, evaluations[m_index], l_index, pol, ctx, "waitlist", now)
        made += 1
    return made


# --- lifecycle commands ----------------------------------------------------------------------------

def _load_for(st: Store, org: str, match_id: str, principal) -> dict:
    doc = st.match(org, match_id)
    if doc is None or not can_see(principal, doc):
        raise NotFound(f"no match {match_id}")
    return doc


def can_see(principal, doc: dict) -> bool:
    if principal is None:
        return True
    if principal.role == "leader":
        return doc["leader_id"] == principal.leader_id
    return principal.can_access_site(doc["site_id"])


def accept(uow: UnitOfWork, org: str, match_id: str, principal, now: datetime | None = None) -> dict:
    now = now or utcnow()
    st = _store(uow)
    doc = _load_for(st, org, match_id, principal)
    model.check_transition(doc["status"], "accept")
    updated = st.update_match(doc, {"status": model.ACTIVE, "accepted_at": now, "activated_at": now,
                                    "accepted_by": principal.subject, "accepted_by_role": principal.role},
                              history={"at": now, "status": model.ACTIVE, "by": principal.subject,
                                       "role": principal.role, "note": "accepted"})
    ref = _ref(doc)
    uow.emit(MatchAccepted, {**ref, "accepted_by_role": principal.role})
    uow.emit(MatchActivated, ref)
    return updated


def decline(uow: UnitOfWork, org: str, match_id: str, principal, reason: str, now: datetime | None = None) -> dict:
    now = now or utcnow()
    st = _store(uow)
    doc = _load_for(st, org, match_id, principal)
    model.check_transition(doc["status"], "decline")
    updated = st.update_match(doc, {"status": model.DECLINED, "declined_at": now, "declined_by": principal.subject,
                                    "declined_by_role": principal.role, "decline_reason": reason},
                              close=True, history={"at": now, "status": model.DECLINED, "by": principal.subject,
                                                   "role": principal.role, "note": reason})
    st.add_to_leader_load(org, doc["leader_id"], -1)
    _exclude(st, doc, "declined", principal.subject, principal.role, reason, now)
    uow.emit(MatchDeclined, {**_ref(doc), "declined_by_role": principal.role, "reason": reason})
    propose_for_member(uow, org, doc["member_id"], origin="after_decline", now=now)
    rematch_waitlist(uow, org, now)
    return updated


def expire_proposal(uow: UnitOfWork, match_id: str, now: datetime | None = None) -> bool:
    now = now or utcnow()
    st = _store(uow)
    doc = st.match_by_id(match_id)
    if doc is None or doc["status"] != model.PROPOSED or doc["expires_at"] > now:
        return False
    org = doc["organization_id"]
    st.update_match(doc, {"status": model.EXPIRED, "expired_at": now}, close=True,
                    history={"at": now, "status": model.EXPIRED, "by": "system", "role": "system",
                             "note": "no answer in time"})
    st.add_to_leader_load(org, doc["leader_id"], -1)
    _exclude(st, doc, "expired", "system", "system", "the proposal expired without an answer", now)
    uow.emit(MatchExpired, _ref(doc))
    propose_for_member(uow, org, doc["member_id"], origin="re_proposal", now=now)
    rematch_waitlist(uow, org, now)
    return True


def end(uow: UnitOfWork, org: str, match_id: str, principal, reason_code: str, reason: str | None,
        now: datetime | None = None) -> dict:
    """End a match by hand: the leader (leader_choice), a coordinator/admin (coordinator), or on the
    member's behalf (member_choice)."""
    st = _store(uow)
    doc = _load_for(st, org, match_id, principal)
    if principal.role == "leader" and reason_code != "leader_choice":
        raise Forbidden("a leader ends a match with reason_code leader_choice")
    return end_match(uow, doc, by_role=principal.role, by=principal.subject, reason_code=reason_code,
                     reason=reason, now=now)


def end_match(uow: UnitOfWork, doc: dict, *, by_role: str, by: str, reason_code: str, reason: str | None,
              re_propose: bool | None = None, now: datetime | None = None) -> dict:
    now = now or utcnow()
    st = _store(uow)
    org = doc["organization_id"]
    model.check_transition(doc["status"], "end")
    re_propose = model.RE_PROPOSE_AFTER[reason_code] if re_propose is None else re_propose
    updated = st.update_match(doc, {"status": model.ENDED, "ended_at": now, "ended_by": by, "ended_by_role": by_role,
                                    "end_reason_code": reason_code, "end_reason": reason},
                              close=True, history={"at": now, "status": model.ENDED, "by": by, "role": by_role,
                                                   "note": f"{reason_code}: {reason or ''}".strip()})
    st.add_to_leader_load(org, doc["leader_id"], -1)
    if reason_code in ("leader_choice", "coordinator", "member_choice"):
        _exclude(st, doc, f"ended_{reason_code}", by, by_role, reason, now)
    uow.emit(MatchEnded, {**_ref(doc), "ended_by_role": by_role, "reason_code": reason_code, "reason": reason,
                          "re_proposal_follows": bool(re_propose)})
    if re_propose:
        propose_for_member(uow, org, doc["member_id"], origin="re_proposal", now=now)
    if reason_code not in ("leader_left", "certification_lapsed"):
        rematch_waitlist(uow, org, now)
    return updated


def request_different_leader(uow: UnitOfWork, org: str, member_id: str, principal, reason: str,
                             now: datetime | None = None) -> dict:
    """The member asked for someone else: the open match ends (member's choice) and the next best
    leader is proposed; the request is recorded with who passed it on and why."""
    st = _store(uow)
    _member_for(st, org, member_id, principal)
    doc = st.open_match(org, member_id)
    if doc is None:
        raise model.TransitionError("the member has no open match to change")
    st.deactivate_pins(org, member_id)
    return end_match(uow, doc, by_role=principal.role, by=principal.subject, reason_code="member_choice",
                     reason=f"asked for a different leader: {reason}", re_propose=True, now=now)


def _exclude(st: Store, doc: dict, kind: str, by: str, role: str, reason: str | None, now: datetime) -> None:
    st.add_override({"_id": str(uuid.uuid4()), "organization_id": doc["organization_id"],
                     "member_id": doc["member_id"], "leader_id": doc["leader_id"], "kind": kind, "active": True,
                     "by": by, "role": role, "reason": reason, "at": now, "match_id": doc["_id"]})


def _ref(doc: dict) -> dict:
    return {"organization_id": doc["organization_id"], "match_id": doc["_id"], "member_id": doc["member_id"],
            "leader_id": doc["leader_id"], "site_id": doc["site_id"]}


def _member_for(st: Store, org: str, member_id: str, principal, field: str | None = None) -> dict:
    """The member from intake's events; one missing (not arrived yet, made up, another organization's or
    another site's) answers "not yet known": 404 for a path reference, 422 naming ``field`` for a body one."""
    doc = st.member(org, member_id)
    if doc is None or (principal is not None and not principal.can_access_site(doc["site_id"])):
        raise NotYetKnown("member", member_id, service="matching", field=field)
    return doc


# --- overrides -----------------------------------------------------------------------------------

def add_override(uow: UnitOfWork, org: str, principal, member_id: str, leader_id: str, kind: str, reason: str,
                 now: datetime | None = None) -> dict:
    """A coordinator pins (propose this leader) or blocks (never this leader) a pairing, with why."""
    now = now or utcnow()
    st = _store(uow)
    _member_for(st, org, member_id, principal, field="member_id")
    if st.leader(org, leader_id) is None:
        raise NotYetKnown("leader", leader_id, service="matching", field="leader_id")
    # Pinning a leader the member has blocked (or blocking the pinned one) contradicts an override in force:
    # that one is lifted first (DELETE /v1/overrides/{id}).
    other_kind = "block" if kind == "pin" else "pin"
    if (in_the_way := st.active_override(org, member_id, leader_id, other_kind)) is not None:
        raise Contradiction(
            f"The member has this leader {'blocked' if other_kind == 'block' else 'pinned'} (override "
            f"{in_the_way['_id']}); lift that override before you {kind} the leader.", in_the_way)
    if kind == "pin":
        st.deactivate_pins(org, member_id)
    override = {"_id": str(uuid.uuid4()), "organization_id": org, "member_id": member_id, "leader_id": leader_id,
                "kind": kind, "active": True, "by": principal.subject, "role": principal.role, "reason": reason,
                "at": now}
    st.add_override(override)
    current = st.open_match(org, member_id)
    if kind == "block" and current is not None and current["leader_id"] == leader_id:
        end_match(uow, current, by_role=principal.role, by=principal.subject, reason_code="coordinator",
                  reason=f"pairing blocked: {reason}", now=now)
        st.link_exclusions(current, override["_id"])
    elif kind == "pin" and (current is None or current["leader_id"] != leader_id):
        if current is not None:
            end_match(uow, current, by_role=principal.role, by=principal.subject, reason_code="coordinator",
                      reason=f"another leader pinned: {reason}", re_propose=False, now=now)
            st.link_exclusions(current, override["_id"])
        made = propose_for_member(uow, org, member_id, origin="pinned", now=now)
        if made is None or made["leader_id"] != leader_id:
            override["warning"] = "The pinned leader fails a hard rule now; the member got the best other option."
    return override


def lift_override(uow: UnitOfWork, org: str, principal, override_id: str, now: datetime | None = None) -> dict:
    """Lift a coordinator's pin or block (kept, inactive, with who lifted it and when), and with it the
    exclusion it caused (the match it ended). Lifting a block makes the leader eligible again: a member who
    waits is considered again at once (proposed, or waitlisted with the reason as it is now). Lifting a pin
    leaves the member's current match as it is; later proposals go by score."""
    now = now or utcnow()
    st = _store(uow)
    doc = st.override(org, override_id)
    if doc is None or (principal is not None and not principal.is_admin and not any(
            principal.can_access_site(m["site_id"]) for m in st.members(org, [doc["member_id"]]))):
        raise NotFound(f"no override {override_id}")
    if doc["kind"] not in ("pin", "block"):
        raise model.TransitionError(f"Override {override_id} is a recorded exclusion ({doc['kind']}), not a pin or "
                                    "a block; it cannot be lifted.")
    lifted = {"lifted_at": now, "lifted_by": principal.subject, "lifted_by_role": principal.role}
    if not st.lift_override(doc, lifted):
        raise NotFound(f"no override {override_id}")
    if doc["kind"] == "block" and st.member(org, doc["member_id"]) and st.open_match(org, doc["member_id"]) is None:
        propose_for_member(uow, org, doc["member_id"], origin="waitlist", now=now)
    return {**doc, "active": False, **lifted}


# --- proposals for a member (read only) -----------------------------------------------------------

def proposals_for(st: Store, org: str, member_id: str, principal, limit: int = 5,
                  now: datetime | None = None) -> dict:
    """The member's best candidates with their breakdowns, and why the others are out."""
    now = now or utcnow()
    doc = _member_for(st, org, member_id, principal)
    member = member_from_doc(doc)
    pol = policy(st, org)
    ctx = _context(st, org, now, [member_id])
    table = model.LeaderTable([leader_from_doc(d) for d in st.leaders(org)], now)
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
    return out


# --- intake's events -------------------------------------------------------------------------------

def _member_fields(data: dict) -> dict:
    consent, until = model.matching_consent(data.get("consents"))
    return {
        "site_id": data["site_id"], "status": data["status"], "time_zone": data["time_zone"],
        "languages": data.get("languages") or [], "leader_gender_preference": data.get("leader_gender_preference"),
        "meeting_mode": data.get("meeting_mode", "either"), "availability": data.get("availability") or [],
        "substances": data.get("substances") or [], "pathways": data.get("pathways") or [],
        "co_occurring_mental_health": data.get("co_occurring_mental_health", "prefer_not_to_say"),
        "lived_experience_topics": data.get("lived_experience_topics") or [],
        "matching_consent": consent, "matching_consent_expires_at": until,
    }


def _after_member_change(uow: UnitOfWork, org: str, member_id: str, now: datetime) -> None:
    """Keep a member's open match only while they may be matched; otherwise propose or waitlist."""
    st = _store(uow)
    doc = st.member(org, member_id)
    member = member_from_doc(doc)
    current = st.open_match(org, member_id)
    if current is not None:
        if not model.member_consent_ok(member, now):
            end_match(uow, current, by_role="system", by="system", reason_code="consent_revoked",
                      reason="the member's matching consent was withdrawn or has expired", now=now)
        elif member.status not in model.ELIGIBLE_MEMBER_STATUSES:
            end_match(uow, current, by_role="system", by="system", reason_code="member_inactive",
                      reason=f"the member is now {member.status}", now=now)
        return
    propose_for_member(uow, org, member_id, origin="new", now=now)


def on_member_registered(evt, uow: UnitOfWork) -> None:
    org, data = evt.organization_id, evt.data
    fields = _member_fields(data)
    if not fields["time_zone"]:
        fields["time_zone"] = _store(uow).site_time_zone(org, data["site_id"]) or "UTC"
    _store(uow).save_member(org, data["member_id"], fields)
    _after_member_change(uow, org, data["member_id"], utcnow())


on_member_updated = on_member_registered


def on_member_consent_changed(evt, uow: UnitOfWork) -> None:
    org, data = evt.organization_id, evt.data
    st = _store(uow)
    if st.member(org, data["member_id"]) is None:
        return  # consent for a member we never saw registered: the registration will carry it
    consent, until = model.matching_consent(data.get("consents"))
    st.save_member(org, data["member_id"], {"matching_consent": consent, "matching_consent_expires_at": until})
    _after_member_change(uow, org, data["member_id"], utcnow())


def on_member_status_changed(evt, uow: UnitOfWork) -> None:
    org, data = evt.organization_id, evt.data
    st = _store(uow)
    if st.member(org, data["member_id"]) is None:
        return
    st.save_member(org, data["member_id"], {"status": data["to_status"]})
    _after_member_change(uow, org, data["member_id"], utcnow())


def on_member_transferred(evt, uow: UnitOfWork) -> None:
    org, data = evt.organization_id, evt.data
    st = _store(uow)
    if st.member(org, data["member_id"]) is None:
        return
    now = utcnow()
    st.save_member(org, data["member_id"], {"site_id": data["to_site_id"], "time_zone": data["time_zone"]})
    current = st.open_match(org, data["member_id"])
    if current is not None:
        member = member_from_doc(st.member(org, data["member_id"]))
        table = model.LeaderTable([leader_from_doc(d) for d in st.leaders(org) if d["leader_id"] == current["leader_id"]], now)
        ctx = _context(st, org, now)
        if table.leaders:
            table.remaining[:] = 1  # the member already holds a place with this leader
        ev = model.evaluate(member, table, policy(st, org)["weights"], ctx)
        if not (len(ev.feasible) and ev.rules["location"][0]):
            end_match(uow, current, by_role="system", by="system", reason_code="member_inactive",
                      reason=f"the member moved to site {data['to_site_id']}", re_propose=True, now=now)
        else:
            st.move_match_to_site(current, data["to_site_id"])
    else:
        propose_for_member(uow, org, data["member_id"], origin="new", now=now)


def on_member_erased(evt, uow: UnitOfWork) -> None:
    org, member_id = evt.organization_id, evt.data["member_id"]
    st = _store(uow)
    current = st.open_match(org, member_id)
    if current is not None:
        end_match(uow, current, by_role="system", by="system", reason_code="member_erased", reason=None)
    st.delete_member(org, member_id)
    st.erase_member_history(org, member_id)


def _leader_fields(data: dict) -> dict:
    certified, until = model.certification_valid_until(data.get("certifications"))
    return {
        "site_ids": data.get("site_ids") or [], "status": data["status"], "time_zone": data["time_zone"],
        "languages": data.get("languages") or [], "gender": data.get("gender"),
        "meets_virtually": bool(data.get("meets_virtually")), "availability": data.get("availability") or [],
        "capacity": int(data.get("capacity") or 0), "substances": data.get("substances") or [],
        "pathways": data.get("pathways") or [], "lived_experience_areas": data.get("lived_experience_areas") or [],
        "co_occurring_mental_health_experience": bool(data.get("co_occurring_mental_health_experience")),
        "certified": certified, "certified_until": to_dt(until),
    }


def _after_leader_change(uow: UnitOfWork, org: str, leader_id: str, now: datetime) -> None:
    """A leader who left or lost certification gives up their members (who get new proposals);
    otherwise the leader may be able to take waiting members."""
    st = _store(uow)
    leader = leader_from_doc(st.leader(org, leader_id))
    if leader.status != "active":
        reason_code, reason = "leader_left", f"the leader is {leader.status.replace('_', ' ')}"
    elif not leader.certified or (leader.certified_until is not None and leader.certified_until < now.date()):
        reason_code, reason = "certification_lapsed", "the leader's certification is no longer current"
    else:
        rematch_waitlist(uow, org, now)
        return
    for doc in st.open_matches_of_leader(org, leader_id):
        end_match(uow, doc, by_role="system", by="system", reason_code=reason_code, reason=reason, now=now)


def on_leader_registered(evt, uow: UnitOfWork) -> None:
    org, data = evt.organization_id, evt.data
    _store(uow).save_leader(org, data["leader_id"], _leader_fields(data))
    _after_leader_change(uow, org, data["leader_id"], utcnow())


on_leader_updated = on_leader_registered


def _leader_patch(evt, uow: UnitOfWork, fields: dict) -> None:
    org = evt.organization_id
    st = _store(uow)
    if st.leader(org, evt.data["leader_id"]) is None:
        return  # we have not seen the leader's registration: nothing to patch
    st.save_leader(org, evt.data["leader_id"], fields)
    _after_leader_change(uow, org, evt.data["leader_id"], utcnow())


def on_leader_capacity_changed(evt, uow: UnitOfWork) -> None:
    _leader_patch(evt, uow, {"capacity": evt.data["capacity"]})


def on_leader_availability_changed(evt, uow: UnitOfWork) -> None:
    _leader_patch(evt, uow, {"time_zone": evt.data["time_zone"], "availability": evt.data["availability"]})


def on_leader_deactivated(evt, uow: UnitOfWork) -> None:
    _leader_patch(evt, uow, {"status": evt.data["to_status"]})


def on_leader_reactivated(evt, uow: UnitOfWork) -> None:
    _leader_patch(evt, uow, {"status": "active"})


def on_site_changed(evt, uow: UnitOfWork) -> None:
    data = evt.data
    _store(uow).upsert_site(evt.organization_id, data["site_id"],
                            {"name": data.get("name"), "time_zone": data["time_zone"],
                             "virtual_only": bool(data["virtual_only"])})


# --- periodic jobs (safe in every worker copy: each change re-checks state in its transaction) ------

def expire_due_proposals(client, db, now: datetime | None = None) -> int:
    now = now or utcnow()
    done = 0
    for doc in Store(db).expired_proposals(now):
        if run_in_transaction(client, db, lambda uow, mid=doc["_id"]: expire_proposal(uow, mid, now), source=SOURCE):
            done += 1
    return done


def end_lapsed(client, db, now: datetime | None = None) -> int:
    """Certifications and matching consents expire with time, without any event: end those matches."""
    now = now or utcnow()
    today = datetime(now.year, now.month, now.day, tzinfo=now.tzinfo)
    st = Store(db)
    lapsed_leaders = st.leaders_with_lapsed_certification(today)
    lapsed_members = st.members_with_lapsed_consent(now)
    for member in lapsed_members:
        st.remove_from_waitlist(member["organization_id"], member["member_id"])  # no wait without consent
    count = 0
    for leader in lapsed_leaders:
        run_in_transaction(client, db, lambda uow, l=leader: _after_leader_change(uow, l["organization_id"],
                                                                                   l["leader_id"], now), source=SOURCE)
        count += 1
    for member in lapsed_members:
        if st.open_match(member["organization_id"], member["member_id"]):
            run_in_transaction(client, db, lambda uow, m=member: _after_member_change(uow, m["organization_id"],
                                                                                       m["member_id"], now), source=SOURCE)
            count += 1
    return count


def alert_waiting_too_long(client, db, now: datetime | None = None) -> int:
    now = now or utcnow()
    sent = 0
    st = Store(db)
    for org in st.organizations_with_unalerted_waits():
        days = policy(st, org)["waitlist_alert_days"]
        for entry in st.waiting_too_long(org, now - timedelta(days=days)):
            def work(uow, entry=entry):
                if not _store(uow).mark_alerted(entry, now):
                    return False
                uow.emit(MemberWaitingTooLong, {
                    "organization_id": org, "member_id": entry["member_id"], "site_id": entry["site_id"],
                    "reason": entry["reason"], "waiting_since": _iso(entry["since"]),
                    "days_waiting": (now - entry["since"]).days})
                return True
            sent += bool(run_in_transaction(client, db, work, source=SOURCE))
    return sent


# --- batch runs ------------------------------------------------------------------------------------

def start_batch_run(uow: UnitOfWork, org: str, principal, site_id: str | None, now: datetime | None = None) -> dict:
    now = now or utcnow()
    if site_id is None and not principal.is_admin:
        raise Forbidden("a coordinator starts batch runs for one of their sites (give site_id)")
    # Another organization's site, or (for a coordinator) a site not in their token: 404, as if unknown.
    if site_id is not None and not (principal.can_access_site(site_id) and _store(uow).site_known(org, site_id)):
        raise NotFound(f"no site {site_id}")
    run = {"_id": str(uuid.uuid4()), "organization_id": org, "site_id": site_id, "status": "queued",
           "requested_by": principal.subject, "requested_by_role": principal.role, "created_at": now}
    _store(uow).insert_batch_run(run)
    return run


def run_batch(client, db, run: dict, now: datetime | None = None) -> dict:
    """Assign every member of the organization (or site) who waits for a leader, optimally at once.
    Planned in memory, then written in small transactions that re-check each pair (a member may have
    been matched meanwhile, a leader may have filled up)."""
    started = time.perf_counter()
    now = now or utcnow()
    org, site_id = run["organization_id"], run.get("site_id")
    st = Store(db)
    pol = policy(st, org)
    docs = st.members_without_open_match(org, site_id)
    members = [member_from_doc(d) for d in docs]
    members = [m for m in members if model.member_consent_ok(m, now) and m.status in model.ELIGIBLE_MEMBER_STATUSES]
    # A coordinator's pin decides for that member (when it passes the hard rules): proposed one by one first.
    pinned_ids = {o["member_id"] for o in st.overrides(org, kinds=("pin",))}
    considered = len(members)
    matched, total, unmatched = 0, 0.0, []
    for member in [m for m in members if m.member_id in pinned_ids]:
        made = run_in_transaction(client, db, lambda uow, mid=member.member_id: propose_for_member(
            uow, org, mid, origin="batch", now=now), source=SOURCE)
        if made is not None:
            matched, total = matched + 1, total + made["score"]
        else:
            entry = st.waitlist_entry(org, member.member_id)
            if entry is not None:
                unmatched.append({"member_id": member.member_id, "site_id": member.site_id, "reason": entry["reason"],
                                  "reason_codes": entry.get("reason_codes", [])})
    members = [m for m in members if m.member_id not in pinned_ids]
    ctx = _context(st, org, now)
    table = model.LeaderTable([leader_from_doc(d) for d in st.leaders(org)], now)
    rows, had_candidates = [], []
    for m in members:
        ev = model.evaluate(m, table, pol["weights"], ctx)
        rows.append((np.flatnonzero(ev.feasible), ev.base_score[ev.feasible]))
        had_candidates.append(int(ev.feasible.sum()))
    result = model.assign(rows, None, table.open_count, table.capacity, pol["weights"]["leader_load"],
                          candidates_per_member=BATCH_CANDIDATES_PER_MEMBER)
    solved = time.perf_counter()
    plan = [(m_index, result.pairs.get(m_index)) for m_index in range(len(members))]
    write_table = model.LeaderTable([leader_from_doc(d) for d in st.leaders(org)], now)
    for start in range(0, len(plan), BATCH_WRITE_CHUNK):
        chunk = plan[start:start + BATCH_WRITE_CHUNK]

        def work(uow, chunk=chunk):
            out = []
            st_tx = _store(uow)
            local = write_table
            local.refresh_load({d["leader_id"]: leader_from_doc(d) for d in st_tx.leaders(org)})
            deferred: list[dict] = []
            already = st_tx.members_with_open_match(org, [members[m].member_id for m, _ in chunk])
            for m_index, l_index in chunk:
                member = members[m_index]
                if member.member_id in already:
                    continue
                ev = model.evaluate(member, local, pol["weights"], ctx)
                target = None if l_index is None else local.index.get(table.leaders[l_index].leader_id)
                if target is not None and ev.feasible[target]:
                    match = _create_proposal(uow, st_tx, org, member, local, ev, target, pol, ctx, "batch", now,
                                             deferred=deferred)
                    local.remaining[target] -= 1
                    out.append(("matched", member.member_id, match["score"]))
                else:
                    if had_candidates[m_index] and ev.feasible.any():
                        reason = ("Suitable leaders exist, but their places went to members the run could not "
                                  "place elsewhere.")
                        codes = ["no_capacity"]
                    else:
                        reason, codes = model.waitlist_reason(ev, local, ctx)
                    _waitlist(uow, st_tx, org, member, reason, codes, now=now)
                    out.append(("unmatched", member.member_id, {"member_id": member.member_id,
                                                                "site_id": member.site_id, "reason": reason,
                                                                "reason_codes": codes}))
            st_tx.write_proposals(org, deferred)
            return out

        for kind, member_id, value in run_in_transaction(client, db, work, source=SOURCE):
            if kind == "matched":
                matched += 1
                total += value
            else:
                unmatched.append(value)
    fields = {"status": "done", "finished_at": utcnow(), "members_considered": considered, "matched": matched,
              "total_score": round(total, 2), "unmatched_count": len(unmatched), "unmatched": unmatched[:5000],
              "solve_seconds": round(solved - started, 3), "seconds": round(time.perf_counter() - started, 3)}
    st.finish_batch_run(run["_id"], fields)
    return {**run, **fields}


def run_queued_batches(client, db, owner: str = "worker", now: datetime | None = None) -> int:
    st = Store(db)
    st.stale_running_runs((now or utcnow()) - timedelta(minutes=30))
    done = 0
    while (run := st.claim_batch_run(now or utcnow(), owner)) is not None:
        try:
            run_batch(client, db, run, now)
        except Exception as exc:  # noqa: BLE001 - a failed run is recorded, the job goes on
            log.exception("batch run failed", extra={"run_id": run["_id"]})
            st.finish_batch_run(run["_id"], {"status": "failed", "error": repr(exc)[:500], "finished_at": utcnow()})
        done += 1
    return done


# --- organization settings -------------------------------------------------------------------------

def save_settings(uow: UnitOfWork, org: str, changes: dict, expected_version: int) -> dict:
    st = _store(uow)
    current = st.org_settings(org)
    weights = {**(current.get("weights") or {}), **(changes.get("weights") or {})}
    try:
        model.normalise_weights(weights)
    except model.InvalidWeights as exc:
        raise Invalid({f"weights.{k}" if k in model.PARTS or k != "weights" else k: v for k, v in exc.errors.items()})
    fields = {"weights": weights}
    for name in ("proposal_ttl_hours", "waitlist_alert_days"):
        if changes.get(name) is not None:
            fields[name] = changes[name]
    return st.save_org_settings(org, fields, expected_version)
