"""Peer leaders: registration, profile (a leader edits their own, not their sites, capacity or
certifications), capacity, availability and status, each announced to matching and scheduling."""
from __future__ import annotations

from typing import Callable

from shared.auth import Principal
from shared.clock import utcnow
from shared.errors import Forbidden, Invalid
from shared.events.intake import (
    ContactChanged,
    LeaderAvailabilityChanged,
    LeaderCapacityChanged,
    LeaderDeactivated,
    LeaderReactivated,
    LeaderRegistered,
    LeaderStretched,
    LeaderStretchLifted,
    LeaderUpdated,
)
from shared.unit_of_work import UnitOfWork

from intake import access, model
from intake.handlers import identities
from intake.repository import Store

LEADER_FIELDS = ("first_name", "last_name", "preferred_name", "pronouns", "email", "phone", "date_of_birth",
                 "languages", "preferred_language", "time_zone", "availability", "contact_channels", "substances",
                 "pathways", "gender", "meets_virtually", "capacity", "lived_experience_areas",
                 "co_occurring_mental_health_experience", "certifications", "site_ids", "bio")


def register(uow: UnitOfWork, principal: Principal, data: dict) -> dict:
    store = Store.of(uow)
    now = utcnow()
    org_id = principal.organization_id
    org = access.organization(store, org_id)
    sites = access.sites(store, principal, data["site_ids"])
    person = model.normalize_person(data, today=now.date(), allows_youth=False)
    leader = {k: person.get(k) for k in LEADER_FIELDS}  # bio: what members matched with them see
    leader.update({
        "_id": model.new_id("ldr"), "organization_id": org_id, "site_ids": [s["_id"] for s in sites],
        "time_zone": person.get("time_zone") or sites[0]["time_zone"],
        "preferred_language": person.get("preferred_language") or (person.get("languages") or ["en"])[0],
        "capacity": model.check_capacity(data["capacity"]), "status": "active", "version": 1,
        "created_at": now, "updated_at": now, "created_by": model.actor(principal),
    })
    identities.claim(store, org_id, "leader", leader["_id"], None, leader)
    store.insert_leader(leader)
    uow.emit(LeaderRegistered, model.leader_snapshot(leader))
    uow.emit(ContactChanged, model.contact_snapshot(leader, "leader", leader["site_ids"], org["default_language"]))
    store.audit(principal, "create", "leader", leader["_id"], org_id)
    return leader


def get(store: Store, principal: Principal, leader_id: str) -> dict:
    return access.leader(store, principal, leader_id)


def list_leaders(store: Store, principal: Principal, query: dict):
    if principal.role == "leader":
        leader = store.leader(principal.organization_id, principal.leader_id)
        if leader and query.get("ids") is not None and leader["_id"] not in query["ids"]:
            leader = None
        return ([leader], 1) if leader else ([], 0)
    return store.leaders_page(principal.organization_id, site_filter=principal.site_filter(),
                              site_id=query.get("site_id"), status=query.get("status"), skip=query["offset"],
                              limit=query["limit"], ids=query.get("ids"))


def update(uow: UnitOfWork, principal: Principal, leader_id: str, patch: dict,
           check_etag: Callable[[dict], None]) -> dict:
    store = Store.of(uow)
    now = utcnow()
    leader = access.leader(store, principal, leader_id)
    access.check_leader_patch(principal, patch)
    check_etag(leader)
    org = access.organization(store, principal.organization_id)
    person = model.normalize_person(patch, today=now.date(), allows_youth=False, partial=True)
    updated = model.patched(leader, person, patch, LEADER_FIELDS)
    if "site_ids" in patch:
        updated["site_ids"] = [s["_id"] for s in access.sites(store, principal, patch["site_ids"])]
    if "capacity" in patch:
        updated["capacity"] = model.check_capacity(patch["capacity"])
    if not updated.get("time_zone"):
        raise Invalid({"time_zone": ["A leader needs a time zone."]})
    model.check_contact_kept(updated)
    if all(updated.get(k) == leader.get(k) for k in LEADER_FIELDS):
        return leader
    identities.claim(store, org["_id"], "leader", leader_id, leader, updated)
    updated["version"] = leader.get("version", 1) + 1
    updated["updated_at"] = now
    store.replace_leader(updated)
    if model.leader_snapshot(updated) != model.leader_snapshot(leader):
        uow.emit(LeaderUpdated, model.leader_snapshot(updated))
    if updated["capacity"] != leader["capacity"]:
        uow.emit(LeaderCapacityChanged, {"organization_id": org["_id"], "leader_id": leader_id,
                                         "capacity": updated["capacity"]})
    if (updated["availability"], updated["time_zone"]) != (leader["availability"], leader["time_zone"]):
        uow.emit(LeaderAvailabilityChanged, {"organization_id": org["_id"], "leader_id": leader_id,
                                             "time_zone": updated["time_zone"], "availability": updated["availability"]})
    if model.contact_changed(leader, updated):
        uow.emit(ContactChanged, model.contact_snapshot(updated, "leader", updated["site_ids"], org["default_language"]))
    store.audit(principal, "update", "leader", leader_id, org["_id"],
                fields=sorted(k for k in LEADER_FIELDS if updated.get(k) != leader.get(k)))
    return updated


def change_status(uow: UnitOfWork, principal: Principal, leader_id: str, to_status: str, reason: str | None,
                  check_etag: Callable[[dict], None] = lambda doc: None) -> dict:
    store = Store.of(uow)
    leader = access.leader(store, principal, leader_id)
    access.check_leader_own_status(principal, to_status)
    check_etag(leader)
    model.check_leader_transition(leader["status"], to_status)
    updated = {**leader, "status": to_status, "version": leader.get("version", 1) + 1, "updated_at": utcnow()}
    store.replace_leader(updated)
    if to_status == "active":
        uow.emit(LeaderReactivated, {"organization_id": leader["organization_id"], "leader_id": leader_id})
    else:
        uow.emit(LeaderDeactivated, {"organization_id": leader["organization_id"], "leader_id": leader_id,
                                     "to_status": to_status, "reason": reason})
    uow.emit(LeaderUpdated, model.leader_snapshot(updated))
    store.audit(principal, "status", "leader", leader_id, leader["organization_id"],
                from_status=leader["status"], to_status=to_status)
    return updated


# --- "I'm stretched": a pause on new proposals, set by the leader, lifted by them or their staff -----

def say_stretched(uow: UnitOfWork, principal: Principal, note: str | None) -> dict:
    """The calling leader says they are stretched (``PUT /v1/me/stretched``): matching proposes nobody new to
    them until it is lifted; the coordinators of their sites are told (LeaderStretched). The note is for
    staff only and never leaves intake. Saying it again changes only the note."""
    store = Store.of(uow)
    leader = access.own_leader(store, principal)
    now = utcnow()
    signal = {**model.stretched(leader, note, now), "by": model.actor(principal)}
    if leader.get("stretched") == signal:
        return leader
    first = not model.is_stretched(leader)
    updated = {**leader, "stretched": signal, "version": leader.get("version", 1) + 1, "updated_at": now}
    store.replace_leader(updated)
    if first:
        uow.emit(LeaderUpdated, model.leader_snapshot(updated))
        uow.emit(LeaderStretched, {"organization_id": leader["organization_id"], "leader_id": leader["_id"],
                                   "site_ids": leader["site_ids"], "since": model.stretched_since(updated)})
    store.audit(principal, "update", "leader", leader["_id"], leader["organization_id"],
                change="stretched" if first else "stretched_note")
    return updated


def lift_stretched(uow: UnitOfWork, principal: Principal, leader_id: str) -> dict:
    """Lift a leader's pause on new proposals: the leader themself (``DELETE /v1/me/stretched``), or an
    admin or a coordinator of one of the leader's sites (``DELETE /v1/leaders/{id}/stretched``). Matching
    may propose to them again at once; lifting what is not set changes nothing."""
    store = Store.of(uow)
    leader = access.leader(store, principal, leader_id)
    if principal.role not in ("leader", "admin", "coordinator"):
        raise Forbidden("Only the peer leader or their coordinator lifts this.")
    if not model.is_stretched(leader):
        return leader
    since = model.stretched_since(leader)
    updated = {**leader, "stretched": None, "version": leader.get("version", 1) + 1, "updated_at": utcnow()}
    store.replace_leader(updated)
    uow.emit(LeaderUpdated, model.leader_snapshot(updated))
    uow.emit(LeaderStretchLifted, {"organization_id": leader["organization_id"], "leader_id": leader_id,
                                   "site_ids": leader["site_ids"], "since": since, "lifted_by_role": principal.role})
    store.audit(principal, "update", "leader", leader_id, leader["organization_id"], change="stretch_lifted")
    return updated
