"""Intake's use cases, one function each. A use case runs in one transaction (``repo.transaction``):
it reads what it needs, applies ``model`` rules, writes state, the audit entry and the events it
causes together. Domain errors (``model.Invalid``, ``NotFound``, ``Conflict``, ``Forbidden``) abort
the transaction; the HTTP edge maps them to problem+json.

Intake consumes no events; its only periodic job announces consents that have expired.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Callable

from shared.auth import Principal, issue_token
from shared.events.intake import (
    CONTACTS,
    ContactChanged,
    CoordinatorAssigned,
    LeaderAvailabilityChanged,
    LeaderCapacityChanged,
    LeaderDeactivated,
    LeaderReactivated,
    LeaderRegistered,
    LeaderUpdated,
    MemberConsentChanged,
    MemberErased,
    MemberRegistered,
    MemberRiskFlagged,
    MemberStatusChanged,
    MemberTransferred,
    MemberUpdated,
    OrganizationCreated,
    ScreeningRecorded,
    SiteCreated,
    SiteUpdated,
)
from shared.mongo import utcnow
from shared.unit_of_work import UnitOfWork

from intake import model
from intake.model import Conflict, Forbidden, Invalid, NotFound
from intake.repository import Repository

SYSTEM = "system"


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def _actor(principal: Principal | None) -> str:
    return principal.subject if principal else SYSTEM


# --- scoping -----------------------------------------------------------------------------------

def _organization(repo: Repository, uow: UnitOfWork | None, organization_id: str) -> dict:
    org = repo.get_organization(organization_id, session=uow.session if uow else None)
    if org is None:
        raise NotFound("The organization does not exist (a platform operator creates it first).")
    return org


def _site(repo: Repository, uow: UnitOfWork | None, principal: Principal, site_id: str,
          field: str | None = None) -> dict:
    site = repo.get_site(principal.organization_id, site_id, session=uow.session if uow else None)
    if site is None or not principal.can_access_site(site_id):
        if field:
            raise Invalid({field: [f"No site {site_id!r} that you can use in your organization."]})
        raise NotFound("No such site.")
    return site


def _member(repo: Repository, uow: UnitOfWork | None, principal: Principal, member_id: str) -> dict:
    member = repo.get_member(principal.organization_id, member_id, session=uow.session if uow else None)
    if member is None or not principal.can_access_site(member.get("site_id")):
        raise NotFound("No such member.")
    if member.get("erased"):
        raise model.Gone("This member's record was erased on request.")
    return member


def _leader_visible(principal: Principal, leader: dict) -> bool:
    if principal.role == "leader":
        return principal.leader_id == leader["_id"]
    return principal.is_admin or any(principal.can_access_site(s) for s in leader["site_ids"])


def _leader(repo: Repository, uow: UnitOfWork | None, principal: Principal, leader_id: str) -> dict:
    leader = repo.get_leader(principal.organization_id, leader_id, session=uow.session if uow else None)
    if leader is None or not _leader_visible(principal, leader):
        raise NotFound("No such leader.")
    return leader


# --- duplicates ----------------------------------------------------------------------------------

def _claim_identities(repo: Repository, uow: UnitOfWork, organization_id: str, kind: str, person_id: str,
                      before: dict | None, after: dict) -> None:
    """Claim the person's email / phone / external id in the organization, or refuse with 409 naming
    the record that already has it. Releases the keys the person no longer has."""
    old = set(_keys(before)) if before else set()
    new = set(_keys(after))
    for key_type, value in sorted(new - old):
        found = repo.find_identity(uow, organization_id, kind, key_type, value)
        if found and found["person_id"] != person_id:
            label = {"email": "email", "phone": "phone number", "external_id": "external id"}[key_type]
            raise Conflict(f"A {kind} with this {label} is already registered in this organization.",
                           existing={"id": found["person_id"], "kind": kind, "field": key_type,
                                     "href": f"/v1/{'staff' if kind == 'staff' else kind + 's'}/{found['person_id']}"})
    for key_type, value in sorted(old - new):
        repo.release_identity(uow, organization_id, kind, key_type, value)
    for key_type, value in sorted(new - old):
        repo.claim_identity(uow, organization_id, kind, key_type, value, person_id)


def _keys(person: dict) -> list[tuple[str, str]]:
    keys = model.identity_keys(person)
    if person.get("external_id"):
        keys.append(("external_id", person["external_id"]))
    return keys


# --- organizations, sites, staff ---------------------------------------------------------------

def create_organization(repo: Repository, principal: Principal, data: dict) -> dict:
    now = utcnow()
    org_id = data.get("id") or _new_id("org")
    doc = {"_id": org_id, "name": data["name"].strip(), "allows_youth": data["allows_youth"],
           "default_language": model.check_languages([data["default_language"]], "default_language")[0],
           "created_at": now, "created_by": principal.subject, "version": 1}

    def work(uow: UnitOfWork) -> dict:
        if repo.get_organization(org_id, session=uow.session):
            raise Conflict("An organization with this id exists.", existing={"id": org_id})
        repo.insert_organization(uow, doc)
        uow.emit(OrganizationCreated, {"organization_id": org_id, "name": doc["name"],
                                       "allows_youth": doc["allows_youth"],
                                       "default_language": doc["default_language"]})
        repo.audit(uow, principal, "create", "organization", org_id, org_id)
        return doc

    return repo.transaction(work)


def get_organization(repo: Repository, principal: Principal, organization_id: str) -> dict:
    if principal.role != "operator" and principal.organization_id != organization_id:
        raise NotFound("No such organization.")
    return _organization(repo, None, organization_id)


def update_organization(repo: Repository, principal: Principal, organization_id: str, data: dict,
                        check_etag: Callable[[dict], None]) -> dict:
    """Name, youth policy and default language. Intake alone uses these, so no event is published."""
    def work(uow: UnitOfWork) -> dict:
        get_organization(repo, principal, organization_id)  # 404 unless the caller's own (or an operator)
        org = repo.get_organization(organization_id, session=uow.session)
        check_etag(org)
        updated = dict(org)
        if "name" in data:
            updated["name"] = data["name"].strip()
        if "allows_youth" in data:
            updated["allows_youth"] = data["allows_youth"]
        if "default_language" in data:
            updated["default_language"] = model.check_languages([data["default_language"]], "default_language")[0]
        updated["version"] = org.get("version", 1) + 1
        repo.replace_organization(uow, updated)
        repo.audit(uow, principal, "update", "organization", organization_id, organization_id, fields=sorted(data))
        return updated

    return repo.transaction(work)


def issue_admin_token(repo: Repository, principal: Principal, organization_id: str, ttl: int, secret: str,
                      audience: str) -> dict:
    _organization(repo, None, organization_id)
    token = issue_token(secret, organization_id=organization_id, role="admin", ttl_seconds=ttl, audience=audience)
    return {"token": token, "role": "admin", "organization_id": organization_id, "sites": [], "expires_in": ttl}


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


def create_site(repo: Repository, principal: Principal, data: dict) -> dict:
    org_id = principal.organization_id
    now = utcnow()
    doc = {"_id": _new_id("site"), "organization_id": org_id, **_site_doc(data), "created_at": now,
           "updated_at": now, "version": 1}

    def work(uow: UnitOfWork) -> dict:
        _organization(repo, uow, org_id)
        repo.insert_site(uow, doc)
        uow.emit(SiteCreated, _site_event(doc))
        repo.audit(uow, principal, "create", "site", doc["_id"], org_id)
        return doc

    return repo.transaction(work)


def update_site(repo: Repository, principal: Principal, site_id: str, data: dict,
                check_etag: Callable[[dict], None]) -> dict:
    def work(uow: UnitOfWork) -> dict:
        site = _site(repo, uow, principal, site_id)
        check_etag(site)
        merged = {**site, **data}
        updated = {**site, **_site_doc(merged), "updated_at": utcnow(), "version": site.get("version", 1) + 1}
        repo.replace_site(uow, updated)
        uow.emit(SiteUpdated, _site_event(updated))
        repo.audit(uow, principal, "update", "site", site_id, principal.organization_id, fields=sorted(data))
        return updated

    return repo.transaction(work)


def get_site(repo: Repository, principal: Principal, site_id: str) -> dict:
    return _site(repo, None, principal, site_id)


def create_staff(repo: Repository, principal: Principal, data: dict) -> dict:
    org_id = principal.organization_id
    now = utcnow()

    def work(uow: UnitOfWork) -> dict:
        org = _organization(repo, uow, org_id)
        person = model.normalize_person(data, today=now.date(), allows_youth=True)
        sites = [_site(repo, uow, principal, s, field="site_ids") for s in dict.fromkeys(data["site_ids"])]
        doc = {**person, "_id": _new_id("staff"), "organization_id": org_id,
               "site_ids": [s["_id"] for s in sites],
               "time_zone": person.get("time_zone") or sites[0]["time_zone"],
               "contact_channels": person.get("contact_channels") or ["email"], "created_at": now,
               "updated_at": now, "version": 1}
        _claim_identities(repo, uow, org_id, "staff", doc["_id"], None, doc)
        repo.insert_staff(uow, doc)
        uow.emit(CoordinatorAssigned, {"organization_id": org_id, "staff_id": doc["_id"], "site_ids": doc["site_ids"]})
        uow.emit(ContactChanged, model.contact_snapshot(doc, "staff", doc["site_ids"], org["default_language"]))
        repo.audit(uow, principal, "create", "staff", doc["_id"], org_id)
        return doc

    return repo.transaction(work)


STAFF_FIELDS = ("first_name", "last_name", "preferred_name", "email", "phone", "time_zone", "languages",
                "contact_channels", "site_ids")


def update_staff(repo: Repository, principal: Principal, staff_id: str, patch: dict,
                 check_etag: Callable[[dict], None]) -> dict:
    """Change a coordinator's sites or contact: CoordinatorAssigned / ContactChanged as they change."""
    now = utcnow()

    def work(uow: UnitOfWork) -> dict:
        staff = repo.get_staff(principal.organization_id, staff_id, session=uow.session)
        if staff is None:
            raise NotFound("No such staff member.")
        check_etag(staff)
        org = _organization(repo, uow, principal.organization_id)
        person = model.normalize_person(patch, today=now.date(), allows_youth=True, partial=True)
        updated = dict(staff)
        for k in STAFF_FIELDS:
            if k in patch:
                updated[k] = person[k]
        if "site_ids" in patch:
            updated["site_ids"] = [s["_id"] for s in _leader_sites(repo, uow, principal, patch["site_ids"])]
        if not updated.get("time_zone"):
            raise Invalid({"time_zone": ["Staff need a time zone."]})
        model.check_contact_kept(updated)
        if all(updated.get(k) == staff.get(k) for k in STAFF_FIELDS):
            return staff
        _claim_identities(repo, uow, org["_id"], "staff", staff_id, staff, updated)
        updated.update(version=staff.get("version", 1) + 1, updated_at=now)
        repo.replace_staff(uow, updated)
        if updated["site_ids"] != staff["site_ids"]:
            uow.emit(CoordinatorAssigned, {"organization_id": org["_id"], "staff_id": staff_id,
                                           "site_ids": updated["site_ids"]})
        if model.contact_changed(staff, updated):
            uow.emit(ContactChanged, model.contact_snapshot(updated, "staff", updated["site_ids"],
                                                            org["default_language"]))
        repo.audit(uow, principal, "update", "staff", staff_id, org["_id"],
                   fields=sorted(k for k in STAFF_FIELDS if updated.get(k) != staff.get(k)))
        return updated

    return repo.transaction(work)


def get_staff(repo: Repository, principal: Principal, staff_id: str) -> dict:
    staff = repo.get_staff(principal.organization_id, staff_id)
    if staff is None:
        raise NotFound("No such staff member.")
    return staff


def issue_staff_token(repo: Repository, principal: Principal, staff_id: str, ttl: int, secret: str,
                      audience: str) -> dict:
    staff = repo.get_staff(principal.organization_id, staff_id)
    if staff is None:
        raise NotFound("No such staff member.")
    token = issue_token(secret, organization_id=principal.organization_id, role="coordinator",
                        sites=staff["site_ids"], subject=f"staff:{staff_id}", ttl_seconds=ttl, audience=audience)
    return {"token": token, "role": "coordinator", "organization_id": principal.organization_id,
            "sites": staff["site_ids"], "expires_in": ttl}


# --- members -------------------------------------------------------------------------------------

def _announce_member(uow: UnitOfWork, declaration, member: dict, now: datetime) -> None:
    uow.emit(declaration, model.member_snapshot(member, now))


def _announce_member_contact(uow: UnitOfWork, member: dict, default_language: str) -> None:
    uow.emit(ContactChanged, model.contact_snapshot(member, "member", [member["site_id"]], default_language))


def _consent_expiries(consents: dict, now: datetime) -> list[datetime]:
    """Expiry times still to announce (the periodic job emits a revocation when one passes)."""
    return sorted(c["expires_at"] for c in consents.values()
                  if c.get("expires_at") and c.get("revoked_at") is None and not c.get("expiry_announced"))


def _set_consents(member: dict, consents: dict, now: datetime) -> None:
    member["consents"] = consents
    member["consent_expiries"] = _consent_expiries(consents, now)


def _consent_event(uow: UnitOfWork, member: dict, purpose: str, granted: bool, now: datetime) -> None:
    c = member["consents"].get(purpose) or {}
    uow.emit(MemberConsentChanged, {
        "organization_id": member["organization_id"], "member_id": member["_id"], "site_id": member["site_id"],
        "purpose": purpose, "granted": granted, "expires_at": c.get("expires_at") if granted else None,
        "consents": model.consents_in_force(member["consents"], now)})


def _log_consent(repo: Repository, uow: UnitOfWork, member: dict, purpose: str, action: str, by: str,
                 now: datetime) -> None:
    c = member["consents"].get(purpose) or {}
    repo.log_consent(uow, {"_id": _new_id("cl"), "organization_id": member["organization_id"],
                           "member_id": member["_id"], "purpose": purpose, "action": action, "by": by, "at": now,
                           "expires_at": c.get("expires_at")})


def _status_event(uow: UnitOfWork, member: dict, from_status: str, reason: str | None) -> None:
    uow.emit(MemberStatusChanged, {"organization_id": member["organization_id"], "member_id": member["_id"],
                                   "site_id": member["site_id"], "from_status": from_status,
                                   "to_status": member["status"], "reason": reason})


MEMBER_FIELDS = ("first_name", "last_name", "preferred_name", "pronouns", "email", "phone", "date_of_birth",
                 "languages", "preferred_language", "time_zone", "availability", "contact_channels", "substances",
                 "pathways", "co_occurring_mental_health", "lived_experience_topics", "leader_gender_preference",
                 "meeting_mode", "external_id")


def register_member_in(repo: Repository, uow: UnitOfWork, principal: Principal, data: dict, *,
                       now: datetime, source: str = "api") -> dict:
    """Register a member inside an open unit of work (shared by the API and the bulk import)."""
    org_id = principal.organization_id
    org = _organization(repo, uow, org_id)
    site = _site(repo, uow, principal, data["site_id"], field="site_id")
    person = model.normalize_person(data, today=now.date(), allows_youth=org.get("allows_youth", False))
    member_id = _new_id("mem")
    by = _actor(principal)
    consents: dict = {}
    for grant in data.get("consents") or []:
        try:
            consents = model.grant_consent(consents, grant["purpose"], by=by, at=now,
                                           expires_at=grant.get("expires_at"), note=grant.get("note"))
        except Invalid as exc:
            raise Invalid({f"consents.{k}": v for k, v in exc.errors.items()}) from None
    member = {k: person.get(k) for k in MEMBER_FIELDS}
    member.update({
        "_id": member_id, "organization_id": org_id, "site_id": site["_id"],
        "time_zone": person.get("time_zone") or site["time_zone"],
        "preferred_language": person.get("preferred_language") or (person.get("languages") or [org["default_language"]])[0],
        "status": model.initial_member_status(model.consents_in_force(consents, now)),
        "flags": [], "plan": None, "version": 1, "created_at": now, "updated_at": now, "created_by": by,
        "source": source,
    })
    _set_consents(member, consents, now)
    _claim_identities(repo, uow, org_id, "member", member_id, None, member)
    repo.insert_member(uow, member)
    for purpose in sorted(consents):
        _log_consent(repo, uow, member, purpose, "granted", by, now)
    _announce_member(uow, MemberRegistered, member, now)
    _announce_member_contact(uow, member, org["default_language"])
    for purpose in sorted(consents):
        _consent_event(uow, member, purpose, True, now)
    repo.audit(uow, principal, "create", "member", member_id, org_id, site_id=site["_id"], source=source)
    return member


def register_member(repo: Repository, principal: Principal, data: dict) -> dict:
    now = utcnow()
    return repo.transaction(lambda uow: register_member_in(repo, uow, principal, data, now=now))


def get_member(repo: Repository, principal: Principal, member_id: str) -> dict:
    def work(uow: UnitOfWork) -> dict:
        member = _member(repo, uow, principal, member_id)
        repo.audit(uow, principal, "read", "member", member_id, principal.organization_id)
        return member

    return repo.transaction(work)


def list_members(repo: Repository, principal: Principal, query: dict) -> tuple[list[dict], int]:
    site_id = query.get("site_id")
    if site_id is not None and not principal.can_access_site(site_id):
        return [], 0
    items, total = repo.list_members(principal.organization_id, site_filter=principal.site_filter(), site_id=site_id,
                                     status=query.get("status"), flagged=query.get("flagged"),
                                     external_id=query.get("external_id"), skip=query["offset"], limit=query["limit"])
    repo.audit(None, principal, "list", "member", "*", principal.organization_id,
               site_id=site_id, count=len(items))
    return items, total


def update_member_in(repo: Repository, uow: UnitOfWork, principal: Principal, member: dict, patch: dict, *,
                     now: datetime) -> tuple[dict, bool]:
    """Apply a (validated-shape) patch. Returns (member, changed)."""
    org = _organization(repo, uow, principal.organization_id)
    person = model.normalize_person(patch, today=now.date(), allows_youth=org.get("allows_youth", False), partial=True)
    updated = dict(member)
    for k in MEMBER_FIELDS:
        if k in patch:
            updated[k] = person[k]
    if "languages" in patch and "preferred_language" not in patch and updated.get("languages"):
        if updated.get("preferred_language") not in updated["languages"]:
            updated["preferred_language"] = updated["languages"][0]
    if not updated.get("time_zone"):
        raise Invalid({"time_zone": ["A member needs a time zone."]})
    model.check_contact_kept(updated)
    if all(updated.get(k) == member.get(k) for k in MEMBER_FIELDS + ("preferred_language",)):
        return member, False
    _claim_identities(repo, uow, member["organization_id"], "member", member["_id"], member, updated)
    updated["version"] = member.get("version", 1) + 1
    updated["updated_at"] = now
    repo.replace_member(uow, updated)
    if model.member_snapshot(updated, now) != model.member_snapshot(member, now):
        _announce_member(uow, MemberUpdated, updated, now)
    if model.contact_changed(member, updated):
        _announce_member_contact(uow, updated, org["default_language"])
    repo.audit(uow, principal, "update", "member", member["_id"], member["organization_id"],
               fields=sorted(k for k in MEMBER_FIELDS if updated.get(k) != member.get(k)))
    return updated, True


def update_member(repo: Repository, principal: Principal, member_id: str, patch: dict,
                  check_etag: Callable[[dict], None]) -> dict:
    now = utcnow()

    def work(uow: UnitOfWork) -> dict:
        member = _member(repo, uow, principal, member_id)
        check_etag(member)
        return update_member_in(repo, uow, principal, member, patch, now=now)[0]

    return repo.transaction(work)


def _grant_in(repo: Repository, uow: UnitOfWork, principal: Principal, member: dict, grant: dict,
              now: datetime) -> dict:
    by = _actor(principal)
    consents = model.grant_consent(member.get("consents") or {}, grant["purpose"], by=by, at=now,
                                   expires_at=grant.get("expires_at"), note=grant.get("note"))
    purpose = model.check_consent_purpose(grant["purpose"])
    updated = dict(member)
    _set_consents(updated, consents, now)
    from_status = member["status"]
    if from_status == "pending_consent":
        updated["status"] = "active"
    updated["version"] = member.get("version", 1) + 1
    updated["updated_at"] = now
    repo.replace_member(uow, updated)
    _log_consent(repo, uow, updated, purpose, "granted", by, now)
    _consent_event(uow, updated, purpose, True, now)
    if updated["status"] != from_status:
        _status_event(uow, updated, from_status, "consent given")
        _announce_member(uow, MemberUpdated, updated, now)
    repo.audit(uow, principal, "grant", "consent", member["_id"], member["organization_id"], purpose=purpose)
    return updated


def grant_consent(repo: Repository, principal: Principal, member_id: str, grant: dict,
                  check_etag: Callable[[dict], None] = lambda doc: None) -> dict:
    now = utcnow()

    def work(uow: UnitOfWork) -> dict:
        member = _member(repo, uow, principal, member_id)
        check_etag(member)
        return _grant_in(repo, uow, principal, member, grant, now)

    return repo.transaction(work)


def revoke_consent(repo: Repository, principal: Principal, member_id: str, purpose: str,
                   check_etag: Callable[[dict], None] = lambda doc: None) -> dict:
    now = utcnow()

    def work(uow: UnitOfWork) -> dict:
        member = _member(repo, uow, principal, member_id)
        check_etag(member)
        by = _actor(principal)
        clean = model.check_consent_purpose(purpose)
        consents = model.revoke_consent(member.get("consents") or {}, clean, by=by, at=now)
        updated = dict(member)
        _set_consents(updated, consents, now)
        updated["version"] = member.get("version", 1) + 1
        updated["updated_at"] = now
        repo.replace_member(uow, updated)
        _log_consent(repo, uow, updated, clean, "revoked", by, now)
        _consent_event(uow, updated, clean, False, now)
        repo.audit(uow, principal, "revoke", "consent", member_id, member["organization_id"], purpose=clean)
        return updated

    return repo.transaction(work)


def consent_history(repo: Repository, principal: Principal, member_id: str) -> list[dict]:
    member = _member(repo, None, principal, member_id)
    repo.audit(None, principal, "read", "consent", member_id, principal.organization_id)
    return repo.consent_log(principal.organization_id, member["_id"])


def announce_expired_consents(repo: Repository, now: datetime | None = None) -> int:
    """Periodic: a consent whose expiry passed is announced as revoked (once: the announcement is
    recorded on the consent in the same transaction, so several workers never double it)."""
    now = now or utcnow()
    count = 0
    for candidate in repo.members_with_consents_due(now):
        def work(uow: UnitOfWork, member_id=candidate["_id"], org_id=candidate["organization_id"]) -> int:
            member = repo.get_member(org_id, member_id, session=uow.session)
            if member is None or member.get("erased"):
                return 0
            due = [p for p, c in member["consents"].items()
                   if c.get("expires_at") and c["expires_at"] <= now and c.get("revoked_at") is None
                   and not c.get("expiry_announced")]
            if not due:
                return 0
            consents = {p: ({**c, "expiry_announced": True} if p in due else c) for p, c in member["consents"].items()}
            updated = dict(member)
            _set_consents(updated, consents, now)
            updated["version"] = member.get("version", 1) + 1
            repo.replace_member(uow, updated)
            for purpose in due:
                _log_consent(repo, uow, updated, purpose, "expired", SYSTEM, now)
                _consent_event(uow, updated, purpose, False, now)
                repo.audit(uow, None, "expire", "consent", member_id, org_id, purpose=purpose)
            return len(due)

        count += repo.transaction(work)
    return count


def change_member_status(repo: Repository, principal: Principal, member_id: str, to_status: str,
                         reason: str | None, check_etag: Callable[[dict], None] = lambda doc: None) -> dict:
    now = utcnow()

    def work(uow: UnitOfWork) -> dict:
        member = _member(repo, uow, principal, member_id)
        check_etag(member)
        model.check_member_transition(member["status"], to_status,
                                      model.consents_in_force(member.get("consents") or {}, now))
        updated = {**member, "status": to_status, "version": member.get("version", 1) + 1, "updated_at": now}
        repo.replace_member(uow, updated)
        _status_event(uow, updated, member["status"], reason)
        _announce_member(uow, MemberUpdated, updated, now)  # snapshot consumers see the status too
        repo.audit(uow, principal, "status", "member", member_id, member["organization_id"],
                   from_status=member["status"], to_status=to_status)
        return updated

    return repo.transaction(work)


def transfer_member(repo: Repository, principal: Principal, member_id: str, data: dict,
                    check_etag: Callable[[dict], None] = lambda doc: None) -> dict:
    now = utcnow()

    def work(uow: UnitOfWork) -> dict:
        member = _member(repo, uow, principal, member_id)
        check_etag(member)
        target = _site(repo, uow, principal, data["to_site_id"], field="to_site_id")
        if target["_id"] == member["site_id"]:
            raise Conflict("The member is already at that site.")
        tz = model.check_time_zone(data["time_zone"]) if data.get("time_zone") else target["time_zone"]
        # A member who kept the old site's time zone moves to the new site's; one who chose their own keeps it.
        old_site = repo.get_site(member["organization_id"], member["site_id"], session=uow.session)
        if not data.get("time_zone") and old_site and member["time_zone"] != old_site["time_zone"]:
            tz = member["time_zone"]
        updated = {**member, "site_id": target["_id"], "time_zone": tz, "version": member.get("version", 1) + 1,
                   "updated_at": now}
        repo.replace_member(uow, updated)
        uow.emit(MemberTransferred, {"organization_id": member["organization_id"], "member_id": member_id,
                                     "from_site_id": member["site_id"], "to_site_id": target["_id"],
                                     "time_zone": tz})
        _announce_member(uow, MemberUpdated, updated, now)
        org = _organization(repo, uow, member["organization_id"])
        _announce_member_contact(uow, updated, org["default_language"])
        repo.audit(uow, principal, "transfer", "member", member_id, member["organization_id"],
                   from_site_id=member["site_id"], to_site_id=target["_id"])
        return updated

    return repo.transaction(work)


def erase_member(repo: Repository, principal: Principal, member_id: str, reason: str | None) -> dict:
    now = utcnow()

    def work(uow: UnitOfWork) -> dict:
        member = _member(repo, uow, principal, member_id)
        stub = model.erased_member(member, now)
        repo.erase_member_data(uow, member["organization_id"], member_id, stub, member.get("external_id"))
        uow.emit(MemberErased, {"organization_id": member["organization_id"], "member_id": member_id,
                                "site_id": member.get("site_id")})
        uow.tombstone(CONTACTS, member_id)
        # The entry names the kinds of data removed, never their values.
        repo.audit(uow, principal, "erase", "member", member_id, member["organization_id"],
                   removed=sorted(k for k in model.MEMBER_IDENTIFYING_FIELDS if member.get(k) is not None)
                   + ["screenings", "consents", "plan"], reason_given=bool(reason))
        return {"member_id": member_id, "erased_at": now}

    return repo.transaction(work)


# --- screenings ----------------------------------------------------------------------------------

def record_screening(repo: Repository, principal: Principal, member_id: str, data: dict) -> dict:
    now = utcnow()
    scored = model.score_screening(data["instrument"], data["answers"])

    def work(uow: UnitOfWork) -> dict:
        member = _member(repo, uow, principal, member_id)
        doc = {"_id": _new_id("scr"), "organization_id": member["organization_id"], "member_id": member_id,
               "site_id": member["site_id"], **scored, "recorded_by": _actor(principal), "recorded_at": now}
        repo.insert_screening(uow, doc)
        uow.emit(ScreeningRecorded, {"organization_id": member["organization_id"], "member_id": member_id,
                                     "site_id": member["site_id"], "screening_id": doc["_id"],
                                     "instrument": doc["instrument"], "total": doc["total"], "band": doc["band"],
                                     "flagged": doc["flagged"]})
        if doc["flagged"]:
            updated = {**member, "flags": sorted(set(member.get("flags") or []) | {"risk"}),
                       "version": member.get("version", 1) + 1, "updated_at": now}
            repo.replace_member(uow, updated)
            uow.emit(MemberRiskFlagged, {"organization_id": member["organization_id"], "member_id": member_id,
                                         "site_id": member["site_id"], "screening_id": doc["_id"],
                                         "instrument": doc["instrument"], "band": doc["band"],
                                         "reason": doc["reason"]})
        repo.audit(uow, principal, "create", "screening", member_id, member["organization_id"],
                   screening_id=doc["_id"], instrument=doc["instrument"])
        return doc

    return repo.transaction(work)


def list_screenings(repo: Repository, principal: Principal, member_id: str, query: dict):
    _member(repo, None, principal, member_id)
    repo.audit(None, principal, "read", "screening", member_id, principal.organization_id)
    return repo.list_screenings(principal.organization_id, member_id, query.get("instrument"),
                                query["offset"], query["limit"])


def resolve_flag(repo: Repository, principal: Principal, member_id: str, flag: str) -> dict:
    now = utcnow()

    def work(uow: UnitOfWork) -> dict:
        member = _member(repo, uow, principal, member_id)
        if flag not in (member.get("flags") or []):
            raise NotFound(f"The member has no open {flag!r} flag.")
        updated = {**member, "flags": [f for f in member["flags"] if f != flag],
                   "version": member.get("version", 1) + 1, "updated_at": now}
        repo.replace_member(uow, updated)
        repo.audit(uow, principal, "resolve_flag", "member", member_id, member["organization_id"], flag=flag)
        return updated

    return repo.transaction(work)


# --- plans ---------------------------------------------------------------------------------------

def revise_plan(repo: Repository, principal: Principal, member_id: str, data: dict,
                check_etag: Callable[[dict], None] = lambda doc: None) -> dict:
    now = utcnow()

    def work(uow: UnitOfWork) -> dict:
        member = _member(repo, uow, principal, member_id)
        check_etag(member)
        plan = model.revise_plan(member.get("plan"), data["goal"], data["next_steps"], by=_actor(principal), at=now)
        updated = {**member, "plan": plan, "version": member.get("version", 1) + 1, "updated_at": now}
        repo.replace_member(uow, updated)
        repo.insert_plan_revision(uow, {"_id": _new_id("plan"), "organization_id": member["organization_id"],
                                        "member_id": member_id, **plan})
        repo.audit(uow, principal, "update", "plan", member_id, member["organization_id"], revision=plan["revision"])
        return plan

    return repo.transaction(work)


def plan_history(repo: Repository, principal: Principal, member_id: str) -> list[dict]:
    _member(repo, None, principal, member_id)
    repo.audit(None, principal, "read", "plan", member_id, principal.organization_id)
    return repo.plan_history(principal.organization_id, member_id)


# --- leaders -------------------------------------------------------------------------------------

LEADER_FIELDS = ("first_name", "last_name", "preferred_name", "pronouns", "email", "phone", "date_of_birth",
                 "languages", "preferred_language", "time_zone", "availability", "contact_channels", "substances",
                 "pathways", "gender", "meets_virtually", "capacity", "lived_experience_areas",
                 "co_occurring_mental_health_experience", "certifications", "site_ids")


def _leader_sites(repo: Repository, uow: UnitOfWork, principal: Principal, site_ids: list[str]) -> list[dict]:
    return [_site(repo, uow, principal, s, field="site_ids") for s in dict.fromkeys(site_ids)]


def register_leader(repo: Repository, principal: Principal, data: dict) -> dict:
    now = utcnow()
    org_id = principal.organization_id

    def work(uow: UnitOfWork) -> dict:
        org = _organization(repo, uow, org_id)
        sites = _leader_sites(repo, uow, principal, data["site_ids"])
        person = model.normalize_person(data, today=now.date(), allows_youth=False)
        leader = {k: person.get(k) for k in LEADER_FIELDS}
        leader.update({
            "_id": _new_id("ldr"), "organization_id": org_id, "site_ids": [s["_id"] for s in sites],
            "time_zone": person.get("time_zone") or sites[0]["time_zone"],
            "preferred_language": person.get("preferred_language") or (person.get("languages") or ["en"])[0],
            "capacity": model.check_capacity(data["capacity"]), "status": "active", "version": 1,
            "created_at": now, "updated_at": now, "created_by": _actor(principal),
        })
        _claim_identities(repo, uow, org_id, "leader", leader["_id"], None, leader)
        repo.insert_leader(uow, leader)
        uow.emit(LeaderRegistered, model.leader_snapshot(leader))
        uow.emit(ContactChanged, model.contact_snapshot(leader, "leader", leader["site_ids"], org["default_language"]))
        repo.audit(uow, principal, "create", "leader", leader["_id"], org_id)
        return leader

    return repo.transaction(work)


def get_leader(repo: Repository, principal: Principal, leader_id: str) -> dict:
    return _leader(repo, None, principal, leader_id)


def list_leaders(repo: Repository, principal: Principal, query: dict):
    site_filter = principal.site_filter()
    if principal.role == "leader":
        leader = repo.get_leader(principal.organization_id, principal.leader_id)
        return ([leader], 1) if leader else ([], 0)
    return repo.list_leaders(principal.organization_id, site_filter=site_filter, site_id=query.get("site_id"),
                             status=query.get("status"), skip=query["offset"], limit=query["limit"])


def update_leader(repo: Repository, principal: Principal, leader_id: str, patch: dict,
                  check_etag: Callable[[dict], None]) -> dict:
    now = utcnow()

    def work(uow: UnitOfWork) -> dict:
        leader = _leader(repo, uow, principal, leader_id)
        if principal.role == "leader" and set(patch) & {"site_ids", "capacity", "certifications"}:
            raise Forbidden("Sites, capacity and certifications are changed by your coordinator.")
        check_etag(leader)
        org = _organization(repo, uow, principal.organization_id)
        person = model.normalize_person(patch, today=now.date(), allows_youth=False, partial=True)
        updated = dict(leader)
        for k in LEADER_FIELDS:
            if k in patch:
                updated[k] = person[k]
        if "site_ids" in patch:
            updated["site_ids"] = [s["_id"] for s in _leader_sites(repo, uow, principal, patch["site_ids"])]
        if "capacity" in patch:
            updated["capacity"] = model.check_capacity(patch["capacity"])
        if not updated.get("time_zone"):
            raise Invalid({"time_zone": ["A leader needs a time zone."]})
        model.check_contact_kept(updated)
        if all(updated.get(k) == leader.get(k) for k in LEADER_FIELDS):
            return leader
        _claim_identities(repo, uow, org["_id"], "leader", leader_id, leader, updated)
        updated["version"] = leader.get("version", 1) + 1
        updated["updated_at"] = now
        repo.replace_leader(uow, updated)
        if model.leader_snapshot(updated) != model.leader_snapshot(leader):
            uow.emit(LeaderUpdated, model.leader_snapshot(updated))
        if updated["capacity"] != leader["capacity"]:
            uow.emit(LeaderCapacityChanged, {"organization_id": org["_id"], "leader_id": leader_id,
                                             "capacity": updated["capacity"]})
        if (updated["availability"], updated["time_zone"]) != (leader["availability"], leader["time_zone"]):
            uow.emit(LeaderAvailabilityChanged, {"organization_id": org["_id"], "leader_id": leader_id,
                                                 "time_zone": updated["time_zone"],
                                                 "availability": updated["availability"]})
        if model.contact_changed(leader, updated):
            uow.emit(ContactChanged, model.contact_snapshot(updated, "leader", updated["site_ids"],
                                                            org["default_language"]))
        repo.audit(uow, principal, "update", "leader", leader_id, org["_id"],
                   fields=sorted(k for k in LEADER_FIELDS if updated.get(k) != leader.get(k)))
        return updated

    return repo.transaction(work)


def change_leader_status(repo: Repository, principal: Principal, leader_id: str, to_status: str,
                         reason: str | None, check_etag: Callable[[dict], None] = lambda doc: None) -> dict:
    now = utcnow()

    def work(uow: UnitOfWork) -> dict:
        leader = _leader(repo, uow, principal, leader_id)
        check_etag(leader)
        model.check_leader_transition(leader["status"], to_status)
        updated = {**leader, "status": to_status, "version": leader.get("version", 1) + 1, "updated_at": now}
        repo.replace_leader(uow, updated)
        if to_status == "active":
            uow.emit(LeaderReactivated, {"organization_id": leader["organization_id"], "leader_id": leader_id})
        else:
            uow.emit(LeaderDeactivated, {"organization_id": leader["organization_id"], "leader_id": leader_id,
                                         "to_status": to_status, "reason": reason})
        uow.emit(LeaderUpdated, model.leader_snapshot(updated))
        repo.audit(uow, principal, "status", "leader", leader_id, leader["organization_id"],
                   from_status=leader["status"], to_status=to_status)
        return updated

    return repo.transaction(work)


# --- bulk import ---------------------------------------------------------------------------------

def import_members(repo: Repository, principal: Principal, site_id: str, fmt: str, rows: list,
                   load_row: Callable[[dict, str], dict]) -> dict:
    """Create or update members of a site from parsed rows, idempotent by external id. Each row is its
    own transaction, so a bad row never blocks the good ones; the report says what became of each."""
    now = utcnow()
    site = _site(repo, None, principal, site_id)
    _organization(repo, None, principal.organization_id)
    report = []
    seen: dict[str, int] = {}
    for number, data, errors in rows:
        entry: dict[str, Any] = {"row": number, "external_id": None, "outcome": "rejected", "member_id": None,
                                 "errors": errors, "existing": None}
        report.append(entry)
        if errors:
            continue
        try:
            loaded = load_row(data, site["_id"])
        except ValueError as exc:  # schemas.RowError: field -> messages
            entry["errors"] = getattr(exc, "errors", {"_row": [str(exc)]})
            entry["external_id"] = data.get("external_id") if isinstance(data.get("external_id"), str) else None
            continue
        external_id = loaded.get("external_id")
        entry["external_id"] = external_id
        if not external_id:
            entry["errors"] = {"external_id": ["Imported rows need the organization's external id."]}
            continue
        if external_id in seen:
            entry["errors"] = {"external_id": [f"Repeats row {seen[external_id]} of this upload."]}
            continue
        seen[external_id] = number
        try:
            outcome, member = repo.transaction(lambda uow: _import_row(repo, uow, principal, site, loaded, now))
        except model.Conflict as exc:
            entry["errors"] = {"_row": [exc.message]}
            entry["existing"] = exc.existing
            continue
        except model.DomainError as exc:
            entry["errors"] = getattr(exc, "errors", None) or {"_row": [exc.message]}
            continue
        entry.update(outcome=outcome, member_id=member["_id"], errors=None)
    counts = {k: sum(1 for r in report if r["outcome"] == k) for k in ("created", "updated", "unchanged", "rejected")}
    doc = {"_id": _new_id("imp"), "organization_id": principal.organization_id, "site_id": site["_id"],
           "format": fmt, "created_at": now, "created_by": _actor(principal), "counts": counts, "rows": report}
    repo.insert_import(doc)
    repo.audit(None, principal, "import", "member", doc["_id"], principal.organization_id, site_id=site["_id"],
               **counts)
    return doc


def _import_row(repo: Repository, uow: UnitOfWork, principal: Principal, site: dict, data: dict,
                now: datetime) -> tuple[str, dict]:
    data = dict(data)  # the transaction may be retried: leave the caller's row untouched
    found = repo.find_identity(uow, principal.organization_id, "member", "external_id", data["external_id"])
    if found is None:
        return "created", register_member_in(repo, uow, principal, data, now=now, source="import")
    member = repo.get_member(principal.organization_id, found["person_id"], session=uow.session)
    if member["site_id"] != site["_id"]:
        raise Conflict("This external id belongs to a member of another site (transfer them first).",
                       existing={"id": member["_id"], "kind": "member", "field": "external_id",
                                 "href": f"/v1/members/{member['_id']}"})
    grants = data.pop("consents", None) or []
    patch = {k: v for k, v in data.items() if k in MEMBER_FIELDS and not (v is None and member.get(k) is None)}
    if "time_zone" in patch and patch["time_zone"] is None:
        patch.pop("time_zone")
    if "preferred_language" in patch and patch["preferred_language"] is None:
        patch.pop("preferred_language")
    member, changed = update_member_in(repo, uow, principal, member, patch, now=now)
    in_force = {c["purpose"] for c in model.consents_in_force(member.get("consents") or {}, now)}
    for grant in grants:
        if model.check_consent_purpose(grant["purpose"]) not in in_force:
            member = _grant_in(repo, uow, principal, member, grant, now)
            changed = True
    return ("updated" if changed else "unchanged"), member


def get_import(repo: Repository, principal: Principal, import_id: str) -> dict:
    doc = repo.get_import(principal.organization_id, import_id)
    if doc is None or not principal.can_access_site(doc["site_id"]):
        raise NotFound("No such import.")
    return doc


# --- audit ---------------------------------------------------------------------------------------

def read_audit_log(repo: Repository, principal: Principal, query: dict):
    return repo.list_audit(principal.organization_id, resource_id=query.get("resource_id"),
                           resource_type=query.get("resource_type"), action=query.get("action"),
                           skip=query["offset"], limit=query["limit"])


def view_member(member: dict, now: datetime | None = None) -> dict[str, Any]:
    """The member as the API shows it: consents as a list with whether each is in force."""
    now = now or utcnow()
    consents = [{"purpose": p, "in_force": model.consent_active(c, now), **c}
                for p, c in sorted((member.get("consents") or {}).items())]
    return {**member, "consents": consents}
