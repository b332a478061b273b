"""One occurrence of a meeting (issue 16, "Meetings"): when and where, who is registered and who waits for
a seat (in line order), registering a member (picked by name), cancelling or moving this one occurrence,
and taking attendance on a phone: one big checkbox per registered person and one Save.

Occurrence ids are scheduling's: ``<meeting id>:<original start, UTC YYYYMMDDTHHMMSSZ>``.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import format_date

from console.i18n import gettext as _
from console.api_client import ApiError
from console.views import api
from console.views.meetings import (MODES, field_errors, local_time, member_names, name_of_member, person_name,
                                    staff_only)

blp = Blueprint("meeting_day", __name__)

ATTENDANCE_OPENS_MINUTES = 30   # scheduling takes attendance from 30 minutes before the start


def _original_start(occurrence_id: str) -> datetime:
    try:
        return datetime.strptime(occurrence_id.rsplit(":", 1)[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except (IndexError, ValueError):
        abort(404)


def _load(client, meeting_id: str, occurrence_id: str) -> tuple[dict, dict]:
    """The meeting and the occurrence (moved or cancelled ones too); 404 when scheduling knows neither."""
    try:
        meeting = client.get("scheduling", f"/v1/meetings/{meeting_id}")
    except ApiError as problem:
        if problem.status in (403, 404):
            abort(404)
        raise
    original = _original_start(occurrence_id)
    found = client.get("scheduling", f"/v1/meetings/{meeting_id}/occurrences", params={
        "from": (original - timedelta(days=60)).isoformat(), "to": (original + timedelta(days=60)).isoformat(),
        "include_cancelled": "true"}) or []
    occurrence = next((o for o in found if o["occurrence_id"] == occurrence_id), None)
    if occurrence is None:
        abort(404)
    zone = meeting["time_zone"]
    begins, ends = local_time(occurrence["start"], zone), local_time(occurrence["end"], zone)
    occurrence = dict(occurrence, when=f"{format_date(begins.date(), 'EEEE d MMMM y')}, {begins:%H:%M}–{ends:%H:%M}",
                      date_local=begins.date().isoformat(), time_local=f"{begins:%H:%M}",
                      has_begun=datetime.fromisoformat(occurrence["start"]) <= datetime.now(timezone.utc)
                      + timedelta(minutes=ATTENDANCE_OPENS_MINUTES))
    return meeting, occurrence


def _people(client, meeting: dict, occurrence_id: str) -> tuple[list[dict], list[dict], dict[str, str]]:
    """Registered and waiting people of this occurrence (series registrations and its own), with names."""
    items = client.get("scheduling", f"/v1/meetings/{meeting['id']}/registrations").get("items", [])
    names = member_names(client, meeting.get("site_id"))
    mine = [dict(r, name=name_of_member(client, r["member_id"], names)) for r in items
            if r.get("occurrence_id") in (None, occurrence_id)]
    registered = sorted((r for r in mine if r["status"] == "registered"), key=lambda r: r["name"].lower())
    waiting = sorted((r for r in mine if r["status"] == "waitlisted"), key=lambda r: (r.get("waitlist_position") or 0))
    return registered, waiting, names


def _page(client, meeting_id: str, occurrence_id: str, errors: dict | None = None, move: dict | None = None,
          status: int = 200):
    meeting, occurrence = _load(client, meeting_id, occurrence_id)
    registered, waiting, names = _people(client, meeting, occurrence_id)
    taken = {r["member_id"] for r in registered + waiting}
    choices = sorted(((mid, name) for mid, name in names.items() if mid not in taken), key=lambda c: c[1].lower())
    try:
        leader = person_name(client.get("intake", f"/v1/leaders/{meeting['facilitator_id']}"))
    except ApiError:
        leader = None
    return render_template("meetings/occurrence.html", meeting=meeting, occurrence=occurrence, registered=registered,
                           waiting=waiting, choices=choices, leader=leader, mode=MODES.get(meeting.get("attendance_mode")),
                           errors=errors or {}, move=move or {"date": occurrence["date_local"], "time": occurrence["time_local"]}), status


@blp.get("/meetings/<meeting_id>/occurrences/<occurrence_id>")
def occurrence(meeting_id, occurrence_id):
    person, away = staff_only()
    if away:
        return away
    return _page(api(person), meeting_id, occurrence_id)


def _back(meeting_id, occurrence_id):
    return redirect(url_for("meeting_day.occurrence", meeting_id=meeting_id, occurrence_id=occurrence_id), 303)


@blp.post("/meetings/<meeting_id>/occurrences/<occurrence_id>/registrations")
def register(meeting_id, occurrence_id):
    person, away = staff_only()
    if away:
        return away
    client = api(person)
    member_id = request.form.get("member_id", "").strip()
    scope = request.form.get("scope", "series")
    if not member_id:
        return _page(client, meeting_id, occurrence_id, {"member_id": [_("Choose a member to register.")]}, status=422)
    body = {"member_id": member_id}
    if scope == "this":
        body["occurrence_id"] = occurrence_id
    try:
        made = client.post("scheduling", f"/v1/meetings/{meeting_id}/registrations", body)
    except ApiError as problem:
        if problem.status == 409 and "already has registration" in (problem.detail or ""):
            errors = {"member_id": [_("This member is already registered or waiting for a seat.")]}
        elif problem.status == 409:
            errors = {"member_id": [problem.detail or problem.title]}
        elif problem.status in (400, 403, 404, 422):
            errors = field_errors(problem, {"occurrence_id": "scope"}, {"member_id", "scope"}, "member_id")
        else:
            raise
        return _page(client, meeting_id, occurrence_id, errors, status=422)
    name = name_of_member(client, member_id, {})
    if made.get("status") == "waitlisted":
        flash(_("No seat is free: %(name)s is waiting for a seat (number %(place)s in line).", name=name,
                place=made.get("waitlist_position") or "?"))
    else:
        flash(_("%(name)s is registered.", name=name))
    return _back(meeting_id, occurrence_id)


@blp.post("/meetings/<meeting_id>/occurrences/<occurrence_id>/registrations/<registration_id>/cancel")
def unregister(meeting_id, occurrence_id, registration_id):
    person, away = staff_only()
    if away:
        return away
    client = api(person)
    client.request("DELETE", "scheduling", f"/v1/meetings/{meeting_id}/registrations/{registration_id}")
    flash(_("The registration is cancelled. If someone was waiting, the first in line now has the seat."))
    return _back(meeting_id, occurrence_id)


@blp.post("/meetings/<meeting_id>/occurrences/<occurrence_id>/cancel")
def cancel(meeting_id, occurrence_id):
    person, away = staff_only()
    if away:
        return away
    client = api(person)
    reason = request.form.get("reason", "").strip()[:500] or None
    try:
        client.post("scheduling", f"/v1/meetings/{meeting_id}/occurrences/{occurrence_id}/cancel", {"reason": reason})
    except ApiError as problem:
        if problem.status not in (400, 409, 422):
            raise
        return _page(client, meeting_id, occurrence_id, field_errors(problem, {}, {"reason"}, "reason"), status=422)
    flash(_("This meeting is cancelled for this day only. The people registered are told."))
    return _back(meeting_id, occurrence_id)


@blp.post("/meetings/<meeting_id>/occurrences/<occurrence_id>/move")
def move(meeting_id, occurrence_id):
    person, away = staff_only()
    if away:
        return away
    client = api(person)
    form = {"date": request.form.get("date", "").strip(), "time": request.form.get("time", "").strip()}
    try:
        wanted = datetime.fromisoformat(f"{form['date']}T{form['time']}")
    except ValueError:
        return _page(client, meeting_id, occurrence_id, {"move_date": [_("Enter a date and a time, like 2026-03-03 and 19:00.")]},
                     move=form, status=422)
    try:
        client.post("scheduling", f"/v1/meetings/{meeting_id}/occurrences/{occurrence_id}/move",
                    {"start": wanted.isoformat(timespec="minutes")})
    except ApiError as problem:
        if problem.status == 409:
            clash = problem.body.get("clash") or {}
            errors = {"move_date": [_("The peer leader already leads %(what)s then. Choose another time.",
                                      what=clash.get("name") or _("something else"))]}
        elif problem.status in (400, 422):
            errors = field_errors(problem, {"start": "move_date", "end": "move_time"}, set(), "move_date")
        else:
            raise
        return _page(client, meeting_id, occurrence_id, errors, move=form, status=422)
    flash(_("This meeting is moved to %(date)s at %(time)s (this day only). The people registered are told.",
            date=format_date(wanted.date(), "EEEE d MMMM"), time=f"{wanted:%H:%M}"))
    return _back(meeting_id, occurrence_id)


# --- attendance -----------------------------------------------------------------------------------

@blp.get("/meetings/<meeting_id>/occurrences/<occurrence_id>/attendance")
def attendance(meeting_id, occurrence_id):
    person, away = staff_only()
    if away:
        return away
    client = api(person)
    meeting, occurrence = _load(client, meeting_id, occurrence_id)
    registered, _waiting, _names = _people(client, meeting, occurrence_id)
    present: set[str] = set()
    recorded = None
    if occurrence["has_begun"] and occurrence["status"] != "cancelled":
        try:
            taken = client.get("scheduling", f"/v1/meetings/{meeting_id}/occurrences/{occurrence_id}/attendance") or {}
        except ApiError as problem:
            if problem.status != 404:   # 404: nothing recorded yet
                raise
            taken = {}
        present, recorded = set(taken.get("present_member_ids") or []), taken.get("recorded_at")
    return render_template("meetings/attendance.html", meeting=meeting, occurrence=occurrence, registered=registered,
                           present=present, recorded=recorded, errors={})


@blp.post("/meetings/<meeting_id>/occurrences/<occurrence_id>/attendance")
def save_attendance(meeting_id, occurrence_id):
    person, away = staff_only()
    if away:
        return away
    client = api(person)
    meeting, occurrence = _load(client, meeting_id, occurrence_id)
    registered, _waiting, _names = _people(client, meeting, occurrence_id)
    everyone = {r["member_id"] for r in registered}
    present = {m for m in request.form.getlist("present") if m in everyone}
    try:
        client.request("PUT", "scheduling", f"/v1/meetings/{meeting_id}/occurrences/{occurrence_id}/attendance",
                       json={"present_member_ids": sorted(present), "absent_member_ids": sorted(everyone - present)})
    except ApiError as problem:
        if problem.status not in (400, 409, 422):
            raise
        return render_template("meetings/attendance.html", meeting=meeting, occurrence=occurrence, registered=registered,
                               present=present, recorded=None,
                               errors={"present": [problem.detail or problem.title]}), 422
    flash(_("Attendance saved: %(present)d of %(total)d here.", present=len(present), total=len(everyone)))
    return redirect(url_for("meeting_day.attendance", meeting_id=meeting_id, occurrence_id=occurrence_id), 303)
