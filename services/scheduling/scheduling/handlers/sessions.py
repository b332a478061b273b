"""One-on-one sessions of an active match: the times suggested for it, booking, rescheduling, cancelling."""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from shared.auth import Principal
from shared.errors import Conflict, Invalid, NotFound, NotYetKnown
from shared.events.scheduling import (SessionBooked, SessionCancelled, SessionHeld, SessionRescheduled,
                                      SessionTimesSuggested)
from shared.mongo import utcnow
from shared.unit_of_work import UnitOfWork

from scheduling import access, model
from scheduling.config import Settings
from scheduling.handlers.busy import leader_busy, member_busy, refuse_leader_clash, refuse_member_clash
from scheduling.repository import Store

log = logging.getLogger(__name__)


def display_zone(store: Store, org: str, site_id: str | None, member: dict | None) -> str:
    site = store.site(org, site_id)
    if site:
        return site["time_zone"]
    if member and member.get("time_zone"):
        return member["time_zone"]
    return "UTC"


# --- suggested times ------------------------------------------------------------------------------

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
    except Invalid as exc:
        log.warning("unreadable availability", extra={"error": exc.message})
        return []


def emit_suggestions(uow: UnitOfWork, store: Store, settings: Settings, org: str, match: dict) -> bool:
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


def current_suggestions(reader: Store, settings: Settings, principal: Principal, match_id: str) -> dict:
    # Straight after a match is accepted, scheduling may not have heard of it for a second or two: answered as
    # not yet known (404 with Retry-After), which clients wait out; an id that will never exist answers the same.
    match = _load_match(reader, principal, match_id, unknown=NotYetKnown("match", match_id, service="scheduling"))
    computed = compute_suggestions(reader, settings, principal.organization_id, match, utcnow())
    if computed is None:
        raise Conflict("The member's or leader's availability is not known to scheduling yet.", field="match_id")
    tz_name, slots = computed
    tz = model.zone(tz_name)
    return {"match_id": match_id, "member_id": match["member_id"], "leader_id": match["leader_id"],
            "time_zone": tz_name, "suggestions": [{"start": s.astimezone(tz), "end": e.astimezone(tz)} for s, e in slots]}


# --- booking --------------------------------------------------------------------------------------

def _load_match(store: Store, principal: Principal, match_id: str, unknown: Exception | None = None) -> dict:
    match = store.match(principal.organization_id, match_id)
    if match is None or not access.can_see_match(principal, match):
        raise unknown or NotFound(f"No match {match_id}.")
    return match


def _refuse_double_booking(store: Store, org: str, session: dict, tz_name: str, exclude: str | None) -> None:
    wanted = [(session["start"], session["end"])]
    store.lock(f"leader:{org}:{session['leader_id']}")
    store.lock(f"member:{org}:{session['member_id']}")
    refuse_leader_clash(store, org, session["leader_id"], wanted, tz_name, exclude_session=exclude)
    refuse_member_clash(store, org, session["member_id"], wanted, tz_name, exclude_session=exclude)


def _session_times(start: datetime, end: datetime | None, tz_name: str, settings: Settings) -> tuple[datetime, datetime]:
    s = model.to_instant(start, tz_name)
    e = model.to_instant(end, tz_name) if end else s + timedelta(minutes=settings.session_minutes)
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
        except Invalid:
            inside = False  # an availability we cannot read covers nothing
        if not inside:
            reasons.append(model.outside_availability_message(f"The {kind} {person_id}", windows, tz_name, start, end))
    if reasons and not allowed:
        raise Invalid("This time is outside availability. " + " ".join(reasons)
                      + " Send outside_availability: true to book it anyway.", field="outside_availability")
    return bool(reasons)


def book_session(uow: UnitOfWork, settings: Settings, principal: Principal, body: dict) -> dict:
    org = principal.organization_id
    session_id = uuid.uuid4().hex
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
           "booked_by_role": access.acting_role(principal, body.get("on_behalf_of")), "version": 1,
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


def _load_session(store: Store, principal: Principal, session_id: str) -> dict:
    doc = store.session_doc(principal.organization_id, session_id)
    if doc is None or not access.can_see_session(principal, doc):
        raise NotFound(f"No session {session_id}.")
    return doc


def get_session(reader: Store, principal: Principal, session_id: str) -> dict:
    return _load_session(reader, principal, session_id)


def list_sessions(reader: Store, principal: Principal, filters: dict, skip: int, limit: int):
    return reader.sessions(principal.organization_id, member_id=filters.get("member_id"),
                           leader_id=filters.get("leader_id"), match_id=filters.get("match_id"),
                           status=filters.get("status"), scope=access.session_scope(principal),
                           ends_after=model.as_utc(filters["from"]) if filters.get("from") else None,
                           starts_before=model.as_utc(filters["to"]) if filters.get("to") else None,
                           skip=skip, limit=limit)


def reschedule_session(uow: UnitOfWork, settings: Settings, principal: Principal, session_id: str,
                       body: dict) -> dict:
    org = principal.organization_id
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
        "rescheduled_by_role": access.acting_role(principal, body.get("on_behalf_of"))})
    return store.session_doc(org, session_id)


def cancel_booked(uow: UnitOfWork, store: Store, doc: dict, role: str, reason: str | None) -> None:
    """Cancel one booked session and tell both people (a request, an erasure, a match that ended)."""
    store.update_session(doc["_id"], {"status": "cancelled", "cancelled_by_role": role, "cancel_reason": reason})
    uow.emit(SessionCancelled, {"organization_id": doc["organization_id"], "session_id": doc["_id"],
                                "match_id": doc["match_id"], "member_id": doc["member_id"],
                                "leader_id": doc["leader_id"], "site_id": doc.get("site_id"), "start": doc["start"],
                                "cancelled_by_role": role, "reason": reason})


def cancel_session(uow: UnitOfWork, principal: Principal, session_id: str, body: dict) -> dict:
    store = Store.of(uow)
    doc = _load_session(store, principal, session_id)
    if doc["status"] == "cancelled":
        return doc
    cancel_booked(uow, store, doc, access.acting_role(principal, body.get("on_behalf_of")), body.get("reason"))
    store.audit(principal, "update", "session", session_id, principal.organization_id,
                member_id=doc["member_id"], status="cancelled")
    return store.session_doc(principal.organization_id, session_id)


# --- held -----------------------------------------------------------------------------------------

def mark_held(uow: UnitOfWork, now: datetime, limit: int = 100) -> int:
    """Booked sessions that reached their end without being cancelled took place: record ``held_at`` and
    emit SessionHeld once each (read inside the transaction, so two workers cannot both emit it)."""
    store = Store.of(uow)
    done = store.sessions_ended_unheld(now, limit)
    for doc in done:
        store.update_session(doc["_id"], {"held_at": now})
        uow.emit(SessionHeld, {"organization_id": doc["organization_id"], "session_id": doc["_id"],
                               "match_id": doc["match_id"], "member_id": doc["member_id"],
                               "leader_id": doc["leader_id"], "site_id": doc.get("site_id"),
                               "start": doc["start"], "end": doc["end"]})
    return len(done)
