"""A match's lifecycle: accepted, declined, expired or ended (by a person or by the system), and the
re-checks that end or re-propose matches when a member or leader changes."""
from __future__ import annotations

import uuid
from datetime import datetime

from shared.clock import utcnow
from shared.events.matching import MatchAccepted, MatchActivated, MatchDeclined, MatchEnded, MatchExpired
from shared.unit_of_work import UnitOfWork

from matching import access, model
from matching.handlers.proposals import propose_for_member, propose_unmatched, rematch_waitlist
from matching.repository import Store, leader_from_doc, member_from_doc


def _audit(st: Store, principal, org: str, member_id: str, change: str, **details) -> None:
    """A change of a member's match, recorded in the same transaction (ids only)."""
    st.audit(principal, "update", "member_match", member_id, org, change=change, **details)


def accept(uow: UnitOfWork, org: str, match_id: str, principal, now: datetime | None = None) -> dict:
    now = now or utcnow()
    st = Store.of(uow)
    doc = access.visible_match(st, org, match_id, principal)
    model.check_transition(doc["status"], "accept")
    updated = st.update_match(doc, {"status": model.ACTIVE, "accepted_at": now, "activated_at": now,
                                    "accepted_by": principal.subject, "accepted_by_role": principal.role},
                              history={"at": now, "status": model.ACTIVE, "by": principal.subject,
                                       "role": principal.role, "note": "accepted"})
    ref = _ref(doc)
    uow.emit(MatchAccepted, {**ref, "accepted_by_role": principal.role})
    uow.emit(MatchActivated, ref)
    _audit(st, principal, org, updated["member_id"], "accept", match_id=updated["_id"])
    return updated


def decline(uow: UnitOfWork, org: str, match_id: str, principal, reason: str, now: datetime | None = None) -> dict:
    now = now or utcnow()
    st = Store.of(uow)
    doc = access.visible_match(st, org, match_id, principal)
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
    _audit(st, principal, org, updated["member_id"], "decline", match_id=updated["_id"])
    return updated


def expire_proposal(uow: UnitOfWork, match_id: str, now: datetime | None = None) -> bool:
    now = now or utcnow()
    st = Store.of(uow)
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
    st = Store.of(uow)
    doc = access.visible_match(st, org, match_id, principal)
    access.check_may_end(principal, reason_code)
    updated = end_match(uow, doc, by_role=principal.role, by=principal.subject, reason_code=reason_code,
                        reason=reason, now=now)
    _audit(st, principal, org, updated["member_id"], "end", match_id=updated["_id"])
    return updated


def end_match(uow: UnitOfWork, doc: dict, *, by_role: str, by: str, reason_code: str, reason: str | None,
              re_propose: bool | None = None, now: datetime | None = None) -> dict:
    now = now or utcnow()
    st = Store.of(uow)
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
    st = Store.of(uow)
    access.visible_member(st, org, member_id, principal)
    doc = st.open_match(org, member_id)
    if doc is None:
        raise model.TransitionError("the member has no open match to change")
    st.deactivate_pins(org, member_id)
    ended = end_match(uow, doc, by_role=principal.role, by=principal.subject, reason_code="member_choice",
                      reason=f"asked for a different leader: {reason}", re_propose=True, now=now)
    _audit(st, principal, org, member_id, "different_leader")
    return ended


def recheck_member(uow: UnitOfWork, org: str, member_id: str, now: datetime) -> None:
    """Keep a member's open match only while they may be matched; otherwise propose or waitlist."""
    st = Store.of(uow)
    member = member_from_doc(st.member(org, member_id))
    current = st.open_match(org, member_id)
    if current is not None:
        if not model.member_consent_ok(member, now):
            end_match(uow, current, by_role="system", by="system", reason_code="consent_revoked",
                      reason="the member's matching consent was withdrawn or has expired", now=now)
        elif member.status not in model.ELIGIBLE_MEMBER_STATUSES:
            end_match(uow, current, by_role="system", by="system", reason_code="member_inactive",
                      reason=f"the member is now {member.status}", now=now)
        return
    propose_unmatched(uow, st, org, member, origin="new", now=now)


def recheck_leader(uow: UnitOfWork, org: str, leader_id: str, now: datetime) -> None:
    """A leader who left or lost certification gives up their members (who get new proposals);
    otherwise the leader may be able to take waiting members."""
    st = Store.of(uow)
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


def _exclude(st: Store, doc: dict, kind: str, by: str, role: str, reason: str | None, now: datetime) -> None:
    st.add_override({"_id": str(uuid.uuid4()), "organization_id": doc["organization_id"],
                     "member_id": doc["member_id"], "leader_id": doc["leader_id"], "kind": kind, "active": True,
                     "by": by, "role": role, "reason": reason, "at": now, "match_id": doc["_id"]})


def _ref(doc: dict) -> dict:
    return {"organization_id": doc["organization_id"], "match_id": doc["_id"], "member_id": doc["member_id"],
            "leader_id": doc["leader_id"], "site_id": doc["site_id"]}
