"""Recurring meetings: create, change, cancel, list; loading one the caller may see, finding one of its
occurrences, and moving its waitlist up when seats free."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from shared.auth import Principal
from shared.errors import Conflict, Forbidden, Invalid, NotFound, NotYetKnown
from shared.events.scheduling import MeetingCancelled, MeetingCreated, MeetingUpdated, RegistrationPromoted
from shared.mongo import utcnow
from shared.unit_of_work import UnitOfWork

from scheduling import access, model
from scheduling.config import Settings
from scheduling.handlers.busy import refuse_leader_clash
from scheduling.repository import Store

MEETING_FIELDS = ("name", "description", "format", "types", "language", "capacity", "is_open", "is_public",
                  "for_peer_providers",
                  "attendance_mode", "conference_url", "conference_phone", "location_notes", "notes",
                  "facilitator_id", "co_facilitator_id", "rrule", "first_start_local", "duration_minutes")
SCHEDULE_FIELDS = {"rrule", "first_start_local", "duration_minutes", "facilitator_id", "co_facilitator_id"}


def meeting_event_data(meeting: dict) -> dict:
    return {
        "organization_id": meeting["organization_id"], "meeting_id": meeting["_id"], "site_id": meeting.get("site_id"),
        "facilitator_id": meeting["facilitator_id"], "co_facilitator_id": meeting.get("co_facilitator_id"),
        "name": meeting["name"], "language": meeting["language"], "attendance_mode": meeting["attendance_mode"],
        "types": meeting.get("types") or [], "capacity": meeting["capacity"], "is_open": meeting["is_open"],
        "is_public": meeting["is_public"], "for_peer_providers": bool(meeting.get("for_peer_providers")),
        "time_zone": meeting["time_zone"], "rrule": meeting["rrule"],
        "first_start_local": meeting["first_start_local"], "duration_minutes": meeting["duration_minutes"],
    }


def own_member(store: Store, principal: Principal) -> dict | None:
    """A member caller's own read-model record (their site decides which meetings they see); None for others."""
    if principal.role != "member":
        return None
    return store.person("member", principal.organization_id, principal.member_id)


def load_meeting(store: Store, principal: Principal, meeting_id: str) -> dict:
    meeting = store.meeting(principal.organization_id, meeting_id)
    if meeting is None or not access.can_see_meeting(principal, meeting, own_member(store, principal)):
        raise NotFound(f"No meeting {meeting_id}.")
    return meeting


def find_occurrence(meeting: dict, occurrence_id: str, *, include_cancelled: bool = True) -> model.Occurrence:
    meeting_id, original = model.parse_occurrence_id(occurrence_id)
    schedule = model.schedule_of(meeting)
    if meeting_id != meeting["_id"] or not model.is_rule_occurrence(schedule, original):
        raise NotFound(f"Meeting {meeting['_id']} has no occurrence {occurrence_id}.")
    exception = schedule.exceptions.get(model.exception_key(original))
    duration = timedelta(minutes=schedule.duration_minutes)
    occ = model.apply_exception(model.Occurrence(occurrence_id, meeting["_id"], original, original,
                                                 original + duration, schedule.time_zone), exception)
    if occ.status == "cancelled" and not include_cancelled:
        raise Conflict(f"Occurrence {occurrence_id} is cancelled.", field="occurrence_id")
    return occ


def seat_count(store: Store, meeting: dict, now: datetime, *, recount: bool = False) -> model.SeatCount:
    """The meeting's seats as counts (one small document, whatever the meeting's size); built from its
    registrations when it has none yet (a meeting of before the counts) or when asked (``recount``: after
    registrations were removed wholesale, an erasure)."""
    doc = store.seat_count(meeting["organization_id"], meeting["_id"])
    if doc is not None and not recount:
        return model.SeatCount.from_doc(doc).live(now)
    count = model.seat_count_of(store.registrations(meeting["organization_id"], meeting["_id"]), now)
    count.version = doc.get("version") if doc else None
    return count


def save_seat_count(store: Store, meeting: dict, count: model.SeatCount) -> None:
    store.save_seat_count(meeting["organization_id"], meeting["_id"], count.to_doc(), count.version)


def promote_waiting(uow: UnitOfWork, store: Store, meeting: dict, now: datetime,
                    count: model.SeatCount | None = None) -> list[str]:
    """Seats freed (a cancellation, more capacity, an erasure): the first in line move up. Reads the
    meeting's seat counts (unless given) and its waiters only, and stores the counts."""
    if count is None:
        count = seat_count(store, meeting, now)
    waiting = store.registrations(meeting["organization_id"], meeting["_id"], ("waitlisted",))
    promoted = model.promotions_by_count(meeting["capacity"], count, model.seats_of(waiting, now))
    save_seat_count(store, meeting, count)
    by_id = {r["_id"]: r for r in waiting}
    for rid in promoted:
        store.set_registration_status(rid, "registered")
        reg = by_id[rid]
        if reg.get("registrant_kind") == "leader":   # a peer leader's own seat: no member to tell
            continue
        uow.emit(RegistrationPromoted, {
            "organization_id": meeting["organization_id"], "registration_id": rid, "meeting_id": meeting["_id"],
            "site_id": meeting.get("site_id"), "member_id": reg["member_id"],
            "occurrence_id": reg.get("occurrence_id")})
    return promoted


def _active_leader(store: Store, org: str, leader_id: str, field_name: str) -> dict:
    leader = store.person("leader", org, leader_id)
    if leader is None:
        raise NotYetKnown("leader", leader_id, service="scheduling", field=field_name)
    if leader.get("status", "active") != "active":
        raise Invalid(f"Leader {leader_id} is {leader['status']} and cannot facilitate.", field=field_name)
    return leader


def _validate_meeting(store: Store, org: str, meeting: dict) -> None:
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
    _active_leader(store, org, meeting["facilitator_id"], "facilitator_id")
    if meeting.get("co_facilitator_id"):
        if meeting["co_facilitator_id"] == meeting["facilitator_id"]:
            raise Invalid("The co-facilitator must be someone else.", field="co_facilitator_id")
        _active_leader(store, org, meeting["co_facilitator_id"], "co_facilitator_id")
    meeting["leader_ids"] = [lid for lid in (meeting["facilitator_id"], meeting.get("co_facilitator_id")) if lid]
    if meeting.get("types"):
        meeting["types"] = list(dict.fromkeys(meeting["types"]))


def _refuse_meeting_clashes(store: Store, org: str, meeting: dict, settings: Settings, now: datetime) -> None:
    start = max(now, model.to_utc(datetime.fromisoformat(meeting["first_start_local"]), meeting["time_zone"]))
    end = start + timedelta(days=settings.conflict_horizon_days)
    wanted = [(o.start, o.end) for o in model.occurrences(meeting, start, end)]
    for leader_id in meeting["leader_ids"]:
        store.lock(f"leader:{org}:{leader_id}")
        refuse_leader_clash(store, org, leader_id, wanted, meeting["time_zone"], exclude_meeting=meeting["_id"])


def create_meeting(uow: UnitOfWork, settings: Settings, principal: Principal, body: dict) -> dict:
    access.require_meeting_creator(principal, body.get("site_id"))
    org = principal.organization_id
    now = utcnow()
    meeting_id = uuid.uuid4().hex
    store = Store.of(uow)
    meeting = {**{k: body.get(k) for k in MEETING_FIELDS}, "_id": meeting_id, "organization_id": org,
               "site_id": body.get("site_id"), "time_zone": body.get("time_zone"), "status": "active",
               "exceptions": {}, "version": 1, "created_at": now, "updated_at": now,
               "slug": model.slugify(body["name"], meeting_id[:8])}
    _validate_meeting(store, org, meeting)
    _refuse_meeting_clashes(store, org, meeting, settings, now)
    store.insert_meeting(meeting)
    uow.emit(MeetingCreated, meeting_event_data(meeting))
    return meeting


def update_meeting(uow: UnitOfWork, settings: Settings, principal: Principal, meeting_id: str, body: dict,
                   check_etag) -> dict:
    org = principal.organization_id
    now = utcnow()
    store = Store.of(uow)
    meeting = load_meeting(store, principal, meeting_id)
    if not access.can_manage_meeting(principal, meeting):
        raise Forbidden("Only admins and the site's coordinators change meetings.")
    check_etag(meeting)
    if meeting["status"] != "active":
        raise Conflict("A cancelled meeting cannot be changed.", field="status")
    changed = {k: v for k, v in body.items() if k in MEETING_FIELDS}
    updated = {**meeting, **changed}
    _validate_meeting(store, org, updated)
    if SCHEDULE_FIELDS & changed.keys():
        _refuse_meeting_clashes(store, org, updated, settings, now)
    fields = {k: updated.get(k) for k in (*MEETING_FIELDS, "leader_ids", "rrule", "first_start_local", "time_zone")}
    store.update_meeting(org, meeting_id, fields)
    store.lock(f"meeting:{meeting_id}")
    meeting = store.meeting(org, meeting_id)
    if "capacity" in changed:
        promote_waiting(uow, store, meeting, now)
    regs = store.registrations(org, meeting_id)
    uow.emit(MeetingUpdated, {**meeting_event_data(meeting), "registrant_ids": model.registrant_ids(regs)})
    return meeting


def cancel_meeting(uow: UnitOfWork, principal: Principal, meeting_id: str, reason: str | None) -> dict:
    org = principal.organization_id
    store = Store.of(uow)
    meeting = load_meeting(store, principal, meeting_id)
    if not access.can_manage_meeting(principal, meeting):
        raise Forbidden("Only admins and the site's coordinators cancel meetings.")
    if meeting["status"] == "cancelled":
        return meeting
    store.update_meeting(org, meeting_id, {"status": "cancelled", "cancel_reason": reason})
    regs = store.registrations(org, meeting_id)
    uow.emit(MeetingCancelled, {"organization_id": org, "meeting_id": meeting_id, "site_id": meeting.get("site_id"),
                                "name": meeting["name"], "reason": reason,
                                "registrant_ids": sorted({r["member_id"] for r in regs
                                                          if r.get("registrant_kind", "member") == "member"})})
    return store.meeting(org, meeting_id)


def list_meetings(reader: Store, principal: Principal, *, site_id=None, leader_id=None, status="active",
                  skip=0, limit=50, for_peer_providers=None) -> tuple[list[dict], int]:
    if principal.role == "member":
        member = own_member(reader, principal)
        if member is None:
            return [], 0
        return reader.meetings_for_member(principal.organization_id, member.get("site_id"), site_id=site_id,
                                          leader_id=leader_id, status=status, skip=skip, limit=limit)
    return reader.meetings(principal.organization_id, site_filter=access.meeting_site_filter(principal),
                           site_id=site_id, leader_id=leader_id, status=status, skip=skip, limit=limit,
                           for_peer_providers=for_peer_providers)


def get_meeting(reader: Store, principal: Principal, meeting_id: str) -> dict:
    return load_meeting(reader, principal, meeting_id)
