"""Registrations: a member takes a seat at a meeting (the series or one occurrence) or waits in line."""
from __future__ import annotations

import uuid

from shared.auth import Principal
from shared.errors import Conflict, Forbidden, NotFound, NotYetKnown
from shared.events.scheduling import RegistrationCancelled, RegistrationCreated
from shared.mongo import utcnow
from shared.unit_of_work import UnitOfWork

from scheduling import access, model
from scheduling.handlers.meetings import find_occurrence, load_meeting, promote_waiting, save_seat_count, seat_count
from scheduling.repository import Store


def register(uow: UnitOfWork, principal: Principal, meeting_id: str, member_id: str,
             occurrence_id: str | None, registrant_kind: str = "member") -> dict:
    """``registrant_kind`` leader: a peer leader takes their own seat at a support group for peer providers.
    Such a seat is stored beside members' (``member_id`` holds the leader's id, ``registrant_kind`` says so),
    counts toward capacity, and is never announced as a member's: no registration event, and it is left out
    of every ``registrant_ids`` (the events' consumers know only members)."""
    org = principal.organization_id
    now = utcnow()
    registration_id = uuid.uuid4().hex
    store = Store.of(uow)
    meeting = load_meeting(store, principal, meeting_id)  # a meeting the caller may not see: 404 first
    leader_seat = registrant_kind == "leader" or principal.role == "leader"
    if leader_seat:
        access.check_leader_joins_themself(principal, member_id, meeting)
        member = store.person("leader", org, member_id)
        if member is None:
            raise NotYetKnown("leader", member_id, service="scheduling", field="member_id")
    else:
        access.check_registers_themself(principal, member_id)
        member = store.person("member", org, member_id)
        if member is None or not access.can_register_for(principal, member):
            raise NotYetKnown("member", member_id, service="scheduling", field="member_id")
    if meeting["status"] != "active":
        raise Conflict("The meeting is cancelled.", field="meeting_id")
    if leader_seat:
        pass   # an organization's support group is for all its peer leaders, whatever their site
    elif not meeting["is_open"] and meeting.get("site_id") and member.get("site_id") != meeting["site_id"]:
        raise Forbidden("This closed meeting is for members of its site.", field="member_id")
    occurrence_end = None
    if occurrence_id:
        occ = find_occurrence(meeting, occurrence_id, include_cancelled=False)
        if occ.end <= now:
            raise Conflict("That occurrence is over.", field="occurrence_id")
        occurrence_end = occ.end
    store.lock(f"meeting:{meeting_id}")  # one registration decision at a time per meeting
    reg = store.registration_holding(org, meeting_id, member_id, occurrence_id)
    if reg is not None:
        raise Conflict(f"Member {member_id} already has registration {reg['_id']} ({reg['status']}).",
                       field="member_id", existing=reg["_id"])
    # The meeting's seat counts, not its registrations: the 5,000th registration reads what the 5th does.
    count = seat_count(store, meeting, now)
    status = model.decide_by_count(meeting["capacity"], count, occurrence_id)
    position = count.waiting_in(occurrence_id) + 1 if status == "waitlisted" else None
    count.add(occurrence_id, status, 1, occurrence_end)
    save_seat_count(store, meeting, count)
    doc = {"_id": registration_id, "organization_id": org, "meeting_id": meeting_id,
           "site_id": meeting.get("site_id"), "member_id": member_id, "occurrence_id": occurrence_id,
           "occurrence_end": occurrence_end, "status": status, "created_at": now, "updated_at": now,
           "registrant_kind": "leader" if leader_seat else "member"}
    store.insert_registration(doc)
    store.audit(principal, "create", "registration", registration_id, org, member_id=member_id,
                meeting_id=meeting_id, status=status, registrant_kind=doc["registrant_kind"])
    if leader_seat:
        return {**doc, "waitlist_position": position}
    uow.emit(RegistrationCreated, {"organization_id": org, "registration_id": registration_id,
                                   "meeting_id": meeting_id, "site_id": meeting.get("site_id"),
                                   "member_id": member_id, "occurrence_id": occurrence_id, "status": status,
                                   "waitlist_position": position})
    return {**doc, "waitlist_position": position}


def cancel_registration(uow: UnitOfWork, principal: Principal, meeting_id: str, registration_id: str) -> dict:
    org = principal.organization_id
    now = utcnow()
    store = Store.of(uow)
    meeting = load_meeting(store, principal, meeting_id)
    reg = store.registration(org, meeting_id, registration_id)
    if reg is None:
        raise NotFound(f"No registration {registration_id}.")
    leader_seat = reg.get("registrant_kind") == "leader"
    if leader_seat:   # a peer leader's own seat: the leader themself, the meeting's managers
        if not ((principal.role == "leader" and reg["member_id"] == principal.leader_id)
                or access.can_manage_meeting(principal, meeting)):
            raise NotFound(f"No registration {registration_id}.")
    else:
        member = store.person("member", org, reg["member_id"])
        if not (principal.is_admin or (member and access.can_register_for(principal, member))) or (
                principal.role == "member" and reg["member_id"] != principal.member_id):
            raise NotFound(f"No registration {registration_id}.")
    if reg["status"] == "cancelled":
        return reg
    store.lock(f"meeting:{meeting_id}")
    count = seat_count(store, meeting, now)   # read before the change (a count built now still holds this one)
    count.add(reg.get("occurrence_id"), reg["status"], -1)
    store.set_registration_status(registration_id, "cancelled")
    store.audit(principal, "update", "registration", registration_id, org, member_id=reg["member_id"],
                status="cancelled")
    if leader_seat:
        promote_waiting(uow, store, meeting, now, count)
        return {**reg, "status": "cancelled"}
    uow.emit(RegistrationCancelled, {"organization_id": org, "registration_id": registration_id,
                                     "meeting_id": meeting_id, "site_id": meeting.get("site_id"),
                                     "member_id": reg["member_id"], "occurrence_id": reg.get("occurrence_id")})
    promote_waiting(uow, store, meeting, now, count)
    return {**reg, "status": "cancelled"}


def list_registrations(reader: Store, principal: Principal, meeting_id: str, statuses) -> list[dict]:
    meeting = load_meeting(reader, principal, meeting_id)
    if not access.can_run_meeting(principal, meeting):
        raise Forbidden("Registrations are for the facilitators, the site's coordinators and admins.")
    regs = reader.registrations(principal.organization_id, meeting_id, statuses)
    reader.audit(principal, "read", "registrations", meeting_id, principal.organization_id,
                 member_ids=sorted({r["member_id"] for r in regs}))
    seats = model.seats_of(reader.registrations(principal.organization_id, meeting_id), utcnow())
    return [{**r, "waitlist_position": model.waitlist_position(seats, r["_id"])} for r in regs]
