"""One occurrence of a meeting: list them in a range, cancel or move one, record who came."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta

from shared.auth import Principal
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.events.scheduling import AttendanceRecorded, OccurrenceCancelled, OccurrenceMoved
from shared.mongo import utcnow
from shared.unit_of_work import UnitOfWork

from scheduling import access, model
from scheduling.handlers.busy import refuse_leader_clash
from scheduling.handlers.meetings import find_occurrence, list_meetings, load_meeting
from scheduling.repository import Store

MAX_RANGE_DAYS = 366


def check_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start, end = model.as_utc(start), model.as_utc(end)
    if end <= start:
        raise Invalid("'to' must be after 'from'.", field="to")
    if end - start > timedelta(days=MAX_RANGE_DAYS):
        raise Invalid(f"A range covers at most {MAX_RANGE_DAYS} days.", field="to")
    return start, end


def seats_at(regs: list[dict], occurrence_id: str | None) -> tuple[int, int]:
    """Registered and waiting at one occurrence: the series' registrants and the occurrence's own (None: the
    series' alone)."""
    at = [r for r in regs if r.get("occurrence_id") in (None, occurrence_id)]
    return sum(r["status"] == "registered" for r in at), sum(r["status"] == "waitlisted" for r in at)


def occurrence_view(meeting: dict, occ: model.Occurrence, registered: int, waiting: int) -> dict:
    return {"occurrence_id": occ.occurrence_id, "meeting_id": meeting["_id"], "name": meeting["name"],
            "site_id": meeting.get("site_id"), "start": occ.start, "end": occ.end,
            "original_start": occ.original_start, "local_start": occ.local_start.isoformat(timespec="minutes"),
            "local_end": occ.local_end.isoformat(timespec="minutes"), "time_zone": occ.time_zone,
            "status": occ.status, "reason": occ.reason, "registered_count": registered,
            "waitlisted_count": waiting, "seats_left": max(0, meeting["capacity"] - registered)}


def list_occurrences(reader: Store, principal: Principal, start: datetime, end: datetime, *,
                     meeting_id: str | None = None, site_id: str | None = None,
                     include_cancelled: bool = False) -> list[dict]:
    """Each occurrence with its counts, read from the meetings' seat counts (the series' registrants and
    waiters) and the registrations for the listed occurrences alone: a calendar's cost does not grow with
    the size of its meetings (issue 20)."""
    start, end = check_range(start, end)
    if meeting_id:
        meetings = [load_meeting(reader, principal, meeting_id)]
    else:
        meetings, _ = list_meetings(reader, principal, site_id=site_id, limit=0)
    found = [(meeting, occ) for meeting in meetings if meeting["status"] == "active"
             for occ in model.occurrences(meeting, start, end, include_cancelled=include_cancelled)]
    org = principal.organization_id
    series = _series_seats(reader, org, list(dict.fromkeys(meeting["_id"] for meeting, _ in found)))
    single = Counter((r["occurrence_id"], r["status"])
                     for r in reader.occurrence_registrations(org, [occ.occurrence_id for _, occ in found]))
    result = [occurrence_view(meeting, occ, series[meeting["_id"]][0] + single[occ.occurrence_id, "registered"],
                              series[meeting["_id"]][1] + single[occ.occurrence_id, "waitlisted"])
              for meeting, occ in found]
    return sorted(result, key=lambda o: (o["start"], o["occurrence_id"]))


def _series_seats(reader: Store, org: str, meeting_ids: list[str]) -> dict[str, tuple[int, int]]:
    """Registered and waiting for each meeting's whole series, from its seat counts (from its registrations for
    a meeting that has none: one nobody registered for, or one registered for before the counts)."""
    counts = reader.seat_counts(org, meeting_ids)
    seats = {}
    for mid in meeting_ids:
        if mid in counts:
            seats[mid] = (counts[mid].get("series", 0), counts[mid].get("series_waiting", 0))
        else:
            seats[mid] = seats_at(reader.registrations(org, mid), None)
    return seats


def _manageable_occurrence(store: Store, principal: Principal, meeting_id: str) -> dict:
    meeting = load_meeting(store, principal, meeting_id)
    if not access.can_run_meeting(principal, meeting):
        raise Forbidden("Only the facilitators, the site's coordinators and admins change occurrences.")
    if meeting["status"] != "active":
        raise Conflict("The meeting is cancelled.", field="meeting_id")
    return meeting


def cancel_occurrence(uow: UnitOfWork, principal: Principal, meeting_id: str, occurrence_id: str,
                      reason: str | None) -> dict:
    org = principal.organization_id
    store = Store.of(uow)
    meeting = _manageable_occurrence(store, principal, meeting_id)
    occ = find_occurrence(meeting, occurrence_id)
    if occ.status == "cancelled":
        return occurrence_view(meeting, occ, 0, 0)
    if occ.end <= utcnow():
        raise Conflict("That occurrence is over.", field="occurrence_id")
    store.set_exception(org, meeting_id, model.exception_key(occ.original_start),
                        {"status": "cancelled", "reason": reason, "at": utcnow()})
    regs = store.registrations(org, meeting_id)
    uow.emit(OccurrenceCancelled, {
        "organization_id": org, "meeting_id": meeting_id, "site_id": meeting.get("site_id"),
        "occurrence_id": occurrence_id, "name": meeting["name"], "time_zone": meeting["time_zone"],
        "original_start": occ.original_start, "registrant_ids": model.registrant_ids(regs, occurrence_id),
        "reason": reason})
    return occurrence_view(meeting, replace(occ, status="cancelled", reason=reason), *seats_at(regs, occurrence_id))


def move_occurrence(uow: UnitOfWork, principal: Principal, meeting_id: str, occurrence_id: str,
                    new_start: datetime, new_end: datetime | None, reason: str | None) -> dict:
    org = principal.organization_id
    store = Store.of(uow)
    meeting = _manageable_occurrence(store, principal, meeting_id)
    occ = find_occurrence(meeting, occurrence_id, include_cancelled=False)
    start = model.to_instant(new_start, meeting["time_zone"])
    end = model.to_instant(new_end, meeting["time_zone"]) if new_end else start + timedelta(
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
        "original_start": occ.original_start, "registrant_ids": model.registrant_ids(regs, occurrence_id),
        "new_start": start, "new_end": end})
    return occurrence_view(meeting, replace(occ, status="moved", start=start, end=end, reason=reason),
                           *seats_at(regs, occurrence_id))


# --- attendance -----------------------------------------------------------------------------------

def record_attendance(uow: UnitOfWork, principal: Principal, meeting_id: str, occurrence_id: str,
                      present: list[str], absent: list[str]) -> dict:
    org = principal.organization_id
    overlap = set(present) & set(absent)
    if overlap:
        raise Invalid(f"Someone cannot be both present and absent: {', '.join(sorted(overlap))}.",
                      field="absent_member_ids")
    store = Store.of(uow)
    meeting = load_meeting(store, principal, meeting_id)
    if not access.can_run_meeting(principal, meeting):
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


def get_attendance(reader: Store, principal: Principal, meeting_id: str, occurrence_id: str) -> dict:
    meeting = load_meeting(reader, principal, meeting_id)
    if not access.can_run_meeting(principal, meeting):
        raise Forbidden("Attendance is for the meeting's facilitators and coordinators.")
    doc = reader.attendance(principal.organization_id, occurrence_id)
    if doc is None:
        raise NotFound(f"No attendance recorded for {occurrence_id}.")
    reader.audit(principal, "read", "attendance", occurrence_id, principal.organization_id, meeting_id=meeting_id)
    return doc
