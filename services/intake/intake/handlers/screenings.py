"""Screenings (scored by ``model.score_screening`` from item answers), the risk flags they open, and
the member's person-centred plan with its revisions."""
from __future__ import annotations

from typing import Callable

from shared.auth import Principal
from shared.clock import utcnow
from shared.errors import NotFound
from shared.events.intake import RISK_FLAG, MemberRiskFlagged, MemberRiskResolved, ScreeningRecorded
from shared.unit_of_work import UnitOfWork

from intake import access, model
from intake.repository import Store

# --- screenings and flags ------------------------------------------------------------------------


def record(uow: UnitOfWork, principal: Principal, member_id: str, data: dict) -> dict:
    store = Store.of(uow)
    now = utcnow()
    scored = model.score_screening(data["instrument"], data["answers"])
    member = access.member(store, principal, member_id)
    doc = {"_id": model.new_id("scr"), "organization_id": member["organization_id"], "member_id": member_id,
           "site_id": member["site_id"], **scored, "recorded_by": model.actor(principal), "recorded_at": now}
    store.insert_screening(doc)
    uow.emit(ScreeningRecorded, {"organization_id": member["organization_id"], "member_id": member_id,
                                 "site_id": member["site_id"], "screening_id": doc["_id"],
                                 "instrument": doc["instrument"], "total": doc["total"], "band": doc["band"],
                                 "flagged": doc["flagged"]})
    if doc["flagged"]:
        updated = {**member, "flags": sorted(set(member.get("flags") or []) | {RISK_FLAG}),
                   "version": member.get("version", 1) + 1, "updated_at": now}
        store.replace_member(updated)
        uow.emit(MemberRiskFlagged, {"organization_id": member["organization_id"], "member_id": member_id,
                                     "site_id": member["site_id"], "screening_id": doc["_id"],
                                     "instrument": doc["instrument"], "band": doc["band"], "reason": doc["reason"]})
    store.audit(principal, "create", "screening", member_id, member["organization_id"],
                screening_id=doc["_id"], instrument=doc["instrument"])
    return doc


def list_screenings(store: Store, principal: Principal, member_id: str, query: dict):
    access.member(store, principal, member_id)
    store.audit(principal, "read", "screening", member_id, principal.organization_id)
    return store.screenings_page(principal.organization_id, member_id, query.get("instrument"),
                                 query["offset"], query["limit"])


def resolve_flag(uow: UnitOfWork, principal: Principal, member_id: str, flag: str) -> dict:
    store = Store.of(uow)
    member = access.member(store, principal, member_id)
    if flag not in (member.get("flags") or []):
        raise NotFound(f"The member has no open {flag!r} flag.")
    updated = {**member, "flags": [f for f in member["flags"] if f != flag],
               "version": member.get("version", 1) + 1, "updated_at": utcnow()}
    store.replace_member(updated)
    uow.emit(MemberRiskResolved, {"organization_id": member["organization_id"], "member_id": member_id,
                                  "site_id": member["site_id"], "flag": flag})
    store.audit(principal, "resolve_flag", "member", member_id, member["organization_id"], flag=flag)
    return updated


# --- plans ---------------------------------------------------------------------------------------


def revise_plan(uow: UnitOfWork, principal: Principal, member_id: str, data: dict,
                check_etag: Callable[[dict], None] = lambda doc: None) -> dict:
    store = Store.of(uow)
    now = utcnow()
    member = access.member(store, principal, member_id)
    check_etag(member)
    plan = model.revise_plan(member.get("plan"), data["goal"], data["next_steps"], by=model.actor(principal), at=now)
    updated = {**member, "plan": plan, "version": member.get("version", 1) + 1, "updated_at": now}
    store.replace_member(updated)
    store.insert_plan_revision({"_id": model.new_id("plan"), "organization_id": member["organization_id"],
                                "member_id": member_id, **plan})
    store.audit(principal, "update", "plan", member_id, member["organization_id"], revision=plan["revision"])
    return plan


def plan_history(store: Store, principal: Principal, member_id: str) -> list[dict]:
    access.member(store, principal, member_id)
    store.audit(principal, "read", "plan", member_id, principal.organization_id)
    return store.plan_history(principal.organization_id, member_id)
