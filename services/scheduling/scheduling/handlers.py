"""Scheduling use cases (one function each) and the handlers of the events it subscribes to.

A use case reads and writes through ``Store`` inside one transaction and emits the events the change
causes (they go to the outbox in the same transaction). Rules come from ``model``; errors are
``shared.errors`` domain errors that the app factory turns into problem+json.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.auth import Principal
from shared.events import intake, matching
from shared.messaging.envelope import Event
from shared.events.scheduling import (
    AttendanceRecorded,
    MeetingCancelled,
    MeetingCreated,
    MeetingUpdated,
    OccurrenceCancelled,
    OccurrenceMoved,
    RegistrationCancelled,
    RegistrationCreated,
    RegistrationPromoted,
    ReminderDue,
    SessionBooked,
    SessionCancelled,
    SessionRescheduled,
    SessionTimesSuggested,
)
from shared.mongo import utcnow
from shared.errors import Conflict, Forbidden, Invalid, NotFound, NotYetKnown
from shared.unit_of_work import UnitOfWork

from scheduling import feeds, model
from scheduling.config import Settings
from scheduling.model import Busy, Schedule, Seat
from scheduling.repository import Repository, Store

log = logging.getLogger(__name__)

MEETING_FIELDS = ("name", "description", "format", "types", "language", "capacity", "is_open", "is_public",
                  "attendance_mode", "conference_url", "conference_phone", "location_notes", "notes",
                  "facilitator_id", "co_facilitator_id", "rrule", "first_start_local", "duration_minutes")
SCHEDULE_FIELDS = {"rrule", "first_start_local", "duration_minutes", "facilitator_id", "co_facilitator_id"}
MAX_RANGE_DAYS = 366


# --- helpers --------------------------------------------------------------------------------------

def schedule_of(meeting: dict) -> Schedule:
    return Schedule(meeting["_id"], meeting["rrule"], datetime.fromisoformat(meeting["first_start_local"]),
                    meeting["time_zone"], meeting["duration_minutes"], meeting.get("exceptions") or {})


def occurrences(meeting: dict, start: datetime, end: datetime, *, include_cancelled: bool = False):
    return model.expand(schedule_of(meeting), start, end, include_cancelled=include_cancelled)


def check_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start, end = model.as_utc(start), model.as_utc(end)
    if end <= start:
        raise Invalid("'to' must be after 'from'.", field="to")
    if end - start > timedelta(days=MAX_RANGE_DAYS):
        raise Invalid(f"A range covers at most {MAX_RANGE_DAYS} days.", field="to")
    return start, end


def meeting_event_data(meeting: dict) -> dict:
    return {
        "organization_id": meeting["organization_id"], "meeting_id": meeting["_id"], "site_id": meeting.get("site_id"),
        "facilitator_id": meeting["facilitator_id"], "co_facilitator_id": meeting.get("co_facilitator_id"),
        "name": meeting["name"], "language": meeting["language"], "attendance_mode": meeting["attendance_mode"],
        "types": meeting.get("types") or [], "capacity": meeting["capacity"], "is_open": meeting["is_open"],
        "is_public": meeting["is_public"], "time_zone": meeting["time_zone"], "rrule": meeting["rrule"],
        "first_start_local": meeting["first_start_local"], "duration_minutes": meeting["duration_minutes"],
    }


def can_see_meeting(principal: Principal, meeting: dict) -> bool:
    if principal.is_admin or principal.role == "leader":
        return True
    if principal.role == "coordinator":
        return meeting.get("site_id") is None or principal.can_access_site(meeting.get("site_id"))
    return False


def can_manage_meeting(principal: Principal, meeting: dict) -> bool:
    """Admins, the site's coordinators, and (for occurrences and attendance) its facilitators."""
    if principal.is_admin:
        return True
    if principal.role == "coordinator":
        return meeting.get("site_id") is not None and principal.can_access_site(meeting["site_id"])
    return False


def is_facilitator(principal: Principal, meeting: dict) -> bool:
    return principal.role == "leader" and principal.leader_id in (meeting.get("leader_ids") or [])


def load_meeting(store: Store, principal: Principal, meeting_id: str) -> dict:
    meeting = store.meeting(principal.organization_id, meeting_id)
    if meeting is None or not can_see_meeting(principal, meeting):
        raise NotFound(f"No meeting {meeting_id}.")
    return meeting


def leader_busy(store: Store, org: str, leader_id: str, start: datetime, end: datetime, *,
                exclude_meeting: str | None = None, exclude_occurrence: str | None = None,
                exclude_session: str | None = None) -> list[Busy]:
    busy: list[Busy] = []
    meetings, _ = store.meetings(org, leader_id=leader_id)
    for meeting in meetings:
        if meeting["_id"] == exclude_meeting:
            continue
        for occ in occurrences(meeting, start, end):
            if occ.occurrence_id != exclude_occurrence:
                busy.append(Busy(occ.start, occ.end, "meeting", meeting["_id"], meeting["name"], occ.occurrence_id))
    for session in store.booked_sessions(org, person_field="leader_id", person_id=leader_id, start=start, end=end):
        if session["_id"] != exclude_session:
            busy.append(Busy(session["start"], session["end"], "session", session["_id"], "one-on-one session"))
    return busy


def member_busy(store: Store, org: str, member_id: str, start: datetime, end: datetime, *,
                exclude_session: str | None = None) -> list[Busy]:
    return [Busy(s["start"], s["end"], "session", s["_id"], "one-on-one session")
            for s in store.booked_sessions(org, person_field="member_id", person_id=member_id, start=start, end=end)
            if s["_id"] != exclude_session]


def refuse_leader_clash(store: Store, org: str, leader_id: str, wanted: list[tuple[datetime, datetime]],
                        tz_name: str, **exclude) -> None:
    if not wanted:
        return
    start, end = min(w[0] for w in wanted), max(w[1] for w in wanted)
    clash = model.find_clash(wanted, leader_busy(store, org, leader_id, start, end, **exclude))
    if clash:
        item = clash[1]
        raise Conflict(model.clash_message(f"Leader {leader_id}", clash, tz_name), field="facilitator_id",
                       clash={"kind": item.kind, "id": item.ref_id, "name": item.name,
                              "occurrence_id": item.occurrence_id, "start": item.start.isoformat(),
                              "end": item.end.isoformat()})


def active_leader(store: Store, org: str, leader_id: str, field_name: str) -> dict:
    leader = store.person("leader", org, leader_id)
    if leader is None:
        raise NotYetKnown("leader", leader_id, service="scheduling", field=field_name)
    if leader.get("status", "active") != "active":
        raise Invalid(f"Leader {leader_id} is {leader['status']} and cannot facilitate.", field=field_name)
    return leader


def seats_of(registrations: list[dict], now: datetime) -> list[Seat]:
    """Capacity looks at series registrations and at registrations for occurrences still to come."""
    return [Seat(r["_id"], r.get("occurrence_id"), r["status"], (r["created_at"], r["_id"]))
            for r in registrations
            if r.get("occurrence_id") is None or model.as_utc(r["occurrence_end"]) > now]


def registrant_ids(registrations: list[dict], occurrence_id: str | None = None) -> list[str]:
    """Members who hold or wait for a seat at the whole series or (given) at that occurrence."""
    ids = [r["member_id"] for r in registrations
           if r.get("occurrence_id") is None or (occurrence_id is not None and r.get("occurrence_id") == occurrence_id)]
    return sorted(set(ids))


def promote_waiting(uow: UnitOfWork, store: Store, meeting: dict, now: datetime) -> list[str]:
    regs = store.registrations(meeting["organization_id"], meeting["_id"])
    promoted = model.promotions(meeting["capacity"], seats_of(regs, now))
    by_id = {r["_id"]: r for r in regs}
    for rid in promoted:
        store.set_registration_status(rid, "registered")
        reg = by_id[rid]
        uow.emit(RegistrationPromoted, {
            "organization_id": meeting["organization_id"], "registration_id": rid, "meeting_id": meeting["_id"],
            "site_id": meeting.get("site_id"), "member_id": reg["member_id"],
            "occurrence_id": reg.get("occurrence_id")})
    return promoted


def find_occurrence(meeting: dict, occurrence_id: str, *, include_cancelled: bool = True) -> model.Occurrence:
    meeting_id, original = model.parse_occurrence_id(occurrence_id)
    schedule = schedule_of(meeting)
    if meeting_id != meeting["_id"] or not model.is_rule_occurrence(schedule, original):
        raise NotFound(f"Meeting {meeting['_id']} has no occurrence {occurrence_id}.")
    exception = schedule.exceptions.get(model.exception_key(original))
    duration = timedelta(minutes=schedule.duration_minutes)
    occ = model.apply_exception(model.Occurrence(occurrence_id, meeting["_id"], original, original,
                                                 original + duration, schedule.time_zone), exception)
    if occ.status == "cancelled" and not include_cancelled:
        raise Conflict(f"Occurrence {occurrence_id} is cancelled.", field="occurrence_id")
    return occ


def to_instant(value: datetime, tz_name: str) -> datetime:
    """A datetime from a request: with an offset it is an instant; without, local to ``tz_name``."""
    return model.to_utc(value, tz_name) if value.tzinfo is None else model.as_utc(value)


# --- meetings -------------------------------------------------------------------------------------

def _validate_meeting(store: Store, org: str, meeting: dict, settings: Settings, now: datetime) -> None:
    """Whole-meeting rules (on create and after an update); fills time_zone and leader_ids."""
    site = store.site(org, meeting.get("site_id"))
    if meeting.get("site_id") and site is None:
        raise NotYetKnown("site", meeting["site_id"], service="scheduling", field="site_id")
    if site is not None:
        meeting["time_zone"] = site["time_zone"]
    if not meeting.get("time_zone"):
        raise Invalid("A meeting without a site needs a time_zone.", field="time_zone")
    model.zone(meeting["time_zone"])
    mode = meeting["attendance_mode"]
    if mode in ("in_person", "hybrid") and site is None:
        raise Invalid("An in-person or hybrid meeting needs a site.", field="site_id")
    if mode in ("in_person", "hybrid") and site is not None and site.get("virtual_only"):
        raise Invalid(f"Site {site['site_id']} is virtual only.", field="attendance_mode")
    if mode in ("online", "hybrid") and not (meeting.get("conference_url") or meeting.get("conference_phone")):
        raise Invalid("An online or hybrid meeting needs a conference_url or conference_phone.",
                      field="conference_url")
    try:
        first = datetime.fromisoformat(meeting["first_start_local"])
    except (TypeError, ValueError):
        raise Invalid("Give the first start as a local date-time, e.g. 2026-03-03T19:00.",
                      field="first_start_local") from None
    if first.tzinfo is not None:
        raise Invalid("first_start_local is a local wall time: leave out the offset.", field="first_start_local")
    meeting["first_start_local"] = first.isoformat(timespec="minutes")
    meeting["rrule"] = model.normalize_rrule(meeting["rrule"])
    model.validate_rule(meeting["rrule"], first)
    active_leader(store, org, meeting["facilitator_id"], "facilitator_id")
    if meeting.get("co_facilitator_id"):
        if meeting["co_facilitator_id"] == meeting["facilitator_id"]:
            raise Invalid("The co-facilitator must be someone else.", field="co_facilitator_id")
        active_leader(store, org, meeting["co_facilitator_id"], "co_facilitator_id")
    meeting["leader_ids"] = [lid for lid in (meeting["facilitator_id"], meeting.get("co_facilitator_id")) if lid]
    if meeting.get("types"):
        meeting["types"] = list(dict.fromkeys(meeting["types"]))


def _refuse_meeting_clashes(store: Store, org: str, meeting: dict, settings: Settings, now: datetime) -> None:
    start = max(now, model.to_utc(datetime.fromisoformat(meeting["first_start_local"]), meeting["time_zone"]))
    end = start + timedelta(days=settings.conflict_horizon_days)
    wanted = [(o.start, o.end) for o in occurrences(meeting, start, end)]
    for leader_id in meeting["leader_ids"]:
        store.lock(f"leader:{org}:{leader_id}")
        refuse_leader_clash(store, org, leader_id, wanted, meeting["time_zone"], exclude_meeting=meeting["_id"])


def create_meeting(repo: Repository, settings: Settings, principal: Principal, body: dict) -> dict:
    org = principal.organization_id
    if principal.role not in ("admin", "service", "coordinator"):
        raise Forbidden("Only admins and coordinators create meetings.")
    if principal.role == "coordinator" and not principal.can_access_site(body.get("site_id")):
        raise Forbidden("Coordinators create meetings at their own sites.", field="site_id")
    now = utcnow()
    meeting_id = uuid.uuid4().hex

    def work(uow: UnitOfWork) -> dict:
        store = Store.of(uow)
        meeting = {**{k: body.get(k) for k in MEETING_FIELDS}, "_id": meeting_id, "organization_id": org,
                   "site_id": body.get("site_id"), "time_zone": body.get("time_zone"), "status": "active",
                   "exceptions": {}, "version": 1, "created_at": now, "updated_at": now,
                   "slug": model.slugify(body["name"], meeting_id[:8])}
        _validate_meeting(store, org, meeting, settings, now)
        _refuse_meeting_clashes(store, org, meeting, settings, now)
        store.insert_meeting(meeting)
        uow.emit(MeetingCreated, meeting_event_data(meeting))
        return meeting

    return repo.transaction(work)


def update_meeting(repo: Repository, settings: Settings, principal: Principal, meeting_id: str, body: dict,
                   check_etag) -> dict:
    org = principal.organization_id
    now = utcnow()

    def work(uow: UnitOfWork) -> dict:
        store = Store.of(uow)
        meeting = load_meeting(store, principal, meeting_id)
        if not can_manage_meeting(principal, meeting):
            raise Forbidden("Only admins and the site's coordinators change meetings.")
        check_etag(meeting)
        if meeting["status"] != "active":
            raise Conflict("A cancelled meeting cannot be changed.", field="status")
        changed = {k: v for k, v in body.items() if k in MEETING_FIELDS}
        updated = {**meeting, **changed}
        _validate_meeting(store, org, updated, settings, now)
        if SCHEDULE_FIELDS & changed.keys():
            _refuse_meeting_clashes(store, org, updated, settings, now)
        fields = {k: updated[k] for k in (*MEETING_FIELDS, "leader_ids", "rrule", "first_start_local", "time_zone")}
        store.update_meeting(org, meeting_id, fields)
        store.lock(f"meeting:{meeting_id}")
        meeting = store.meeting(org, meeting_id)
        if "capacity" in changed:
            promote_waiting(uow, store, meeting, now)
        regs = store.registrations(org, meeting_id)
        uow.emit(MeetingUpdated, {**meeting_event_data(meeting), "registrant_ids": registrant_ids(regs)})
        return meeting

    return repo.transaction(work)


def cancel_meeting(repo: Repository, principal: Principal, meeting_id: str, reason: str | None) -> dict:
    org = principal.organization_id

    def work(uow: UnitOfWork) -> dict:
        store = Store.of(uow)
        meeting = load_meeting(store, principal, meeting_id)
        if not can_manage_meeting(principal, meeting):
            raise Forbidden("Only admins and the site's coordinators cancel meetings.")
        if meeting["status"] == "cancelled":
            return meeting
        store.update_meeting(org, meeting_id, {"status": "cancelled", "cancel_reason": reason})
        regs = store.registrations(org, meeting_id)
        uow.emit(MeetingCancelled, {"organization_id": org, "meeting_id": meeting_id, "site_id": meeting.get("site_id"),
                                    "name": meeting["name"], "reason": reason,
                                    "registrant_ids": sorted({r["member_id"] for r in regs})})
        return store.meeting(org, meeting_id)

    return repo.transaction(work)


def list_meetings(repo: Repository, principal: Principal, *, site_id=None, leader_id=None, status="active",
                  skip=0, limit=50) -> tuple[list[dict], int]:
    site_ids = None
    if principal.role == "coordinator":
        site_ids = principal.site_filter()
    return repo.reader().meetings(principal.organization_id, site_ids=site_ids, site_id=site_id,
                                  leader_id=leader_id, status=status, skip=skip, limit=limit)


def get_meeting(repo: Repository, principal: Principal, meeting_id: str) -> dict:
    return load_meeting(repo.reader(), principal, meeting_id)


# --- occurrences ----------------------------------------------------------------------------------

def occurrence_view(meeting: dict, occ: model.Occurrence, regs: list[dict]) -> dict:
    registered = [r for r in regs if r["status"] == "registered"
                  and (r.get("occurrence_id") is None or r.get("occurrence_id") == occ.occurrence_id)]
    waiting = [r for r in regs if r["status"] == "waitlisted"
               and (r.get("occurrence_id") is None or r.get("occurrence_id") == occ.occurrence_id)]
    return {"occurrence_id": occ.occurrence_id, "meeting_id": meeting["_id"], "name": meeting["name"],
            "site_id": meeting.get("site_id"), "start": occ.start, "end": occ.end,
            "original_start": occ.original_start, "local_start": occ.local_start.isoformat(timespec="minutes"),
            "local_end": occ.local_end.isoformat(timespec="minutes"), "time_zone": occ.time_zone,
            "status": occ.status, "reason": occ.reason, "registered_count": len(registered),
            "waitlisted_count": len(waiting),
            "seats_left": max(0, meeting["capacity"] - len(registered))}


def list_occurrences(repo: Repository, principal: Principal, start: datetime, end: datetime, *,
                     meeting_id: str | None = None, site_id: str | None = None,
                     include_cancelled: bool = False) -> list[dict]:
    start, end = check_range(start, end)
    store = repo.reader()
    if meeting_id:
        meetings = [load_meeting(store, principal, meeting_id)]
    else:
        meetings, _ = list_meetings(repo, principal, site_id=site_id, limit=0)
    result = []
    for meeting in meetings:
        if meeting["status"] != "active":
            continue
        regs = store.registrations(principal.organization_id, meeting["_id"])
        result += [occurrence_view(meeting, o, regs)
                   for o in occurrences(meeting, start, end, include_cancelled=include_cancelled)]
    return sorted(result, key=lambda o: (o["start"], o["occurrence_id"]))


def _manageable_occurrence(store: Store, principal: Principal, meeting_id: str) -> dict:
    meeting = load_meeting(store, principal, meeting_id)
    if not (can_manage_meeting(principal, meeting) or is_facilitator(principal, meeting)):
        raise Forbidden("Only the facilitators, the site's coordinators and admins change occurrences.")
    if meeting["status"] != "active":
        raise Conflict("The meeting is cancelled.", field="meeting_id")
    return meeting


def cancel_occurrence(repo: Repository, principal: Principal, meeting_id: str, occurrence_id: str,
                      reason: str | None) -> dict:
    org = principal.organization_id

    def work(uow: UnitOfWork) -> dict:
        store = Store.of(uow)
        meeting = _manageable_occurrence(store, principal, meeting_id)
        occ = find_occurrence(meeting, occurrence_id)
        if occ.status == "cancelled":
            return occurrence_view(meeting, occ, [])
        if occ.end <= utcnow():
            raise Conflict("That occurrence is over.", field="occurrence_id")
        store.set_exception(org, meeting_id, model.exception_key(occ.original_start),
                            {"status": "cancelled", "reason": reason, "at": utcnow()})
        regs = store.registrations(org, meeting_id)
        uow.emit(OccurrenceCancelled, {
            "organization_id": org, "meeting_id": meeting_id, "site_id": meeting.get("site_id"),
            "occurrence_id": occurrence_id, "name": meeting["name"], "time_zone": meeting["time_zone"],
            "original_start": occ.original_start, "registrant_ids": registrant_ids(regs, occurrence_id),
            "reason": reason})
        return occurrence_view(meeting, replace(occ, status="cancelled", reason=reason), regs)

    return repo.transaction(work)


def move_occurrence(repo: Repository, principal: Principal, meeting_id: str, occurrence_id: str,
                    new_start: datetime, new_end: datetime | None, reason: str | None) -> dict:
    org = principal.organization_id

    def work(uow: UnitOfWork) -> dict:
        store = Store.of(uow)
        meeting = _manageable_occurrence(store, principal, meeting_id)
        occ = find_occurrence(meeting, occurrence_id, include_cancelled=False)
        start = to_instant(new_start, meeting["time_zone"])
        end = to_instant(new_end, meeting["time_zone"]) if new_end else start + timedelta(
            minutes=meeting["duration_minutes"])
        if end <= start:
            raise Invalid("The end must be after the start.", field="end")
        if start <= utcnow():
            raise Invalid("An occurrence can only move to a time still to come.", field="start")
        for leader_id in meeting["leader_ids"]:
            store.lock(f"leader:{org}:{leader_id}")
            refuse_leader_clash(store, org, leader_id, [(start, end)], meeting["time_zone"],
                                exclude_occurrence=occurrence_id)
        store.set_exception(org, meeting_id, model.exception_key(occ.original_start),
                            {"status": "moved", "start": start, "end": end, "reason": reason, "at": utcnow()})
        regs = store.registrations(org, meeting_id)
        uow.emit(OccurrenceMoved, {
            "organization_id": org, "meeting_id": meeting_id, "site_id": meeting.get("site_id"),
            "occurrence_id": occurrence_id, "name": meeting["name"], "time_zone": meeting["time_zone"],
            "original_start": occ.original_start, "registrant_ids": registrant_ids(regs, occurrence_id),
            "new_start": start, "new_end": end})
        return occurrence_view(meeting, replace(occ, status="moved", start=start, end=end, reason=reason), regs)

    return repo.transaction(work)


# --- registrations --------------------------------------------------------------------------------

def _can_register_for(principal: Principal, member: dict) -> bool:
    return principal.is_admin or (principal.role == "coordinator" and principal.can_access_site(member.get("site_id")))


def register(repo: Repository, principal: Principal, meeting_id: str, member_id: str,
             occurrence_id: str | None) -> dict:
    org = principal.organization_id
    now = utcnow()
    registration_id = uuid.uuid4().hex

    def work(uow: UnitOfWork) -> dict:
        store = Store.of(uow)
        meeting = load_meeting(store, principal, meeting_id)
        member = store.person("member", org, member_id)
        if member is None or not _can_register_for(principal, member):
            raise NotYetKnown("member", member_id, service="scheduling", field="member_id")
        if meeting["status"] != "active":
            raise Conflict("The meeting is cancelled.", field="meeting_id")
        if not meeting["is_open"] and meeting.get("site_id") and member.get("site_id") != meeting["site_id"]:
            raise Forbidden("This closed meeting is for members of its site.", field="member_id")
        occurrence_end = None
        if occurrence_id:
            occ = find_occurrence(meeting, occurrence_id, include_cancelled=False)
            if occ.end <= now:
                raise Conflict("That occurrence is over.", field="occurrence_id")
            occurrence_end = occ.end
        store.lock(f"meeting:{meeting_id}")  # one registration decision at a time per meeting
        regs = store.registrations(org, meeting_id)
        for reg in regs:
            if reg["member_id"] == member_id and reg.get("occurrence_id") in (None, occurrence_id):
                raise Conflict(f"Member {member_id} already has registration {reg['_id']} ({reg['status']}).",
                               field="member_id", existing=reg["_id"])
        seats = seats_of(regs, now)
        status = model.decide_registration(meeting["capacity"], seats, occurrence_id)
        doc = {"_id": registration_id, "organization_id": org, "meeting_id": meeting_id,
               "site_id": meeting.get("site_id"), "member_id": member_id, "occurrence_id": occurrence_id,
               "occurrence_end": occurrence_end, "status": status, "created_at": now, "updated_at": now}
        store.insert_registration(doc)
        store.audit(principal, "create", "registration", registration_id, org, member_id=member_id,
                    meeting_id=meeting_id, status=status)
        position = model.waitlist_position(seats + [Seat(registration_id, occurrence_id, status, (now, registration_id))],
                                           registration_id)
        uow.emit(RegistrationCreated, {"organization_id": org, "registration_id": registration_id,
                                       "meeting_id": meeting_id, "site_id": meeting.get("site_id"),
                                       "member_id": member_id, "occurrence_id": occurrence_id, "status": status,
                                       "waitlist_position": position})
        return {**doc, "waitlist_position": position}

    return repo.transaction(work)


def cancel_registration(repo: Repository, principal: Principal, meeting_id: str, registration_id: str) -> dict:
    org = principal.organization_id
    now = utcnow()

    def work(uow: UnitOfWork) -> dict:
        store = Store.of(uow)
        meeting = load_meeting(store, principal, meeting_id)
        reg = store.registration(org, meeting_id, registration_id)
        if reg is None:
            raise NotFound(f"No registration {registration_id}.")
        member = store.person("member", org, reg["member_id"])
        if not (principal.is_admin or (member and _can_register_for(principal, member))):
            raise NotFound(f"No registration {registration_id}.")
        if reg["status"] == "cancelled":
            return reg
        store.lock(f"meeting:{meeting_id}")
        store.set_registration_status(registration_id, "cancelled")
        store.audit(principal, "update", "registration", registration_id, org, member_id=reg["member_id"],
                    status="cancelled")
        uow.emit(RegistrationCancelled, {"organization_id": org, "registration_id": registration_id,
                                         "meeting_id": meeting_id, "site_id": meeting.get("site_id"),
                                         "member_id": reg["member_id"], "occurrence_id": reg.get("occurrence_id")})
        promote_waiting(uow, store, meeting, now)
        return {**reg, "status": "cancelled"}

    return repo.transaction(work)


def list_registrations(repo: Repository, principal: Principal, meeting_id: str, statuses) -> list[dict]:
    store = repo.reader()
    meeting = load_meeting(store, principal, meeting_id)
    if not (can_manage_meeting(principal, meeting) or is_facilitator(principal, meeting)):
        raise Forbidden("Registrations are for the facilitators, the site's coordinators and admins.")
    regs = store.registrations(principal.organization_id, meeting_id, statuses)
    store.audit(principal, "read", "registrations", meeting_id, principal.organization_id,
                member_ids=sorted({r["member_id"] for r in regs}))
    seats = seats_of(store.registrations(principal.organization_id, meeting_id), utcnow())
    return [{**r, "waitlist_position": model.waitlist_position(seats, r["_id"])} for r in regs]


# --- attendance -----------------------------------------------------------------------------------

def record_attendance(repo: Repository, principal: Principal, meeting_id: str, occurrence_id: str,
                      present: list[str], absent: list[str]) -> dict:
    org = principal.organization_id
    overlap = set(present) & set(absent)
    if overlap:
        raise Invalid(f"Someone cannot be both present and absent: {', '.join(sorted(overlap))}.",
                      field="absent_member_ids")

    def work(uow: UnitOfWork) -> dict:
        store = Store.of(uow)
        meeting = load_meeting(store, principal, meeting_id)
        if not (is_facilitator(principal, meeting) or can_manage_meeting(principal, meeting)):
            raise Forbidden("Attendance is recorded by the meeting's facilitators (or its coordinators).")
        occ = find_occurrence(meeting, occurrence_id, include_cancelled=False)
        if occ.start > utcnow() + timedelta(minutes=30):
            raise Invalid("Attendance is recorded once the occurrence has begun.", field="occurrence_id")
        doc = {"meeting_id": meeting_id, "present_member_ids": sorted(set(present)),
               "absent_member_ids": sorted(set(absent)), "recorded_by": principal.subject, "recorded_at": utcnow()}
        store.save_attendance(org, occurrence_id, doc)
        store.audit(principal, "update", "attendance", occurrence_id, org, meeting_id=meeting_id,
                    member_ids=sorted(set(present) | set(absent)))
        uow.emit(AttendanceRecorded, {"organization_id": org, "meeting_id": meeting_id,
                                      "site_id": meeting.get("site_id"), "occurrence_id": occurrence_id,
                                      "present_member_ids": doc["present_member_ids"],
                                      "absent_member_ids": doc["absent_member_ids"]})
        return {**doc, "occurrence_id": occurrence_id}

    return repo.transaction(work)


def get_attendance(repo: Repository, principal: Principal, meeting_id: str, occurrence_id: str) -> dict:
    store = repo.reader()
    meeting = load_meeting(store, principal, meeting_id)
    if not (is_facilitator(principal, meeting) or can_manage_meeting(principal, meeting)):
        raise Forbidden("Attendance is for the meeting's facilitators and coordinators.")
    doc = store.attendance(principal.organization_id, occurrence_id)
    if doc is None:
        raise NotFound(f"No attendance recorded for {occurrence_id}.")
    store.audit(principal, "read", "attendance", occurrence_id, principal.organization_id, meeting_id=meeting_id)
    return doc


# --- one-on-one sessions --------------------------------------------------------------------------

def display_zone(store: Store, org: str, site_id: str | None, member: dict | None) -> str:
    site = store.site(org, site_id)
    if site:
        return site["time_zone"]
    if member and member.get("time_zone"):
        return member["time_zone"]
    return "UTC"


def compute_suggestions(store: Store, settings: Settings, org: str, match: dict, now: datetime
                        ) -> tuple[str, list[tuple[datetime, datetime]]] | None:
    """Times inside both people's weekly availability, free of their bookings; None when one of the
    two is not known yet (their profile event has not arrived)."""
    member = store.person("member", org, match["member_id"])
    leader = store.person("leader", org, match["leader_id"])
    if member is None or leader is None:
        return None
    tz_name = display_zone(store, org, match.get("site_id"), member)
    earliest = now + timedelta(hours=settings.suggestion_lead_hours)
    horizon = now + timedelta(days=settings.suggestion_horizon_days)
    member_free = _free_time(member, earliest, horizon)
    leader_free = _free_time(leader, earliest, horizon)
    busy = leader_busy(store, org, match["leader_id"], earliest, horizon) + member_busy(
        store, org, match["member_id"], earliest, horizon)
    free = model.subtract(model.intersect(member_free, leader_free), [(b.start, b.end) for b in busy])
    slots = model.suggest_slots(free, duration=timedelta(minutes=settings.session_minutes),
                                count=settings.suggestion_count, earliest=earliest, tz_name=tz_name)
    return tz_name, slots


def _free_time(person: dict, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """A person's weekly availability as instants; a profile we cannot read gives no time (logged),
    rather than failing the event that asked (which would end in the dead-letter topic)."""
    try:
        return model.weekly_to_intervals(person.get("availability") or [], person.get("time_zone") or "UTC", start, end)
    except model.Invalid as exc:
        log.warning("unreadable availability", extra={"error": exc.message})
        return []


def _emit_suggestions(uow: UnitOfWork, store: Store, settings: Settings, org: str, match: dict) -> bool:
    computed = compute_suggestions(store, settings, org, match, utcnow())
    if computed is None:
        return False
    tz_name, slots = computed
    tz = model.zone(tz_name)
    shown = [{"start": s.astimezone(tz), "end": e.astimezone(tz)} for s, e in slots]
    store.save_suggestions(org, match["match_id"], {"member_id": match["member_id"], "leader_id": match["leader_id"],
                                                    "time_zone": tz_name, "suggestions": [{"start": s, "end": e} for s, e in slots],
                                                    "computed_at": utcnow()})
    store.save_match(org, match["match_id"], {"suggested": True})
    uow.emit(SessionTimesSuggested, {"organization_id": org, "match_id": match["match_id"],
                                     "member_id": match["member_id"], "leader_id": match["leader_id"],
                                     "site_id": match.get("site_id"), "time_zone": tz_name, "suggestions": shown})
    return True


def current_suggestions(repo: Repository, settings: Settings, principal: Principal, match_id: str) -> dict:
    store = repo.reader()
    match = _load_match(store, principal, match_id)
    computed = compute_suggestions(store, settings, principal.organization_id, match, utcnow())
    if computed is None:
        raise Conflict("The member's or leader's availability is not known to scheduling yet.", field="match_id")
    tz_name, slots = computed
    tz = model.zone(tz_name)
    return {"match_id": match_id, "member_id": match["member_id"], "leader_id": match["leader_id"],
            "time_zone": tz_name, "suggestions": [{"start": s.astimezone(tz), "end": e.astimezone(tz)} for s, e in slots]}


def _load_match(store: Store, principal: Principal, match_id: str) -> dict:
    match = store.match(principal.organization_id, match_id)
    if match is None:
        raise NotFound(f"No match {match_id}.")
    if principal.role == "leader" and match["leader_id"] != principal.leader_id:
        raise NotFound(f"No match {match_id}.")
    if principal.role == "coordinator" and not principal.can_access_site(match.get("site_id")):
        raise NotFound(f"No match {match_id}.")
    return match


def _acting_role(principal: Principal, on_behalf_of: str | None) -> str:
    if principal.role == "leader":
        return "leader"
    return "member" if on_behalf_of == "member" else principal.role


def _refuse_double_booking(store: Store, org: str, session: dict, tz_name: str, exclude: str | None) -> None:
    wanted = [(session["start"], session["end"])]
    store.lock(f"leader:{org}:{session['leader_id']}")
    store.lock(f"member:{org}:{session['member_id']}")
    refuse_leader_clash(store, org, session["leader_id"], wanted, tz_name, exclude_session=exclude)
    clash = model.find_clash(wanted, member_busy(store, org, session["member_id"], session["start"], session["end"],
                                                 exclude_session=exclude))
    if clash:
        raise Conflict(model.clash_message(f"Member {session['member_id']}", clash, tz_name), field="start",
                       clash={"kind": "session", "id": clash[1].ref_id, "name": clash[1].name})


def _session_times(start: datetime, end: datetime | None, tz_name: str, settings: Settings) -> tuple[datetime, datetime]:
    s = to_instant(start, tz_name)
    e = to_instant(end, tz_name) if end else s + timedelta(minutes=settings.session_minutes)
    if e <= s:
        raise Invalid("The end must be after the start.", field="end")
    if e - s > timedelta(hours=4):
        raise Invalid("A session lasts at most 4 hours.", field="end")
    if s <= utcnow():
        raise Invalid("A session is booked for a time still to come.", field="start")
    return s, e


def _outside_availability(store: Store, org: str, member_id: str, leader_id: str, start: datetime,
                          end: datetime, allowed: bool) -> bool:
    """Whether the session lies outside the member's or the leader's weekly availability (each in their
    own zone). Outside is refused (422 naming ``outside_availability``) unless the body says
    ``outside_availability: true``; a person whose profile has not arrived yet counts as outside."""
    reasons = []
    for kind, person_id in (("member", member_id), ("leader", leader_id)):
        person = store.person(kind, org, person_id)
        if person is None:
            reasons.append(f"The {kind} {person_id}'s availability is not known to scheduling yet.")
            continue
        windows, tz_name = person.get("availability") or [], person.get("time_zone") or "UTC"
        try:
            inside = model.within_availability(windows, tz_name, start, end)
        except model.Invalid:
            inside = False  # an availability we cannot read covers nothing
        if not inside:
            reasons.append(model.outside_availability_message(f"The {kind} {person_id}", windows, tz_name, start, end))
    if reasons and not allowed:
        raise Invalid("This time is outside availability. " + " ".join(reasons)
                      + " Send outside_availability: true to book it anyway.", field="outside_availability")
    return bool(reasons)


def book_session(repo: Repository, settings: Settings, principal: Principal, body: dict) -> dict:
    org = principal.organization_id
    session_id = uuid.uuid4().hex

    def work(uow: UnitOfWork) -> dict:
        store = Store.of(uow)
        match = _load_match(store, principal, body["match_id"])
        if match.get("status") != "active":
            raise Conflict(f"Match {match['match_id']} is not active.", field="match_id")
        member = store.person("member", org, match["member_id"])
        tz_name = display_zone(store, org, match.get("site_id"), member)
        start, end = _session_times(body["start"], body.get("end"), tz_name, settings)
        now = utcnow()
        doc = {"_id": session_id, "organization_id": org, "match_id": match["match_id"],
               "member_id": match["member_id"], "leader_id": match["leader_id"], "site_id": match.get("site_id"),
               "start": start, "end": end, "time_zone": tz_name, "status": "booked",
               "booked_by_role": _acting_role(principal, body.get("on_behalf_of")), "version": 1,
               "created_at": now, "updated_at": now}
        _refuse_double_booking(store, org, doc, tz_name, None)
        doc["outside_availability"] = _outside_availability(store, org, doc["member_id"], doc["leader_id"], start,
                                                            end, body.get("outside_availability", False))
        store.insert_session(doc)
        store.audit(principal, "create", "session", session_id, org, member_id=doc["member_id"])
        uow.emit(SessionBooked, {k: doc[k] for k in ("organization_id", "match_id", "member_id", "leader_id",
                                                      "site_id", "start", "end", "time_zone", "booked_by_role")}
                 | {"session_id": session_id})
        return doc

    return repo.transaction(work)


def _load_session(store: Store, principal: Principal, session_id: str) -> dict:
    doc = store.session_doc(principal.organization_id, session_id)
    if doc is None or (principal.role == "leader" and doc["leader_id"] != principal.leader_id) or (
            principal.role == "coordinator" and not principal.can_access_site(doc.get("site_id"))):
        raise NotFound(f"No session {session_id}.")
    return doc


def get_session(repo: Repository, principal: Principal, session_id: str) -> dict:
    return _load_session(repo.reader(), principal, session_id)


def list_sessions(repo: Repository, principal: Principal, filters: dict, skip: int, limit: int):
    query: dict[str, Any] = {k: filters[k] for k in ("member_id", "leader_id", "match_id", "status") if filters.get(k)}
    if principal.role == "leader":
        query["leader_id"] = principal.leader_id
    if principal.role == "coordinator":
        query["site_id"] = {"$in": principal.site_filter()}
    if filters.get("from"):
        query["end"] = {"$gt": model.as_utc(filters["from"])}
    if filters.get("to"):
        query["start"] = {"$lt": model.as_utc(filters["to"])}
    return repo.reader().sessions(principal.organization_id, query, skip=skip, limit=limit)


def reschedule_session(repo: Repository, settings: Settings, principal: Principal, session_id: str,
                       body: dict) -> dict:
    org = principal.organization_id

    def work(uow: UnitOfWork) -> dict:
        store = Store.of(uow)
        doc = _load_session(store, principal, session_id)
        if doc["status"] != "booked":
            raise Conflict(f"Session {session_id} is {doc['status']}.", field="status")
        start, end = _session_times(body["start"], body.get("end"), doc["time_zone"], settings)
        previous = doc["start"]
        doc = {**doc, "start": start, "end": end}
        _refuse_double_booking(store, org, doc, doc["time_zone"], session_id)
        outside = _outside_availability(store, org, doc["member_id"], doc["leader_id"], start, end,
                                        body.get("outside_availability", False))
        store.update_session(session_id, {"start": start, "end": end, "previous_start": previous,
                                          "outside_availability": outside})
        store.audit(principal, "update", "session", session_id, org, member_id=doc["member_id"], fields=["start", "end"])
        uow.emit(SessionRescheduled, {
            "organization_id": org, "session_id": session_id, "match_id": doc["match_id"],
            "member_id": doc["member_id"], "leader_id": doc["leader_id"], "site_id": doc.get("site_id"),
            "start": start, "end": end, "previous_start": previous, "time_zone": doc["time_zone"],
            "rescheduled_by_role": _acting_role(principal, body.get("on_behalf_of"))})
        return store.session_doc(org, session_id)

    return repo.transaction(work)


def _cancel_session(uow: UnitOfWork, store: Store, doc: dict, role: str, reason: str | None) -> None:
    store.update_session(doc["_id"], {"status": "cancelled", "cancelled_by_role": role, "cancel_reason": reason})
    uow.emit(SessionCancelled, {"organization_id": doc["organization_id"], "session_id": doc["_id"],
                                "match_id": doc["match_id"], "member_id": doc["member_id"],
                                "leader_id": doc["leader_id"], "site_id": doc.get("site_id"), "start": doc["start"],
                                "cancelled_by_role": role, "reason": reason})


def cancel_session(repo: Repository, principal: Principal, session_id: str, body: dict) -> dict:
    def work(uow: UnitOfWork) -> dict:
        store = Store.of(uow)
        doc = _load_session(store, principal, session_id)
        if doc["status"] == "cancelled":
            return doc
        _cancel_session(uow, store, doc, _acting_role(principal, body.get("on_behalf_of")), body.get("reason"))
        store.audit(principal, "update", "session", session_id, principal.organization_id,
                    member_id=doc["member_id"], status="cancelled")
        return store.session_doc(principal.organization_id, session_id)

    return repo.transaction(work)


# --- personal feed tokens -------------------------------------------------------------------------

def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_feed_token(repo: Repository, principal: Principal, person_kind: str, person_id: str) -> str:
    """A new secret for a person's private calendar feed (the previous one stops working)."""
    org = principal.organization_id
    token = secrets.token_urlsafe(32)

    def work(uow: UnitOfWork) -> None:
        store = Store.of(uow)
        person = store.person(person_kind, org, person_id)
        allowed = person is not None and (
            principal.is_admin
            or (principal.role == "leader" and person_kind == "leader" and person_id == principal.leader_id)
            or (principal.role == "coordinator" and (
                principal.can_access_site(person.get("site_id")) if person_kind == "member"
                else any(principal.can_access_site(s) for s in person.get("site_ids") or []))))
        if not allowed:
            raise NotFound(f"No {person_kind} {person_id}.")
        store.save_person(person_kind, org, person_id, {"feed_token_hash": hash_token(token)})

    repo.transaction(work)
    return token


# --- subscribed events ----------------------------------------------------------------------------

def on_site_changed(settings: Settings):
    def handle(evt: Event, uow: UnitOfWork) -> None:
        d, org = evt.data, evt.organization_id
        store = Store.of(uow)
        before = store.site(org, d["site_id"])
        store.save_site(org, d["site_id"], {"name": d["name"], "time_zone": d["time_zone"],
                                            "virtual_only": d["virtual_only"], "location": d.get("location")})
        if before is not None and before.get("time_zone") != d["time_zone"]:
            # The meetings there keep their local wall time in the site's new zone.
            for meeting in store.meetings_at_site(org, d["site_id"]):
                store.update_meeting(org, meeting["_id"], {"time_zone": d["time_zone"]})
                regs = store.registrations(org, meeting["_id"])
                uow.emit(MeetingUpdated, {**meeting_event_data({**meeting, "time_zone": d["time_zone"]}),
                                          "registrant_ids": registrant_ids(regs)})
    return handle


def _suggest_for_waiting_matches(uow: UnitOfWork, settings: Settings, org: str, person_field: str,
                                 person_id: str) -> None:
    store = Store.of(uow)
    for match in store.matches_awaiting_suggestions(org, person_field, person_id):
        _emit_suggestions(uow, store, settings, org, match)


def on_leader_changed(settings: Settings):
    def handle(evt: Event, uow: UnitOfWork) -> None:
        d = evt.data
        fields = {k: d[k] for k in ("site_ids", "status", "time_zone", "availability", "languages") if k in d}
        if evt.declaration is intake.LeaderDeactivated:
            fields = {"status": d["to_status"]}
        elif evt.declaration is intake.LeaderReactivated:
            fields = {"status": "active"}
        Store.of(uow).save_person("leader", evt.organization_id, d["leader_id"], fields)
        if "availability" in fields:
            _suggest_for_waiting_matches(uow, settings, evt.organization_id, "leader_id", d["leader_id"])
    return handle


def on_member_changed(settings: Settings):
    def handle(evt: Event, uow: UnitOfWork) -> None:
        d = evt.data
        fields = {k: d[k] for k in ("site_id", "status", "time_zone", "availability", "languages") if k in d}
        Store.of(uow).save_person("member", evt.organization_id, d["member_id"], fields)
        _suggest_for_waiting_matches(uow, settings, evt.organization_id, "member_id", d["member_id"])
    return handle


def on_member_erased(evt: Event, uow: UnitOfWork) -> None:
    """Erasure: sessions to come are cancelled (the leader is told), registrations and reminders are
    removed (freed seats go to the waitlist), attendance lists drop the id, the profile is deleted."""
    org, member_id = evt.organization_id, evt.data["member_id"]
    store = Store.of(uow)
    now = utcnow()
    sessions, _ = store.sessions(org, {"member_id": member_id, "status": "booked", "start": {"$gt": now}})
    for doc in sessions:
        _cancel_session(uow, store, doc, "system", "member_erased")
    store.anonymize_sessions(org, member_id)
    meeting_ids = {r["meeting_id"] for r in store.registrations_of_member(org, member_id, ("registered",))}
    store.forget_member_everywhere(org, member_id)
    for meeting_id in sorted(meeting_ids):
        meeting = store.meeting(org, meeting_id)
        if meeting and meeting["status"] == "active":
            promote_waiting(uow, store, meeting, now)
    for match in store.matches_of_member(org, member_id):
        store.save_match(org, match["match_id"], {"member_id": "erased", "status": "ended"})
    store.delete_person("member", org, member_id)


def on_match_activated(settings: Settings):
    def handle(evt: Event, uow: UnitOfWork) -> None:
        d, org = evt.data, evt.organization_id
        store = Store.of(uow)
        store.save_match(org, d["match_id"], {"member_id": d["member_id"], "leader_id": d["leader_id"],
                                              "site_id": d["site_id"], "status": "active", "activated_at": evt.time})
        _emit_suggestions(uow, store, settings, org, store.match(org, d["match_id"]))
    return handle


def on_match_ended(evt: Event, uow: UnitOfWork) -> None:
    d, org = evt.data, evt.organization_id
    store = Store.of(uow)
    store.save_match(org, d["match_id"], {"member_id": d["member_id"], "leader_id": d["leader_id"],
                                          "site_id": d["site_id"], "status": "ended"})
    sessions, _ = store.sessions(org, {"match_id": d["match_id"], "status": "booked", "start": {"$gt": utcnow()}})
    for doc in sessions:
        _cancel_session(uow, store, doc, "system", f"match ended ({d['reason_code']})")


# --- reminders (periodic job) ---------------------------------------------------------------------

REMINDERS_PER_TRANSACTION = 100


def send_due_reminders(repo: Repository, settings: Settings, now: datetime | None = None, *,
                       organization_id: str | None = None, known_sent: dict[str, datetime] | None = None) -> int:
    """Emit ReminderDue for every person, occurrence or session and offset that is due now.

    Each reminder is a document whose _id is its key, inserted in the same transaction as the event:
    two workers racing on one reminder conflict, and the loser finds it sent and emits nothing.
    ``organization_id`` limits a run to one organization (an operator's re-run, tests).
    ``known_sent`` (reminder key -> start), kept by the worker between runs, spares the database the
    question for reminders this worker already knows are sent (a reminder stays due until its window
    closes, and the job runs every interval meanwhile); keys are forgotten once their start is past."""
    now = now or utcnow()
    known_sent = {} if known_sent is None else known_sent
    offsets = settings.reminder_offsets_minutes
    horizon = now + timedelta(minutes=max(offsets))
    reader = repo.reader()
    pending: list[dict] = []
    for meeting in reader.all_active_meetings(organization_id):
        org = meeting["organization_id"]
        regs = None
        for occ in occurrences(meeting, now, horizon):
            due = model.due_offsets(occ.start, offsets, now)
            if not due:
                continue
            if regs is None:
                regs = reader.registrations(org, meeting["_id"], ("registered",))
            people = [("leader", lid) for lid in meeting.get("leader_ids") or []] + [
                ("member", mid) for mid in registrant_ids(regs, occ.occurrence_id)]
            for offset in due:
                for kind, pid in people:
                    pending.append({
                        "_id": f"{org}|{model.reminder_id(occ.occurrence_id, kind, pid, offset)}",
                        "event": {"organization_id": org, "person_id": pid, "person_kind": kind,
                                  "subject_kind": "occurrence", "meeting_id": meeting["_id"],
                                  "occurrence_id": occ.occurrence_id, "session_id": None,
                                  "site_id": meeting.get("site_id"), "title": meeting["name"],
                                  "starts_at": occ.start, "time_zone": meeting["time_zone"],
                                  "offset_minutes": offset}})
    for doc in reader.upcoming_booked_sessions(now, horizon, organization_id):
        org = doc["organization_id"]
        for offset in model.due_offsets(doc["start"], offsets, now):
            for kind, pid in (("member", doc["member_id"]), ("leader", doc["leader_id"])):
                pending.append({
                    "_id": f"{org}|{model.reminder_id('session:' + doc['_id'], kind, pid, offset)}",
                    "event": {"organization_id": org, "person_id": pid, "person_kind": kind,
                              "subject_kind": "session", "meeting_id": None, "occurrence_id": None,
                              "session_id": doc["_id"], "site_id": doc.get("site_id"),
                              "title": "one-on-one session", "starts_at": doc["start"],
                              "time_zone": doc["time_zone"], "offset_minutes": offset}})
    for key_, start in list(known_sent.items()):
        if model.as_utc(start) <= now:
            del known_sent[key_]
    pending = [p for p in pending if p["_id"] not in known_sent]
    if not pending:
        return 0
    already = reader.reminder_ids_sent([p["_id"] for p in pending])
    unsent = [p for p in pending if p["_id"] not in already]
    sent = 0
    for start in range(0, len(unsent), REMINDERS_PER_TRANSACTION):
        sent += _send_reminders(repo, unsent[start:start + REMINDERS_PER_TRANSACTION], now)
    known_sent.update((p["_id"], p["event"]["starts_at"]) for p in pending)
    return sent


def _send_reminders(repo: Repository, items: list[dict], now: datetime) -> int:
    """Several reminders with their events in one transaction; one by one when another worker sent one of
    them meanwhile (the transaction then fails on its key, and nothing of it is kept)."""
    if len(items) == 1:
        return int(_send_one_reminder(repo, items[0], now))

    def work(uow: UnitOfWork) -> int:
        store = Store.of(uow)
        store.insert_reminders([_reminder_doc(item, now) for item in items])
        for item in items:
            _emit_reminder(uow, item)
        return len(items)

    try:
        return repo.transaction(work)
    except BulkWriteError as exc:
        if {error.get("code") for error in exc.details.get("writeErrors", [])} != {11000}:  # not only duplicates
            raise
        return sum(_send_one_reminder(repo, item, now) for item in items)


def _reminder_doc(item: dict, now: datetime) -> dict:
    data = item["event"]
    return {"_id": item["_id"], "organization_id": data["organization_id"], "person_id": data["person_id"],
            "sent_at": now}


def _emit_reminder(uow: UnitOfWork, item: dict) -> None:
    data = item["event"]
    uow.emit(ReminderDue, {**data, "reminder_id": item["_id"]})  # ce_subject = the key, the person id


def _send_one_reminder(repo: Repository, item: dict, now: datetime) -> bool:
    def work(uow: UnitOfWork) -> bool:
        if not Store.of(uow).insert_reminder(_reminder_doc(item, now)):
            return False
        _emit_reminder(uow, item)
        return True

    try:
        return repo.transaction(work)
    except DuplicateKeyError:  # another worker committed the same reminder first
        return False


# --- feeds ----------------------------------------------------------------------------------------

def meeting_guide_feed(repo: Repository, settings: Settings, org: str) -> list[dict]:
    """The organization's public, active, weekly meetings in the Meeting Guide format."""
    store = repo.reader()
    now = utcnow()
    meetings, _ = store.meetings(org, public_only=True)
    entries = []
    for meeting in meetings:
        entry = feeds.meeting_guide_entry(meeting, store.site(org, meeting.get("site_id")),
                                          base_url=settings.platform.public_base_url, now=now)
        if entry is not None:
            entries.append(entry)
    return sorted(entries, key=lambda e: (str(e["day"]), e["time"], e["slug"]))


def public_meeting(repo: Repository, settings: Settings, org: str, slug: str) -> dict:
    """One public meeting's listing (where the Meeting Guide ``url`` points)."""
    store = repo.reader()
    meeting = store.public_meeting_by_slug(org, slug)
    entry = meeting and feeds.meeting_guide_entry(meeting, store.site(org, meeting.get("site_id")),
                                                  base_url=settings.platform.public_base_url, now=utcnow())
    if not entry:
        raise NotFound(f"No public meeting {slug}.")
    return entry


def public_meeting_page(repo: Repository, org: str, slug: str) -> str:
    """One public meeting as a page for people (HTML): where the Meeting Guide ``url`` points."""
    store = repo.reader()
    meeting = store.public_meeting_by_slug(org, slug)
    if meeting is None:
        raise NotFound(f"No public meeting {slug}.")
    return feeds.meeting_page(meeting, store.site(org, meeting.get("site_id")), now=utcnow())


def site_calendar(repo: Repository, org: str, site_id: str) -> bytes:
    store = repo.reader()
    site = store.site(org, site_id)
    if site is None:
        raise NotFound(f"No site {site_id}.")
    now = utcnow()
    meetings, _ = store.meetings(org, site_id=site_id, public_only=True)
    events = [e for m in meetings for e in feeds.meeting_events(m, site, now)]
    return feeds.render(feeds.new_calendar(f"{site.get('name') or site_id} meetings"), events)


def person_for_feed(repo: Repository, kind: str, org: str, person_id: str, *, token: str | None,
                    principal: Principal | None) -> dict:
    """The person whose private calendar is asked for, if the caller may read it: with the person's
    feed token, or with a bearer token of their organization that may see them."""
    import hmac

    person = repo.reader().person(kind, org, person_id)
    if person is None:
        raise NotFound(f"No {kind} {person_id}.")
    if principal is not None:
        allowed = principal.organization_id == org and (
            principal.is_admin
            or (kind == "leader" and principal.role == "leader" and principal.leader_id == person_id)
            or (principal.role == "coordinator" and (
                principal.can_access_site(person.get("site_id")) if kind == "member"
                else any(principal.can_access_site(s) for s in person.get("site_ids") or []))))
        if allowed:
            if kind == "member":
                repo.reader().audit(principal, "read", "member_calendar", person_id, org, via="bearer")
            return person
    elif token and person.get("feed_token_hash") and hmac.compare_digest(hash_token(token), person["feed_token_hash"]):
        if kind == "member":
            repo.reader().audit(None, "read", "member_calendar", person_id, org, via="feed_token")
        return person
    raise NotFound(f"No {kind} {person_id}.")


def member_calendar(repo: Repository, org: str, member_id: str) -> bytes:
    store = repo.reader()
    now = utcnow()
    events = []
    for reg in store.registrations_of_member(org, member_id, ("registered",)):
        meeting = store.meeting(org, reg["meeting_id"])
        if meeting is None or meeting["status"] != "active":
            continue
        if reg.get("occurrence_id") is None:
            events += feeds.meeting_events(meeting, store.site(org, meeting.get("site_id")), now)
        else:
            occ = find_occurrence(meeting, reg["occurrence_id"])
            if occ.status != "cancelled":
                events.append(feeds.occurrence_event(meeting, occ, now))
    sessions, _ = store.sessions(org, {"member_id": member_id, "status": "booked",
                                       "end": {"$gt": now - timedelta(days=30)}})
    events += [feeds.session_event(s, now) for s in sessions]
    return feeds.render(feeds.new_calendar("My recovery meetings"), events)


def leader_calendar(repo: Repository, org: str, leader_id: str) -> bytes:
    store = repo.reader()
    now = utcnow()
    meetings, _ = store.meetings(org, leader_id=leader_id)
    events = [e for m in meetings for e in feeds.meeting_events(m, store.site(org, m.get("site_id")), now)]
    sessions, _ = store.sessions(org, {"leader_id": leader_id, "status": "booked",
                                       "end": {"$gt": now - timedelta(days=30)}})
    events += [feeds.session_event(s, now) for s in sessions]
    return feeds.render(feeds.new_calendar("Meetings I facilitate and my sessions"), events)
