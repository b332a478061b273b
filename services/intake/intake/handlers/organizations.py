"""Organizations, their sites and staff (site coordinators), the tokens issued for them, and the
organization's audit log."""
from __future__ import annotations

import uuid
from typing import Callable

from shared.auth import Principal
from shared.clock import utcnow
from shared.errors import Conflict, Invalid
from shared.events.intake import ContactChanged, CoordinatorAssigned, OrganizationCreated, SiteCreated, SiteUpdated
from shared.unit_of_work import UnitOfWork

from intake import access, model
from intake.handlers import identities, tokens
from intake.repository import Store

# --- organizations -------------------------------------------------------------------------------


def create_organization(uow: UnitOfWork, principal: Principal, data: dict) -> dict:
    store = Store.of(uow)
    org_id = data.get("id") or model.new_id("org")
    doc = {"_id": org_id, "name": data["name"].strip(), "allows_youth": data["allows_youth"],
           "default_language": model.check_languages([data["default_language"]], "default_language")[0],
           "created_at": utcnow(), "created_by": principal.subject, "version": 1}
    if store.organization(org_id):
        raise Conflict("An organization with this id exists.", existing={"id": org_id})
    store.insert_organization(doc)
    uow.emit(OrganizationCreated, {"organization_id": org_id, "name": doc["name"],
                                   "allows_youth": doc["allows_youth"], "default_language": doc["default_language"]})
    store.audit(principal, "create", "organization", org_id, org_id)
    return doc


def get_organization(store: Store, principal: Principal, organization_id: str) -> dict:
    return access.readable_organization(store, principal, organization_id)


def update_organization(uow: UnitOfWork, principal: Principal, organization_id: str, data: dict,
                        check_etag: Callable[[dict], None]) -> dict:
    """Name, youth policy, default language and self-service settings. Intake alone uses these, so no
    event is published."""
    store = Store.of(uow)
    org = access.readable_organization(store, principal, organization_id)
    check_etag(org)
    updated = dict(org)
    if "name" in data:
        updated["name"] = data["name"].strip()
    if "allows_youth" in data:
        updated["allows_youth"] = data["allows_youth"]
    if "default_language" in data:
        updated["default_language"] = model.check_languages([data["default_language"]], "default_language")[0]
    if "self_service" in data:  # what members see of their own plan and scores (/v1/me/plan, /v1/me/screenings)
        updated["self_service"] = {**model.self_service(org), **data["self_service"]}
    updated["version"] = org.get("version", 1) + 1
    store.replace_organization(updated)
    store.audit(principal, "update", "organization", organization_id, organization_id, fields=sorted(data))
    return updated


def issue_admin_token(store: Store, principal: Principal, organization_id: str, ttl: int,
                      keys: tokens.TokenKeys) -> dict:
    access.organization(store, organization_id)
    token = tokens.sign(store, keys, subject=f"admin:{uuid.uuid4().hex[:12]}", organization_id=organization_id,
                        role="admin", ttl_seconds=ttl)
    return {"token": token, "role": "admin", "organization_id": organization_id, "sites": [], "expires_in": ttl}


def read_audit_log(store: Store, principal: Principal, query: dict):
    return store.audit_page(principal.organization_id, resource_id=query.get("resource_id"),
                            resource_type=query.get("resource_type"), action=query.get("action"),
                            skip=query["offset"], limit=query["limit"])


# --- sites ---------------------------------------------------------------------------------------


def _site_doc(data: dict) -> dict:
    errors: dict[str, list[str]] = {}
    try:
        model.check_time_zone(data["time_zone"])
    except Invalid as exc:
        errors.update(exc.errors)
    address = data.get("address")
    has_address = bool(address and any(address.values()))
    if not data["virtual_only"] and not has_address:
        errors.setdefault("address", []).append("An address is required unless the site is virtual only.")
    if errors:
        raise Invalid(errors)
    return {"name": data["name"].strip(), "time_zone": data["time_zone"], "virtual_only": data["virtual_only"],
            "address": address if has_address else None}


def _site_event(site: dict) -> dict:
    return {"organization_id": site["organization_id"], "site_id": site["_id"], "name": site["name"],
            "time_zone": site["time_zone"], "virtual_only": site["virtual_only"], "location": site.get("address")}


def create_site(uow: UnitOfWork, principal: Principal, data: dict) -> dict:
    store = Store.of(uow)
    org_id = principal.organization_id
    now = utcnow()
    doc = {"_id": model.new_id("site"), "organization_id": org_id, **_site_doc(data), "created_at": now,
           "updated_at": now, "version": 1}
    access.organization(store, org_id)
    store.insert_site(doc)
    uow.emit(SiteCreated, _site_event(doc))
    store.audit(principal, "create", "site", doc["_id"], org_id)
    return doc


def update_site(uow: UnitOfWork, principal: Principal, site_id: str, data: dict,
                check_etag: Callable[[dict], None]) -> dict:
    store = Store.of(uow)
    site = access.site(store, principal, site_id)
    check_etag(site)
    merged = {**site, **data}
    updated = {**site, **_site_doc(merged), "updated_at": utcnow(), "version": site.get("version", 1) + 1}
    store.replace_site(updated)
    uow.emit(SiteUpdated, _site_event(updated))
    store.audit(principal, "update", "site", site_id, principal.organization_id, fields=sorted(data))
    return updated


def get_site(store: Store, principal: Principal, site_id: str) -> dict:
    return access.site(store, principal, site_id)


def list_sites(store: Store, principal: Principal, query: dict):
    return store.sites_page(principal.organization_id, principal.site_filter(), query["offset"], query["limit"])


# --- staff ---------------------------------------------------------------------------------------

STAFF_FIELDS = ("first_name", "last_name", "preferred_name", "email", "phone", "time_zone", "languages",
                "contact_channels", "site_ids")


def create_staff(uow: UnitOfWork, principal: Principal, data: dict) -> dict:
    store = Store.of(uow)
    org_id = principal.organization_id
    now = utcnow()
    org = access.organization(store, org_id)
    person = model.normalize_person(data, today=now.date(), allows_youth=True)
    sites = access.sites(store, principal, data["site_ids"])
    doc = {**person, "_id": model.new_id("staff"), "organization_id": org_id,
           "site_ids": [s["_id"] for s in sites],
           "time_zone": person.get("time_zone") or sites[0]["time_zone"],
           "contact_channels": person.get("contact_channels") or ["email"], "created_at": now,
           "updated_at": now, "version": 1}
    identities.claim(store, org_id, "staff", doc["_id"], None, doc)
    store.insert_staff(doc)
    uow.emit(CoordinatorAssigned, {"organization_id": org_id, "staff_id": doc["_id"], "site_ids": doc["site_ids"]})
    uow.emit(ContactChanged, model.contact_snapshot(doc, "staff", doc["site_ids"], org["default_language"]))
    store.audit(principal, "create", "staff", doc["_id"], org_id)
    return doc


def update_staff(uow: UnitOfWork, principal: Principal, staff_id: str, patch: dict,
                 check_etag: Callable[[dict], None]) -> dict:
    """Change a coordinator's sites or contact: CoordinatorAssigned / ContactChanged as they change."""
    store = Store.of(uow)
    now = utcnow()
    staff = access.staff(store, principal, staff_id)
    check_etag(staff)
    org = access.organization(store, principal.organization_id)
    person = model.normalize_person(patch, today=now.date(), allows_youth=True, partial=True)
    updated = model.patched(staff, person, patch, STAFF_FIELDS)
    if "site_ids" in patch:
        updated["site_ids"] = [s["_id"] for s in access.sites(store, principal, patch["site_ids"])]
    if not updated.get("time_zone"):
        raise Invalid({"time_zone": ["Staff need a time zone."]})
    model.check_contact_kept(updated)
    if all(updated.get(k) == staff.get(k) for k in STAFF_FIELDS):
        return staff
    identities.claim(store, org["_id"], "staff", staff_id, staff, updated)
    updated.update(version=staff.get("version", 1) + 1, updated_at=now)
    store.replace_staff(updated)
    if updated["site_ids"] != staff["site_ids"]:
        uow.emit(CoordinatorAssigned, {"organization_id": org["_id"], "staff_id": staff_id,
                                       "site_ids": updated["site_ids"]})
    if model.contact_changed(staff, updated):
        uow.emit(ContactChanged, model.contact_snapshot(updated, "staff", updated["site_ids"], org["default_language"]))
    store.audit(principal, "update", "staff", staff_id, org["_id"],
                fields=sorted(k for k in STAFF_FIELDS if updated.get(k) != staff.get(k)))
    return updated


def get_staff(store: Store, principal: Principal, staff_id: str) -> dict:
    return access.staff(store, principal, staff_id)


def list_staff(store: Store, principal: Principal, query: dict):
    return store.staff_page(principal.organization_id, query["offset"], query["limit"])


def issue_staff_token(store: Store, principal: Principal, staff_id: str, ttl: int, keys: tokens.TokenKeys) -> dict:
    staff = access.staff(store, principal, staff_id)
    token = tokens.sign(store, keys, subject=f"staff:{staff_id}", organization_id=principal.organization_id,
                        role="coordinator", sites=staff["site_ids"], ttl_seconds=ttl)
    return {"token": token, "role": "coordinator", "organization_id": principal.organization_id,
            "sites": staff["site_ids"], "expires_in": ttl}
