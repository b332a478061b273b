"""Staff access: inviting staff (admin, or coordinator of named sites) by email, and deactivating them.
Creating and editing a staff record by hand stays in ``organizations``.

An invited staff member signs in like everyone (handlers/signin.py): the invitation carries a sign-in
code; the first sign-in makes them active. A deactivated one can no longer sign in.
"""
from __future__ import annotations

from datetime import datetime

from shared.auth import Principal
from shared.errors import Conflict, Invalid, NotFound
from shared.events.intake import ContactChanged, CoordinatorAssigned
from shared.unit_of_work import UnitOfWork

from intake import access, model
from intake.config import Settings
from intake.handlers import identities, signin, tokens
from intake.repository import Store


def invite(uow: UnitOfWork, principal: Principal, settings: Settings, data: dict, now: datetime) -> dict:
    """Invite by email as admin, or as coordinator of named sites: a new staff record (status invited),
    or the existing one with that email given the role and sites (an active one stays active, a
    deactivated one is invited again). The invitation email holds a sign-in link and code."""
    store = Store.of(uow)
    org = access.organization(store, principal.organization_id)
    email = model.normalize_email(data["email"])
    role = data["role"]
    site_ids = data.get("site_ids") or []
    if role == "coordinator" and not site_ids:
        raise Invalid({"site_ids": ["A coordinator is invited for at least one site."]})
    sites = access.sites(store, principal, site_ids) if role == "coordinator" else []
    found = store.identity(org["_id"], "staff", "email", model.email_key(email))
    before = store.staff(org["_id"], found["person_id"]) if found else None
    if before is None:
        person = model.normalize_person({k: v for k, v in data.items() if k in ("first_name", "last_name", "languages",
                                                                               "time_zone") and v},
                                        today=now.date(), allows_youth=True, partial=True)
        staff = {**person, "_id": model.new_id("staff"), "organization_id": org["_id"], "email": email, "phone": None,
                 "first_name": person.get("first_name"), "contact_channels": ["email"],
                 "time_zone": person.get("time_zone") or (sites[0]["time_zone"] if sites else "UTC"),
                 "created_at": now, "version": 1}
        identities.claim(store, org["_id"], "staff", staff["_id"], None, staff)
    else:
        staff = {**before, "version": before.get("version", 1) + 1}
    staff.update(role=role, site_ids=[s["_id"] for s in sites], updated_at=now, invited_at=now,
                 invited_by=principal.subject,
                 status="active" if before is not None and before.get("status", "active") == "active" else "invited")
    if before is None:
        store.insert_staff(staff)
    else:
        store.replace_staff(staff)
    if before is None or before.get("site_ids") != staff["site_ids"] or before.get("role") != role:
        uow.emit(CoordinatorAssigned, {"organization_id": org["_id"], "staff_id": staff["_id"],
                                       "site_ids": staff["site_ids"]})
    if before is None or model.contact_changed(before, staff):
        uow.emit(ContactChanged, model.contact_snapshot(staff, "staff", staff["site_ids"], org["default_language"]))
    signin.issue_invitation(uow, settings, staff, org, now)
    store.audit(principal, "invite", "staff", staff["_id"], org["_id"], role=role)
    return staff


def deactivate(uow: UnitOfWork, principal: Principal, staff_id: str, now: datetime) -> dict:
    """Status inactive: every token they hold stops working (``tokens.revoke_all``), they cannot sign in
    again, and they get no coordinator messages (CoordinatorAssigned with no sites). An admin cannot
    deactivate themselves."""
    store = Store.of(uow)
    staff = access.staff(store, principal, staff_id)
    if principal.subject == f"staff:{staff_id}":
        raise Conflict("You cannot deactivate yourself; ask another admin.")
    if staff.get("status") == "inactive":
        return staff
    store.set_staff_status(principal.organization_id, staff_id, "inactive", now)
    tokens.revoke_all(uow, f"staff:{staff_id}", principal.organization_id)
    if staff.get("site_ids"):
        uow.emit(CoordinatorAssigned, {"organization_id": principal.organization_id, "staff_id": staff_id,
                                       "site_ids": []})
    store.audit(principal, "deactivate", "staff", staff_id, principal.organization_id)
    return store.staff(principal.organization_id, staff_id)


# --- platform operators (python -m intake.operators) ----------------------------------------------

def create_operator(uow: UnitOfWork, email: str, name: str | None, now: datetime) -> dict:
    """A platform operator account (no organization): they sign in with this email like everyone."""
    store = Store.of(uow)
    email = model.normalize_email(email)
    key = model.email_key(email)
    existing = store.operators_with_email(key)
    if existing:
        raise Conflict("An operator with this email exists.", existing={"id": existing[0]["_id"]})
    doc = {"_id": model.new_id("op"), "email": email, "email_key": key, "first_name": (name or "").strip() or None,
           "status": "active", "created_at": now}
    store.insert_operator(doc)
    return doc


def set_operator_status(uow: UnitOfWork, email: str, status: str) -> dict:
    store = Store.of(uow)
    found = store.operators_with_email(model.email_key(model.normalize_email(email)))
    if not found:
        raise NotFound("No operator with this email.")
    store.set_operator_status(found[0]["_id"], status)
    if status == "inactive":
        tokens.revoke_all(uow, f"operator:{found[0]['_id']}", None)
    return {**found[0], "status": status}
