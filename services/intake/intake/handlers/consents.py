"""A member's consents: grants, revocations and their history. Every change is logged in
``consent_log`` and announced as ``MemberConsentChanged`` with the whole set in force afterwards
(the worker's job announces expiries the same way, with ``record_change``)."""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from shared.auth import Principal
from shared.clock import utcnow
from shared.events.intake import MemberConsentChanged, MemberStatusChanged, MemberUpdated
from shared.unit_of_work import UnitOfWork

from intake import access, model
from intake.repository import Store


def set_consents(member: dict, consents: dict) -> None:
    member["consents"] = consents
    member["consent_expiries"] = model.consent_expiries(consents)


def record_change(uow: UnitOfWork, store: Store, member: dict, purpose: str, action: str, by: str,
                  now: datetime) -> None:
    """Log one consent's change and announce it (granted unless revoked or expired)."""
    log(store, member, purpose, action, by, now)
    announce(uow, member, purpose, action == "granted", now)


def log_entry(member: dict, purpose: str, action: str, by: str, now: datetime) -> dict:
    c = member["consents"].get(purpose) or {}
    return {"_id": model.new_id("cl"), "organization_id": member["organization_id"], "member_id": member["_id"],
            "purpose": purpose, "action": action, "by": by, "at": now, "expires_at": c.get("expires_at")}


def log(store: Store, member: dict, purpose: str, action: str, by: str, now: datetime) -> None:
    store.log_consent(log_entry(member, purpose, action, by, now))


def log_many(store: Store, member: dict, purposes: list[str], action: str, by: str, now: datetime) -> None:
    """Several purposes at once (a registration's consents): one write for all of them."""
    if purposes:
        store.log_consents([log_entry(member, purpose, action, by, now) for purpose in purposes])


def announce(uow: UnitOfWork, member: dict, purpose: str, granted: bool, now: datetime) -> None:
    c = member["consents"].get(purpose) or {}
    uow.emit(MemberConsentChanged, {
        "organization_id": member["organization_id"], "member_id": member["_id"], "site_id": member["site_id"],
        "purpose": purpose, "granted": granted, "expires_at": c.get("expires_at") if granted else None,
        "consents": model.consents_in_force(member["consents"], now)})


def status_changed(uow: UnitOfWork, member: dict, from_status: str, reason: str | None) -> None:
    uow.emit(MemberStatusChanged, {"organization_id": member["organization_id"], "member_id": member["_id"],
                                   "site_id": member["site_id"], "from_status": from_status,
                                   "to_status": member["status"], "reason": reason})


def grant_to(uow: UnitOfWork, principal: Principal, member: dict, grant: dict, now: datetime) -> dict:
    """Grant one consent to a member already read in this unit of work (the API and the bulk import);
    a member pending consent becomes active."""
    store = Store.of(uow)
    by = model.actor(principal)
    consents = model.grant_consent(member.get("consents") or {}, grant["purpose"], by=by, at=now,
                                   expires_at=grant.get("expires_at"), note=grant.get("note"))
    purpose = model.check_consent_purpose(grant["purpose"])
    updated = dict(member)
    set_consents(updated, consents)
    from_status = member["status"]
    if from_status == "pending_consent":
        updated["status"] = "active"
    updated["version"] = member.get("version", 1) + 1
    updated["updated_at"] = now
    store.replace_member(updated)
    record_change(uow, store, updated, purpose, "granted", by, now)
    if updated["status"] != from_status:
        status_changed(uow, updated, from_status, "consent given")
        uow.emit(MemberUpdated, model.member_snapshot(updated, now))
    store.audit(principal, "grant", "consent", member["_id"], member["organization_id"], purpose=purpose)
    return updated


def grant(uow: UnitOfWork, principal: Principal, member_id: str, data: dict,
          check_etag: Callable[[dict], None] = lambda doc: None) -> dict:
    member = access.member(Store.of(uow), principal, member_id)
    check_etag(member)
    return grant_to(uow, principal, member, data, utcnow())


def revoke(uow: UnitOfWork, principal: Principal, member_id: str, purpose: str,
           check_etag: Callable[[dict], None] = lambda doc: None) -> dict:
    member = access.member(Store.of(uow), principal, member_id)
    check_etag(member)
    return revoke_from(uow, principal, member, purpose, utcnow())


def revoke_from(uow: UnitOfWork, principal: Principal, member: dict, purpose: str, now) -> dict:
    """Revoke one consent of a member already read in this unit of work (staff, or the member themselves)."""
    store = Store.of(uow)
    member_id = member["_id"]
    by = model.actor(principal)
    clean = model.check_consent_purpose(purpose)
    consents = model.revoke_consent(member.get("consents") or {}, clean, by=by, at=now)
    updated = dict(member)
    set_consents(updated, consents)
    updated["version"] = member.get("version", 1) + 1
    updated["updated_at"] = now
    store.replace_member(updated)
    record_change(uow, store, updated, clean, "revoked", by, now)
    store.audit(principal, "revoke", "consent", member_id, member["organization_id"], purpose=clean)
    return updated


def history(store: Store, principal: Principal, member_id: str) -> list[dict]:
    member = access.member(store, principal, member_id)
    store.audit(principal, "read", "consent", member_id, principal.organization_id)
    return store.consent_log(principal.organization_id, member["_id"])
