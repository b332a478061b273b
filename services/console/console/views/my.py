"""The member's portal (issue 17, area 6): a person in recovery's own pages, mostly on a phone.

Home (``/`` for a member: their peer leader, or that they are waiting and why; a proposal to accept or
decline; their next sessions and meetings), ``/my/sessions`` (book from the times that suit both, cancel),
``/my/meetings`` (meetings open to them: register, cancel, place in line, their calendar link). Messages,
consents and their information are in ``my_settings``. Every call uses the member's own token: the APIs
answer only the member's own things, so no page here can show another member.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for

from console import sessions
from console.api_client import ApiError
from console.i18n import LANGUAGES, gettext as _
from console.views import api, sign_in_first
from console.views.matching_words import language_name, when

blp = Blueprint("my", __name__, url_prefix="/my")

SHOWN = 50


def member_only():
    """(person, None) for a signed-in member, else (None, a response): strangers sign in, others get 404.
    Every page of the portal starts here, after the console's own session check (app.py), so an expired or
    missing session always leads to sign-in; the first page a member opens reads their profile's language."""
    person = sessions.current_person()
    if person is None:
        return None, sign_in_first()
    if person.role != "member":
        abort(404)
    _speak_their_language(person)
    return person, None


def profile(client) -> dict:
    return (client.get("intake", "/v1/me") or {}).get("member") or {}


def zone_of(me: dict) -> str:
    return me.get("time_zone") or "UTC"


def _speak_their_language(person) -> None:
    """A member's pages speak the language of their profile (read once per session, until they choose
    another with the switch or on the Messages page)."""
    if session.get("member_language_read"):
        return
    try:
        chosen = (profile(api(person)).get("preferred_language") or "").split("-")[0]
    except ApiError:
        chosen = ""
    if chosen in LANGUAGES:
        session["lang"] = chosen
    session["member_language_read"] = True


def home():
    person, refused = member_only()
    if refused:
        return refused
    client = api(person)
    me = profile(client)
    zone = zone_of(me)
    mine = client.get("intake", "/v1/me/leader") or {}
    match = (client.get("matching", "/v1/me/match") or {}).get("match") or {}
    sessions_found = client.get("scheduling", "/v1/sessions", params={"status": "booked", "limit": 5, "offset": 0}) or {}
    registrations = (client.get("scheduling", "/v1/me/registrations", params={"status": ["registered", "waitlisted"]})
                     or {}).get("items", [])
    return render_template(
        "my/home.html", me=me, zone=zone, mine=mine, leader=mine.get("leader") or {},
        languages_spoken=[language_name(c) for c in (mine.get("leader") or {}).get("languages") or []],
        match=match, expires=when(match.get("expires_at"), zone) if match.get("expires_at") else "",
        upcoming=[dict(s, when=when(s["start"], s.get("time_zone") or zone)) for s in sessions_found.get("items", [])],
        registrations=len(registrations), plan=_plan(client))


def _plan(client) -> dict | None:
    try:
        return client.get("intake", "/v1/me/plan")
    except ApiError:
        return None   # not shared by the organization, or no plan yet


@blp.post("/match/<match_id>/accept")
def accept(match_id):
    person, refused = member_only()
    if refused:
        return refused
    try:
        api(person).post("matching", f"/v1/matches/{match_id}/accept")
        flash(_("You accepted. Your peer leader will be in touch, and you can book a time together."), "info")
    except ApiError as problem:
        flash(problem.detail or _("This proposal can no longer be answered."), "info")
    return redirect(url_for("home.index"), 303)


@blp.post("/match/<match_id>/decline")
def decline(match_id):
    person, refused = member_only()
    if refused:
        return refused
    reason = (request.form.get("reason") or "").strip() or _("I would like someone else.")
    try:
        api(person).post("matching", f"/v1/matches/{match_id}/decline", json={"reason": reason})
        flash(_("Thank you for telling us. We are looking for another peer leader for you."), "info")
    except ApiError as problem:
        flash(problem.detail or _("This proposal can no longer be answered."), "info")
    return redirect(url_for("home.index"), 303)


@blp.get("/sessions")
def my_sessions():
    person, refused = member_only()
    if refused:
        return refused
    client = api(person)
    zone = zone_of(profile(client))
    found = client.get("scheduling", "/v1/sessions", params={"status": "booked", "limit": SHOWN, "offset": 0}) or {}
    try:
        offered = client.get("scheduling", "/v1/me/suggestions") or {}
    except ApiError:
        offered = {}   # no active match yet: nothing to book
    slot_zone = offered.get("time_zone") or zone
    return render_template(
        "my/sessions.html", zone=zone, slot_zone=slot_zone, match_id=offered.get("match_id"),
        booked=[dict(s, when=when(s["start"], s.get("time_zone") or zone)) for s in found.get("items", [])],
        slots=[dict(s, when=when(s["start"], slot_zone)) for s in (offered.get("suggestions") or [])[:12]])


@blp.post("/sessions")
def book():
    person, refused = member_only()
    if refused:
        return refused
    try:
        api(person).post("scheduling", "/v1/sessions", json={"match_id": request.form.get("match_id", ""),
                                                            "start": request.form.get("start", "")})
        flash(_("Your session is booked."), "info")
    except ApiError as problem:
        flash(_("That time could not be booked: %(why)s Please choose another.", why=problem.detail or problem.title), "info")
    return redirect(url_for("my.my_sessions"), 303)


@blp.post("/sessions/<session_id>/cancel")
def cancel_session(session_id):
    person, refused = member_only()
    if refused:
        return refused
    try:
        api(person).post("scheduling", f"/v1/sessions/{session_id}/cancel", json={"reason": None})
        flash(_("Your session is cancelled. Your peer leader will be told."), "info")
    except ApiError as problem:
        flash(problem.detail or problem.title, "info")
    return redirect(url_for("my.my_sessions"), 303)


@blp.get("/meetings")
def meetings():
    person, refused = member_only()
    if refused:
        return refused
    client = api(person)
    zone = zone_of(profile(client))
    found = client.get("scheduling", "/v1/meetings", params={"limit": SHOWN, "offset": 0}) or {}
    mine = {r["meeting_id"]: r for r in (client.get("scheduling", "/v1/me/registrations",
                                                    params={"status": ["registered", "waitlisted"]}) or {}).get("items", [])}
    now = datetime.now(timezone.utc)
    window = {"from": now.isoformat(), "to": (now + timedelta(days=35)).isoformat()}
    shown = []
    for meeting in found.get("items", []):
        if meeting.get("status") == "cancelled":
            continue
        upcoming = client.get("scheduling", f"/v1/meetings/{meeting['id']}/occurrences", params=window) or []
        upcoming = upcoming.get("items", []) if isinstance(upcoming, dict) else upcoming
        next_one = next((o for o in upcoming if o.get("status", "scheduled") != "cancelled"), None)
        shown.append(dict(meeting, registration=mine.get(meeting["id"]),
                          next=when(next_one["start"], meeting.get("time_zone") or zone) if next_one else ""))
    return render_template("my/meetings.html", meetings=shown, calendar=session.pop("my_calendar_link", None))


@blp.post("/meetings/<meeting_id>/register")
def register(meeting_id):
    person, refused = member_only()
    if refused:
        return refused
    try:
        made = api(person).post("scheduling", f"/v1/meetings/{meeting_id}/registrations",
                                json={"member_id": person.person_id})
        if made and made.get("status") == "waitlisted":
            flash(_("The meeting is full: you are on the waiting list, number %(n)s.", n=made.get("waitlist_position") or "?"), "info")
        else:
            flash(_("You are registered. See you there!"), "info")
    except ApiError as problem:
        flash(problem.detail or problem.title, "info")
    return redirect(url_for("my.meetings"), 303)


@blp.post("/meetings/<meeting_id>/registrations/<registration_id>/cancel")
def unregister(meeting_id, registration_id):
    person, refused = member_only()
    if refused:
        return refused
    try:
        api(person).send("DELETE", "scheduling", f"/v1/meetings/{meeting_id}/registrations/{registration_id}")
        flash(_("Your place is cancelled. You are welcome back any time."), "info")
    except ApiError as problem:
        flash(problem.detail or problem.title, "info")
    return redirect(url_for("my.meetings"), 303)


@blp.post("/calendar-link")
def calendar_link():
    person, refused = member_only()
    if refused:
        return refused
    made = api(person).post("scheduling", "/v1/feed-tokens", json={"person_kind": "member", "person_id": person.person_id})
    session["my_calendar_link"] = (made or {}).get("url")
    return redirect(url_for("my.meetings") + "#calendar", 303)
