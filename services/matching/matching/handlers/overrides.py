"""Coordinators' overrides: pin a leader (propose this one) or block one (never this one), and lift them."""
from __future__ import annotations

import uuid
from datetime import datetime

from shared.clock import utcnow
from shared.errors import Conflict, NotFound, NotYetKnown
from shared.unit_of_work import UnitOfWork

from matching import access, model
from matching.handlers.matches import end_match
from matching.handlers.proposals import propose_for_member
from matching.repository import Store


def add_override(uow: UnitOfWork, org: str, principal, member_id: str, leader_id: str, kind: str, reason: str,
                 now: datetime | None = None) -> dict:
    """A coordinator pins (propose this leader) or blocks (never this leader) a pairing, with why."""
    now = now or utcnow()
    st = Store.of(uow)
    access.visible_member(st, org, member_id, principal, field="member_id")
    if st.leader(org, leader_id) is None:
        raise NotYetKnown("leader", leader_id, service="matching", field="leader_id")
    # Pinning a leader the member has blocked (or blocking the pinned one) contradicts an override in force:
    # that one is lifted first (DELETE /v1/overrides/{id}).
    other_kind = "block" if kind == "pin" else "pin"
    if (in_the_way := st.active_override(org, member_id, leader_id, other_kind)) is not None:
        raise Conflict(
            f"The member has this leader {'blocked' if other_kind == 'block' else 'pinned'} (override "
            f"{in_the_way['_id']}); lift that override before you {kind} the leader.",
            existing={"id": in_the_way["_id"], "kind": in_the_way["kind"], "member_id": in_the_way["member_id"],
                      "leader_id": in_the_way["leader_id"], "url": f"/v1/overrides/{in_the_way['_id']}"})
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
    st.audit(principal, "update", "member_match", member_id, org, change=kind)
    return override


def lift_override(uow: UnitOfWork, org: str, principal, override_id: str, now: datetime | None = None) -> dict:
    """Lift a coordinator's pin or block (kept, inactive, with who lifted it and when), and with it the
    exclusion it caused (the match it ended). Lifting a block makes the leader eligible again: a member who
    waits is considered again at once (proposed, or waitlisted with the reason as it is now). Lifting a pin
    leaves the member's current match as it is; later proposals go by score."""
    now = now or utcnow()
    st = Store.of(uow)
    doc = access.visible_override(st, org, override_id, principal)
    if doc["kind"] not in ("pin", "block"):
        raise model.TransitionError(f"Override {override_id} is a recorded exclusion ({doc['kind']}), not a pin or "
                                    "a block; it cannot be lifted.")
    lifted = {"lifted_at": now, "lifted_by": principal.subject, "lifted_by_role": principal.role}
    if not st.lift_override(doc, lifted):
        raise NotFound(f"no override {override_id}")
    if doc["kind"] == "block" and st.member(org, doc["member_id"]) and st.open_match(org, doc["member_id"]) is None:
        propose_for_member(uow, org, doc["member_id"], origin="waitlist", now=now)
    st.audit(principal, "update", "member_match", doc["member_id"], org, change=f"lift_{doc['kind']}",
             override_id=override_id)
    return {**doc, "active": False, **lifted}


def visible(st: Store, org: str, principal, member_id: str | None) -> list[dict]:
    """The active overrides (of one member, or all) at the caller's sites, oldest first."""
    return access.visible_overrides(st, org, principal, st.overrides(org, member_id))
