"""Members: registration, profile, lifecycle, transfer between sites and erasure on request.

Every change of what other services know (the snapshot without direct identifiers) is announced as
``MemberUpdated``; a change of contact as ``ContactChanged`` on the restricted contacts topic."""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from shared.auth import Principal
from shared.clock import utcnow
from shared.errors import Conflict, Invalid
from shared.events.intake import (
    CONTACTS,
    ContactChanged,
    MemberErased,
    MemberRegistered,
    MemberTransferred,
    MemberUpdated,
)
from shared.unit_of_work import UnitOfWork

from intake import access, model
from intake.handlers import consents, identities
from intake.repository import Store

MEMBER_FIELDS = ("first_name", "last_name", "preferred_name", "pronouns", "email", "phone", "date_of_birth",
                 "languages", "preferred_language", "time_zone", "availability", "contact_channels", "substances",
                 "pathways", "co_occurring_mental_health", "lived_experience_topics", "leader_gender_preference",
                 "meeting_mode", "external_id")


def _announce(uow: UnitOfWork, declaration, member: dict, now: datetime) -> None:
    uow.emit(declaration, model.member_snapshot(member, now))


def _announce_contact(uow: UnitOfWork, member: dict, default_language: str) -> None:
    uow.emit(ContactChanged, model.contact_snapshot(member, "member", [member["site_id"]], default_language))


def register_in(uow: UnitOfWork, principal: Principal, data: dict, *, now: datetime, source: str = "api") -> dict:
    """Register a member (shared by the API and the bulk import)."""
    store = Store.of(uow)
    org_id = principal.organization_id
    org = access.organization(store, org_id)
    site = access.site(store, principal, data["site_id"], field="site_id")
    person = model.normalize_person(data, today=now.date(), allows_youth=org.get("allows_youth", False))
    member_id = model.new_id("mem")
    by = model.actor(principal)
    given: dict = {}
    for grant in data.get("consents") or []:
        try:
            given = model.grant_consent(given, grant["purpose"], by=by, at=now,
                                        expires_at=grant.get("expires_at"), note=grant.get("note"))
        except Invalid as exc:
            raise Invalid({f"consents.{k}": v for k, v in exc.errors.items()}) from None
    member = {k: person.get(k) for k in MEMBER_FIELDS}
    member.update({
        "_id": member_id, "organization_id": org_id, "site_id": site["_id"],
        "time_zone": person.get("time_zone") or site["time_zone"],
        "preferred_language": person.get("preferred_language") or (person.get("languages") or [org["default_language"]])[0],
        "status": model.initial_member_status(model.consents_in_force(given, now)),
        "flags": [], "plan": None, "version": 1, "created_at": now, "updated_at": now, "created_by": by,
        "source": source,
    })
    consents.set_consents(member, given)
    identities.claim(store, org_id, "member", member_id, None, member)
    store.insert_member(member)
    consents.log_many(store, member, sorted(given), "granted", by, now)
    _announce(uow, MemberRegistered, member, now)
    _announce_contact(uow, member, org["default_language"])
    for purpose in sorted(given):
        consents.announce(uow, member, purpose, True, now)
    store.audit(principal, "create", "member", member_id, org_id, site_id=site["_id"], source=source)
    return member


def register(uow: UnitOfWork, principal: Principal, data: dict) -> dict:
    return register_in(uow, principal, data, now=utcnow())


def get(store: Store, principal: Principal, member_id: str) -> dict:
    """A member's record; the read is audited. No transaction: the entry is written after the read and the
    record is answered only once it is, which is all a transaction would add (and on the embedded database
    a transaction costs two more commands and a snapshot per read)."""
    member = access.member(store, principal, member_id)
    store.audit(principal, "read", "member", member_id, principal.organization_id)
    return member


def get_with(store: Store, principal: Principal, member_id: str, include: list[str], *,
             screenings: int) -> tuple[dict, dict]:
    """A member's record with the parts ``include`` names (``screenings``: the newest ``screenings`` and their
    total; ``consent_history``; ``plan_history``), read at once and audited as one read naming them: a
    member's page in one call instead of four (each of which read the member and wrote an audit entry)."""
    member = access.member(store, principal, member_id)
    org = principal.organization_id
    parts: dict = {}
    if "screenings" in include:
        parts["screenings"] = store.screenings_page(org, member_id, None, 0, screenings)
    if "consent_history" in include:
        parts["consent_history"] = store.consent_log(org, member_id)
    if "plan_history" in include:
        parts["plan_history"] = store.plan_history(org, member_id)
    store.audit(principal, "read", "member", member_id, org, included=sorted(parts))
    return member, parts


def list_members(store: Store, principal: Principal, query: dict) -> tuple[list[dict], int]:
    site_id = query.get("site_id")
    if site_id is not None and not principal.can_access_site(site_id):
        return [], 0
    items, total = store.members_page(principal.organization_id, site_filter=principal.site_filter(),
                                      site_id=site_id, status=query.get("status"), flagged=query.get("flagged"),
                                      external_id=query.get("external_id"), name=query.get("name"), skip=query["offset"],
                                      limit=query["limit"], ids=query.get("ids"))
    if query.get("ids") is not None:   # a lookup by ids: each member answered was read, as by GET /v1/members/{id}
        store.audit_reads(principal, "member", [m["_id"] for m in items], principal.organization_id, via="ids")
    else:
        store.audit(principal, "list", "member", "*", principal.organization_id, site_id=site_id, count=len(items))
    return items, total


def update_in(uow: UnitOfWork, principal: Principal, member: dict, patch: dict, *,
              now: datetime) -> tuple[dict, bool]:
    """Apply a (validated-shape) patch to a member read in this unit of work. Returns (member, changed)."""
    store = Store.of(uow)
    org = access.organization(store, principal.organization_id)
    person = model.normalize_person(patch, today=now.date(), allows_youth=org.get("allows_youth", False), partial=True)
    updated = model.patched(member, person, patch, MEMBER_FIELDS)
    if "languages" in patch and "preferred_language" not in patch and updated.get("languages"):
        if updated.get("preferred_language") not in updated["languages"]:
            updated["preferred_language"] = updated["languages"][0]
    if not updated.get("time_zone"):
        raise Invalid({"time_zone": ["A member needs a time zone."]})
    model.check_contact_kept(updated)
    if all(updated.get(k) == member.get(k) for k in MEMBER_FIELDS + ("preferred_language",)):
        return member, False
    identities.claim(store, member["organization_id"], "member", member["_id"], member, updated)
    updated["version"] = member.get("version", 1) + 1
    updated["updated_at"] = now
    store.replace_member(updated)
    if model.member_snapshot(updated, now) != model.member_snapshot(member, now):
        _announce(uow, MemberUpdated, updated, now)
    if model.contact_changed(member, updated):
        _announce_contact(uow, updated, org["default_language"])
    store.audit(principal, "update", "member", member["_id"], member["organization_id"],
                fields=sorted(k for k in MEMBER_FIELDS if updated.get(k) != member.get(k)))
    return updated, True


def update(uow: UnitOfWork, principal: Principal, member_id: str, patch: dict,
           check_etag: Callable[[dict], None]) -> dict:
    member = access.member(Store.of(uow), principal, member_id)
    check_etag(member)
    return update_in(uow, principal, member, patch, now=utcnow())[0]


def change_status(uow: UnitOfWork, principal: Principal, member_id: str, to_status: str, reason: str | None,
                  check_etag: Callable[[dict], None] = lambda doc: None) -> dict:
    store = Store.of(uow)
    now = utcnow()
    member = access.member(store, principal, member_id)
    check_etag(member)
    model.check_member_transition(member["status"], to_status,
                                  model.consents_in_force(member.get("consents") or {}, now))
    updated = {**member, "status": to_status, "version": member.get("version", 1) + 1, "updated_at": now}
    store.replace_member(updated)
    consents.status_changed(uow, updated, member["status"], reason)
    _announce(uow, MemberUpdated, updated, now)  # snapshot consumers see the status too
    store.audit(principal, "status", "member", member_id, member["organization_id"],
                from_status=member["status"], to_status=to_status)
    return updated


def transfer(uow: UnitOfWork, principal: Principal, member_id: str, data: dict,
             check_etag: Callable[[dict], None] = lambda doc: None) -> dict:
    store = Store.of(uow)
    now = utcnow()
    member = access.member(store, principal, member_id)
    check_etag(member)
    target = access.site(store, principal, data["to_site_id"], field="to_site_id")
    if target["_id"] == member["site_id"]:
        raise Conflict("The member is already at that site.")
    tz = model.check_time_zone(data["time_zone"]) if data.get("time_zone") else target["time_zone"]
    # A member who kept the old site's time zone moves to the new site's; one who chose their own keeps it.
    old_site = store.site(member["organization_id"], member["site_id"])
    if not data.get("time_zone") and old_site and member["time_zone"] != old_site["time_zone"]:
        tz = member["time_zone"]
    updated = {**member, "site_id": target["_id"], "time_zone": tz, "version": member.get("version", 1) + 1,
               "updated_at": now}
    store.replace_member(updated)
    uow.emit(MemberTransferred, {"organization_id": member["organization_id"], "member_id": member_id,
                                 "from_site_id": member["site_id"], "to_site_id": target["_id"], "time_zone": tz})
    _announce(uow, MemberUpdated, updated, now)
    org = access.organization(store, member["organization_id"])
    _announce_contact(uow, updated, org["default_language"])
    store.audit(principal, "transfer", "member", member_id, member["organization_id"],
                from_site_id=member["site_id"], to_site_id=target["_id"])
    return updated


def erase(uow: UnitOfWork, principal: Principal, member_id: str, reason: str | None) -> dict:
    store = Store.of(uow)
    now = utcnow()
    member = access.member(store, principal, member_id)
    stub = model.erased_member(member, now)
    store.erase_member_data(member["organization_id"], member_id, stub, member.get("external_id"))
    uow.emit(MemberErased, {"organization_id": member["organization_id"], "member_id": member_id,
                            "site_id": member.get("site_id")})
    uow.tombstone(CONTACTS, member_id)
    # The entry names the kinds of data removed, never their values.
    store.audit(principal, "erase", "member", member_id, member["organization_id"],
                removed=sorted(k for k in model.MEMBER_IDENTIFYING_FIELDS if member.get(k) is not None)
                + ["screenings", "consents", "plan"], reason_given=bool(reason))
    return {"member_id": member_id, "erased_at": now}
