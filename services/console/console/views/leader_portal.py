"""The peer leader's portal (issue 17, area 5): a peer leader's own pages, mostly on a phone.

Home (``/`` for a leader): new proposals with why (in sentences) to accept or decline with a reason, their
members (only those matched with them now, from intake's minimum-necessary ``/v1/me/members``), and their
week (their sessions and the meetings they facilitate, in their own time zone). ``/leader/members/<id>``:
one member (contact details only with the member's ``share:leader`` consent) and sessions with them: book
from the suggested times, reschedule, cancel. ``/leader/attendance/...``: attendance for a meeting they
facilitate. ``/leader/me``: availability, languages, bio, capacity and certifications (as their coordinator
set them), their calendar link, going on leave and coming back.

Every call uses the leader's own token: intake, matching and scheduling answer only the leader's own things,
so no page here can show a member who is not matched with them. In attendance lists, people registered
for a meeting who are not matched with the leader are not named (intake does not tell a leader who they are).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import format_date

from console.i18n import gettext as _
from console import sessions
from console.api_client import ApiError
from console.views import api, sign_in_first
from console.views.matching_words import language_name, when

blp = Blueprint("leader_portal", __name__, url_prefix="/leader")

WEEK_DAYS = 7
ATTENDANCE_OPENS_MINUTES = 30
OUTSIDE = "outside_availability"


def leader_only():
    """(person, None) for a signed-in peer leader, else (None, a response): strangers sign in, others 404."""
    person = sessions.current_person()
    if person is None:
        return None, sign_in_first()
    if person.role != "leader":
        abort(404)
    return person, None


def _me(client) -> dict:
    return (client.get("intake", "/v1/me") or {}).get("leader") or {}


def _zone(me: dict) -> str:
    return me.get("time_zone") or "UTC"


def _members(client) -> list[dict]:
    return client.get("intake", "/v1/me/members") or []


def _day_names() -> list[str]:
    return [_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"), _("Saturday"), _("Sunday")]


# --- home -----------------------------------------------------------------------------------------

def _periods(windows: list[dict]) -> set[str]:
    found = set()
    for window in windows or []:
        s = int(window.get("start", "00:00")[:2]) * 60 + int(window.get("start", "00:00")[3:5])
        e = int(window.get("end", "00:00")[:2]) * 60 + int(window.get("end", "00:00")[3:5])
        for name, lo, hi in (("morning", 0, 720), ("afternoon", 720, 1020), ("evening", 1020, 1440)):
            if s < hi and e > lo:
                found.add(name)
    return found


def why(member: dict, me: dict, breakdown: list[dict]) -> list[str]:
    """Why this member was proposed to this leader, in sentences, from what the leader may know: the
    member's languages and times, and which parts of matching's score counted (never the member's details)."""
    name = member.get("name") or _("This member")
    out = []
    base = lambda c: c.split("-")[0].lower()  # noqa: E731
    shared = sorted({base(c) for c in member.get("languages") or []} & {base(c) for c in me.get("languages") or []})
    if shared:
        out.append(_("You both speak %(languages)s.", languages=_(" and ").join(language_name(c) for c in shared)))
    common = _periods(member.get("availability")) & _periods(me.get("availability"))
    if common:
        words = {"morning": _("mornings"), "afternoon": _("afternoons"), "evening": _("evenings")}
        out.append(_("You are both free in the %(times)s.",
                     times=_(" and ").join(words[p] for p in ("morning", "afternoon", "evening") if p in common)))
    counted = {p.get("part") for p in breakdown or [] if (p.get("points") or 0) > 0}
    if "substances_pathway" in counted:
        out.append(_("Your recovery pathways and experience are alike."))
    if "lived_experience" in counted:
        out.append(_("You share some lived experience with %(name)s.", name=name))
    if "co_occurring" in counted:
        out.append(_("You both know mental health challenges from your own lives."))
    if "leader_load" in counted:
        out.append(_("You have room for one more person."))
    return out or [_("You were the best fit among the peer leaders who could take %(name)s.", name=name)]


def _week(client, me: dict, zone: str) -> list[dict]:
    """Sessions and facilitated meetings from now to a week ahead, sorted, in the leader's zone."""
    now = datetime.now(timezone.utc)
    until = now + timedelta(days=WEEK_DAYS)
    names = {m["member_id"]: m.get("name") for m in _members(client)}
    items = []
    found = client.get("scheduling", "/v1/sessions", params={
        "status": "booked", "from": (now - timedelta(hours=2)).isoformat(), "to": until.isoformat(),
        "limit": 100, "offset": 0}) or {}
    for s in found.get("items", []):
        items.append({"kind": "session", "start": s["start"], "when": when(s["start"], zone),
                      "title": _("Session with %(name)s", name=names.get(s["member_id"]) or _("a member")),
                      "member_id": s["member_id"] if s["member_id"] in names else None})
    for meeting in _facilitated(client, me):
        for o in client.get("scheduling", f"/v1/meetings/{meeting['id']}/occurrences", params={
                "from": (now - timedelta(hours=3)).isoformat(), "to": until.isoformat()}) or []:
            items.append({"kind": "meeting", "start": o["start"], "when": when(o["start"], zone), "title": o["name"],
                          "meeting_id": meeting["id"], "occurrence_id": o["occurrence_id"],
                          "open": datetime.fromisoformat(o["start"]) <= now + timedelta(minutes=ATTENDANCE_OPENS_MINUTES)})
    return sorted(items, key=lambda i: i["start"])


def _facilitated(client, me: dict) -> list[dict]:
    found = client.get("scheduling", "/v1/meetings", params={"leader_id": me.get("id"), "limit": 200, "offset": 0}) or {}
    return [m for m in found.get("items", [])
            if me.get("id") in (m.get("facilitator_id"), m.get("co_facilitator_id"))]


def home():
    person, refused = leader_only()
    if refused:
        return refused
    client = api(person)
    me = _me(client)
    zone = _zone(me)
    members = _members(client)
    by_match = {m["match_id"]: m for m in members}
    proposed = (client.get("matching", "/v1/matches", params={"status": "proposed", "limit": 50, "offset": 0}) or {}).get("items", [])
    proposals = []
    for match in proposed:
        member = by_match.get(match["id"])
        if member is None:   # intake has not heard of it yet, or it is no longer open
            continue
        proposals.append({"id": match["id"], "name": member.get("name") or _("A member"),
                          "reasons": why(member, me, match.get("breakdown")),
                          "expires": when(match.get("expires_at"), zone) if match.get("expires_at") else ""})
    active = {m["id"] for m in (client.get("matching", "/v1/matches", params={"status": "active", "limit": 200, "offset": 0})
                                or {}).get("items", [])}
    # matching answers first; intake hears of an acceptance a moment later
    current = [m for m in members if m["match_id"] in active or m.get("match_status") in ("accepted", "active")]
    if me.get("status") != "active":   # on leave: their members are being passed to other peer leaders
        current, proposals = [], []
    return render_template("leader_portal/home.html", me=me, zone=zone, proposals=proposals, members=current,
                           stretched_since=_since(me),
                           week=_week(client, me, zone) if me.get("status") != "retired" else [],
                           groups=_support_groups(client, zone))


def _since(me: dict) -> str | None:
    """The day the leader said they are stretched, in words (None when they have not)."""
    since = (me.get("stretched") or {}).get("since")
    if not since:
        return None
    try:
        return format_date(datetime.fromisoformat(since.replace("Z", "+00:00")).date(), "long")
    except ValueError:
        return since[:10]


@blp.post("/stretched")
def stretched():
    """"I'm stretched — pause new proposals" (PUT /v1/me/stretched, with an optional note only staff read), or
    "I'm ready for new members again" (DELETE /v1/me/stretched)."""
    person, refused = leader_only()
    if refused:
        return refused
    client = api(person)
    pause = request.form.get("to") != "ready"
    try:
        if pause:
            client.send("PUT", "intake", "/v1/me/stretched",
                        json={"note": (request.form.get("note") or "").strip()[:500] or None})
        else:
            client.send("DELETE", "intake", "/v1/me/stretched")
    except ApiError as problem:
        if problem.status not in (403, 409, 422):
            raise
        flash(problem.detail or problem.title)
        return redirect(url_for("home.index"), 303)
    if pause:
        flash(_("Thank you for saying so. No new members will be proposed to you until you are ready; your "
                "coordinator has been told, and the members you support now stay with you."))
    else:
        flash(_("Welcome back. New members can be proposed to you again."))
    return redirect(url_for("home.index"), 303)


@blp.post("/proposals/<match_id>/accept")
def accept(match_id):
    person, refused = leader_only()
    if refused:
        return refused
    try:
        api(person).post("matching", f"/v1/matches/{match_id}/accept")
        flash(_("You accepted. You can now book a first session together."))
    except ApiError as problem:
        if problem.status not in (403, 404, 409):
            raise
        flash(_("This proposal can no longer be answered."))
    return redirect(url_for("home.index"), 303)


@blp.post("/proposals/<match_id>/decline")
def decline(match_id):
    person, refused = leader_only()
    if refused:
        return refused
    reason = (request.form.get("reason") or "").strip()[:500]
    if not reason:
        flash(_("Please say why you are declining, so we can find a better fit."))
        return redirect(url_for("home.index", _anchor=f"proposal-{match_id}"), 303)
    try:
        api(person).post("matching", f"/v1/matches/{match_id}/decline", json={"reason": reason})
        flash(_("Thank you. We will look for another peer leader for this person."))
    except ApiError as problem:
        if problem.status not in (403, 404, 409, 422):
            raise
        flash(_("This proposal can no longer be answered."))
    return redirect(url_for("home.index"), 303)


# --- support groups for peer providers ------------------------------------------------------------

def _support_groups(client, zone: str) -> list[dict]:
    """The organization's support groups for peer leaders, each with its next time and the leader's own seat."""
    groups = (client.get("scheduling", "/v1/meetings", params={"for_peer_providers": "true", "limit": 50,
                                                                "offset": 0}) or {}).get("items", [])
    if not groups:
        return []
    seats = {r["meeting_id"]: r for r in (client.get("scheduling", "/v1/me/registrations") or {}).get("items", [])
             if r.get("occurrence_id") is None}
    now = datetime.now(timezone.utc)
    out = []
    for g in groups:
        upcoming = client.get("scheduling", f"/v1/meetings/{g['id']}/occurrences", params={
            "from": now.isoformat(), "to": (now + timedelta(days=62)).isoformat()}) or []
        seat = seats.get(g["id"])
        out.append({"id": g["id"], "name": g["name"], "online": g.get("attendance_mode") != "in_person",
                    "next": when(upcoming[0]["start"], zone) if upcoming else "",
                    "seat": seat and seat["id"], "waiting": bool(seat) and seat.get("status") == "waitlisted",
                    "position": seat and seat.get("waitlist_position")})
    return out


@blp.post("/support-groups/<meeting_id>/join")
def join_group(meeting_id):
    person, refused = leader_only()
    if refused:
        return refused
    client = api(person)
    me = _me(client)
    try:
        seat = client.post("scheduling", f"/v1/meetings/{meeting_id}/registrations",
                           {"member_id": me.get("id"), "registrant_kind": "leader"})
    except ApiError as problem:
        if problem.status not in (403, 404, 409, 422):
            raise
        flash(_("You could not join this group just now.") if problem.status != 409 else _("You have already joined this group."))
        return redirect(url_for("home.index", _anchor="support-heading"), 303)
    if seat.get("status") == "waitlisted":
        flash(_("The group is full: you are number %(n)d in line for a seat.", n=seat.get("waitlist_position") or 1))
    else:
        flash(_("You joined. Take good care of yourself too."))
    return redirect(url_for("home.index", _anchor="support-heading"), 303)


@blp.post("/support-groups/<meeting_id>/leave/<registration_id>")
def leave_group(meeting_id, registration_id):
    person, refused = leader_only()
    if refused:
        return refused
    try:
        api(person).send("DELETE", "scheduling", f"/v1/meetings/{meeting_id}/registrations/{registration_id}")
    except ApiError as problem:
        if problem.status not in (403, 404, 409):
            raise
    flash(_("You left the group. You can join again whenever you like."))
    return redirect(url_for("home.index", _anchor="support-heading"), 303)


# --- one member and sessions with them -------------------------------------------------------------

def _member_page(client, member_id: str, *, errors: dict | None = None, status: int = 200, offer_outside: str | None = None):
    try:
        member = client.get("intake", f"/v1/me/members/{member_id}")
    except ApiError as problem:
        if problem.status in (403, 404):
            abort(404)
        raise
    if member.get("match_status") == "proposed":   # intake hears of an acceptance a moment after matching
        try:
            if client.get("matching", f"/v1/matches/{member['match_id']}").get("status") == "active":
                member = dict(member, match_status="active")
        except ApiError as problem:
            if problem.status not in (403, 404):
                raise
    me = _me(client)
    zone = _zone(me)
    slots = []
    if member.get("match_status") in ("accepted", "active"):
        try:
            suggested = client.get("scheduling", f"/v1/matches/{member['match_id']}/suggestions")
            slots = [dict(s, label=when(s["start"], zone)) for s in suggested.get("suggestions", [])]
        except ApiError as problem:
            if problem.status not in (404, 409, 422):
                raise
    booked = (client.get("scheduling", "/v1/sessions", params={
        "match_id": member["match_id"], "status": "booked", "from": datetime.now(timezone.utc).isoformat(),
        "limit": 50, "offset": 0}) or {}).get("items", [])
    booked = [dict(s, label=when(s["start"], zone),
                   date_local=datetime.fromisoformat(s["start"]).astimezone(ZoneInfo(zone)).date().isoformat(),
                   time_local=f"{datetime.fromisoformat(s['start']).astimezone(ZoneInfo(zone)):%H:%M}") for s in booked]
    days = _day_names()
    times = [f"{days[w['day']]} {w['start']}–{w['end']}" for w in member.get("availability") or []]
    return render_template("leader_portal/member.html", member=member, zone=zone, slots=slots, booked=booked,
                           spoken=[language_name(c) for c in member.get("languages") or []], times=times,
                           errors=errors or {}, offer_outside=offer_outside), status


@blp.get("/members/<member_id>")
def member(member_id):
    person, refused = leader_only()
    if refused:
        return refused
    return _member_page(api(person), member_id)


def _match_of(client, member_id: str) -> str:
    try:
        return client.get("intake", f"/v1/me/members/{member_id}")["match_id"]
    except ApiError as problem:
        if problem.status in (403, 404):
            abort(404)
        raise


def _local_start(date_text: str, time_text: str, zone: str) -> str | None:
    try:
        return datetime.fromisoformat(f"{date_text.strip()}T{time_text.strip()}").replace(tzinfo=ZoneInfo(zone)).isoformat()
    except ValueError:
        return None


def _refusal(problem: ApiError, key: str) -> tuple[dict, bool]:
    if problem.status == 409:
        return {key: [_("One of you already has something booked then. Choose another time.")]}, False
    fields = problem.field_errors()
    if OUTSIDE in fields:
        return {key: [_("This time is outside your usual times or the member's.")]}, True
    if problem.status in (400, 404, 422):
        return {key: [" ".join(sum(fields.values(), [])) or problem.detail or problem.title]}, False
    raise problem


@blp.post("/members/<member_id>/book")
def book(member_id):
    person, refused = leader_only()
    if refused:
        return refused
    client = api(person)
    match_id = _match_of(client, member_id)
    zone = _zone(_me(client))
    slot = request.form.get("slot") or ""
    start = slot if slot and slot != "other" else _local_start(request.form.get("date", ""), request.form.get("time", ""), zone)
    if not start:
        return _member_page(client, member_id, errors={"book": [_("Choose a suggested time, or enter a date and a time.")]}, status=422)
    try:
        made = client.post("scheduling", "/v1/sessions", {"match_id": match_id, "start": start,
                                                          OUTSIDE: request.form.get(OUTSIDE) == "yes"})
    except ApiError as problem:
        errors, outside = _refusal(problem, "book")
        return _member_page(client, member_id, errors=errors, status=422, offer_outside="book" if outside else None)
    flash(_("Booked for %(when)s. You and the member are both told.", when=when(made["start"], zone)))
    return redirect(url_for("leader_portal.member", member_id=member_id), 303)


def _own_session(client, member_id: str, session_id: str) -> None:
    match_id = _match_of(client, member_id)
    try:
        found = client.get("scheduling", f"/v1/sessions/{session_id}")
    except ApiError as problem:
        if problem.status in (403, 404):
            abort(404)
        raise
    if found.get("match_id") != match_id:
        abort(404)


@blp.post("/members/<member_id>/sessions/<session_id>/reschedule")
def reschedule(member_id, session_id):
    person, refused = leader_only()
    if refused:
        return refused
    client = api(person)
    _own_session(client, member_id, session_id)
    zone = _zone(_me(client))
    key = f"move-{session_id}"
    start = _local_start(request.form.get("date", ""), request.form.get("time", ""), zone)
    if not start:
        return _member_page(client, member_id, errors={key: [_("Enter a date and a time.")]}, status=422)
    try:
        made = client.post("scheduling", f"/v1/sessions/{session_id}/reschedule",
                           {"start": start, OUTSIDE: request.form.get(OUTSIDE) == "yes"})
    except ApiError as problem:
        errors, outside = _refusal(problem, key)
        return _member_page(client, member_id, errors=errors, status=422, offer_outside=key if outside else None)
    flash(_("Moved to %(when)s. You and the member are both told.", when=when(made["start"], zone)))
    return redirect(url_for("leader_portal.member", member_id=member_id), 303)


@blp.post("/members/<member_id>/sessions/<session_id>/cancel")
def cancel(member_id, session_id):
    person, refused = leader_only()
    if refused:
        return refused
    client = api(person)
    _own_session(client, member_id, session_id)
    client.post("scheduling", f"/v1/sessions/{session_id}/cancel",
                {"reason": (request.form.get("reason") or "").strip()[:500] or None})
    flash(_("The session is cancelled. You and the member are both told."))
    return redirect(url_for("leader_portal.member", member_id=member_id), 303)


# --- attendance -----------------------------------------------------------------------------------

def _occurrence(client, me: dict, meeting_id: str, occurrence_id: str) -> tuple[dict, dict]:
    meeting = next((m for m in _facilitated(client, me) if m["id"] == meeting_id), None)
    if meeting is None:
        abort(404)
    now = datetime.now(timezone.utc)
    found = client.get("scheduling", f"/v1/meetings/{meeting_id}/occurrences", params={
        "from": (now - timedelta(days=14)).isoformat(), "to": (now + timedelta(days=60)).isoformat(),
        "include_cancelled": "true"}) or []
    occurrence = next((o for o in found if o["occurrence_id"] == occurrence_id), None)
    if occurrence is None:
        abort(404)
    occurrence = dict(occurrence, when=when(occurrence["start"], _zone(me)),
                      has_begun=datetime.fromisoformat(occurrence["start"]) <= now + timedelta(minutes=ATTENDANCE_OPENS_MINUTES))
    return meeting, occurrence


def _roll(client, meeting_id: str, occurrence_id: str) -> list[dict]:
    """Registered people of this day; names only of the leader's own members (the rest are numbered)."""
    names = {m["member_id"]: m.get("name") for m in _members(client)}
    items = [r for r in (client.get("scheduling", f"/v1/meetings/{meeting_id}/registrations") or {}).get("items", [])
             if r.get("status") == "registered" and r.get("occurrence_id") in (None, occurrence_id)]
    named = sorted((r for r in items if names.get(r["member_id"])), key=lambda r: names[r["member_id"]].lower())
    others = [r for r in items if not names.get(r["member_id"])]
    return ([dict(r, name=names[r["member_id"]]) for r in named]
            + [dict(r, name=_("Registered person %(number)d", number=i)) for i, r in enumerate(others, 1)])


@blp.get("/attendance/<meeting_id>/<occurrence_id>")
def attendance(meeting_id, occurrence_id):
    person, refused = leader_only()
    if refused:
        return refused
    client = api(person)
    me = _me(client)
    meeting, occurrence = _occurrence(client, me, meeting_id, occurrence_id)
    present: set[str] = set()
    recorded = None
    if occurrence["has_begun"] and occurrence["status"] != "cancelled":
        try:
            taken = client.get("scheduling", f"/v1/meetings/{meeting_id}/occurrences/{occurrence_id}/attendance") or {}
        except ApiError as problem:
            if problem.status != 404:
                raise
            taken = {}
        present, recorded = set(taken.get("present_member_ids") or []), taken.get("recorded_at")
    return render_template("leader_portal/attendance.html", meeting=meeting, occurrence=occurrence, zone=_zone(me),
                           registered=_roll(client, meeting_id, occurrence_id), present=present, recorded=recorded,
                           errors={})


@blp.post("/attendance/<meeting_id>/<occurrence_id>")
def save_attendance(meeting_id, occurrence_id):
    person, refused = leader_only()
    if refused:
        return refused
    client = api(person)
    me = _me(client)
    meeting, occurrence = _occurrence(client, me, meeting_id, occurrence_id)
    registered = _roll(client, meeting_id, occurrence_id)
    everyone = {r["member_id"] for r in registered}
    present = {m for m in request.form.getlist("present") if m in everyone}
    try:
        client.request("PUT", "scheduling", f"/v1/meetings/{meeting_id}/occurrences/{occurrence_id}/attendance",
                       json={"present_member_ids": sorted(present), "absent_member_ids": sorted(everyone - present)})
    except ApiError as problem:
        if problem.status not in (400, 409, 422):
            raise
        return render_template("leader_portal/attendance.html", meeting=meeting, occurrence=occurrence, zone=_zone(me),
                               registered=registered, present=present, recorded=None,
                               errors={"present": [problem.detail or problem.title]}), 422
    flash(_("Attendance saved: %(present)d of %(total)d here.", present=len(present), total=len(everyone)))
    return redirect(url_for("leader_portal.attendance", meeting_id=meeting_id, occurrence_id=occurrence_id), 303)


# --- my details: availability, languages, bio; certifications; calendar link; leave -------------------

def _profile_page(client, *, me: dict | None = None, errors: dict | None = None, form: dict | None = None,
                  calendar_url: str | None = None, status: int = 200):
    me = me or _me(client)
    days = _day_names()
    windows = {}
    for w in me.get("availability") or []:
        windows.setdefault(w["day"], w)
    rows = [{"day": d, "name": days[d], "start": (form or {}).get(f"start-{d}", windows.get(d, {}).get("start", "")),
             "end": (form or {}).get(f"end-{d}", windows.get(d, {}).get("end", ""))} for d in range(7)]
    today = datetime.now(timezone.utc).date()
    certifications = []
    for c in me.get("certifications") or []:
        expires = c.get("expires_on")
        certifications.append({"name": c.get("name"), "issuer": c.get("issuer"),
                               "expires": format_date(datetime.fromisoformat(expires[:10]).date(), "long") if expires else None,
                               "expired": bool(expires) and expires[:10] < today.isoformat()})
    return render_template("leader_portal/profile.html", me=me, zone=_zone(me), rows=rows, errors=errors or {},
                           bio=(form or {}).get("bio", me.get("bio") or ""),
                           languages_text=(form or {}).get("languages", ", ".join(me.get("languages") or [])),
                           certifications=certifications, calendar_url=calendar_url), status


@blp.get("/me")
def profile():
    person, refused = leader_only()
    if refused:
        return refused
    return _profile_page(api(person))


@blp.post("/me")
def save_profile():
    person, refused = leader_only()
    if refused:
        return refused
    client = api(person)
    form = request.form.to_dict()
    errors: dict[str, list[str]] = {}
    availability = []
    for d in range(7):
        start, end = (form.get(f"start-{d}") or "").strip(), (form.get(f"end-{d}") or "").strip()
        if start or end:
            if not (start and end) or end <= start:
                errors[f"day-{d}"] = [_("Give a start and an end, the end after the start.")]
            else:
                availability.append({"day": d, "start": start, "end": end})
    languages = [c.strip() for c in (form.get("languages") or "").replace(";", ",").split(",") if c.strip()]
    if not languages:
        errors["languages"] = [_("Give at least one language, for example: en, es.")]
    if errors:
        return _profile_page(client, errors=errors, form=form, status=422)
    try:
        client.send("PATCH", "intake", "/v1/me", json={"bio": (form.get("bio") or "").strip() or None,
                                                       "languages": languages, "availability": availability})
    except ApiError as problem:
        if problem.status not in (400, 403, 422):
            raise
        fields = problem.field_errors()
        errors = {("languages" if k.startswith("languages") else "availability" if k.startswith("availability") else "bio"
                   if k == "bio" else "form"): v for k, v in fields.items()} or {"form": [problem.detail or problem.title]}
        return _profile_page(client, errors=errors, form=form, status=422)
    flash(_("Saved. New proposals follow your new times and languages."))
    return redirect(url_for("leader_portal.profile"), 303)


@blp.post("/me/calendar-link")
def calendar_link():
    person, refused = leader_only()
    if refused:
        return refused
    client = api(person)
    me = _me(client)
    made = client.post("scheduling", "/v1/feed-tokens", {"person_kind": "leader", "person_id": me["id"]})
    return _profile_page(client, me=me, calendar_url=made["url"])


@blp.post("/me/leave")
def go_on_leave():
    person, refused = leader_only()
    if refused:
        return refused
    client = api(person)
    me = _me(client)
    to_status = "active" if request.form.get("to") == "active" else "on_leave"
    try:
        client.post("intake", f"/v1/leaders/{me['id']}/status",
                    {"to_status": to_status, "reason": (request.form.get("reason") or "").strip()[:500] or None})
    except ApiError as problem:
        if problem.status not in (403, 409, 422):
            raise
        flash(problem.detail or problem.title)
        return redirect(url_for("leader_portal.profile"), 303)
    if to_status == "on_leave":
        flash(_("You are on leave. Your members are being matched with other peer leaders, and no new proposals come to you. Take care."))
    else:
        flash(_("Welcome back. New proposals can come to you again."))
    return redirect(url_for("home.index"), 303)
