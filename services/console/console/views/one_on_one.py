"""One-on-one sessions (issue 16, "Sessions"): a site's active matches (member and peer leader), and for one
match the times scheduling suggests (inside both people's weekly availability, free of their bookings),
shown in the site's zone; book one for the member, or another time; reschedule or cancel a booked one.

A time outside someone's usual times is refused by scheduling (422 naming ``outside_availability``); only
then does the page offer "Book anyway, outside their usual times", and the booking is sent again with it.
"""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import format_date

from console.i18n import gettext as _
from console.api_client import ApiError
from console.views import api
from console.views.meetings import local_time, my_sites, name_of_member, person_name, staff_only

blp = Blueprint("sessions_area", __name__)

OUTSIDE = "outside_availability"


def _leader_name(client, leader_id: str, known: dict) -> str:
    if leader_id not in known:
        try:
            known[leader_id] = person_name(client.get("intake", f"/v1/leaders/{leader_id}")) or _("A peer leader")
        except ApiError:
            known[leader_id] = _("A peer leader")
    return known[leader_id]


def when(value: str, zone: str) -> str:
    begins = local_time(value, zone)
    return f"{format_date(begins.date(), 'EEEE d MMMM')}, {begins:%H:%M}"


@blp.get("/sessions")
def matches():
    person, away = staff_only()
    if away:
        return away
    client = api(person)
    sites = my_sites(client)
    site = next((s for s in sites if s["id"] == request.args.get("site_id")), sites[0] if sites else None)
    pairs = []
    if site:
        found = client.get("matching", "/v1/matches", params={"status": "active", "site_id": site["id"],
                                                             "limit": 200, "offset": 0}).get("items", [])
        members, leaders = {}, {}
        pairs = sorted(({"id": m["id"], "member": name_of_member(client, m["member_id"], members),
                         "leader": _leader_name(client, m["leader_id"], leaders)} for m in found),
                       key=lambda p: p["member"].lower())
    return render_template("sessions/matches.html", sites=sites, site=site, pairs=pairs)


def _page(client, match_id: str, *, errors: dict | None = None, chosen: dict | None = None, offer_outside: str | None = None,
          status: int = 200):
    try:
        match = client.get("matching", f"/v1/matches/{match_id}")
    except ApiError as problem:
        if problem.status in (403, 404):
            abort(404)
        raise
    try:
        suggested = client.get("scheduling", f"/v1/matches/{match_id}/suggestions")
        zone, slots = suggested["time_zone"], suggested.get("suggestions", [])
    except ApiError as problem:
        if problem.status not in (404, 409):
            raise
        zone, slots = None, []
    booked = client.get("scheduling", "/v1/sessions", params={"match_id": match_id, "status": "booked",
                                                                "from": datetime.now(timezone.utc).isoformat(),
                                                                "limit": 50, "offset": 0}).get("items", [])
    zone = zone or (booked[0]["time_zone"] if booked else "UTC")
    slots = [dict(s, label=when(s["start"], zone)) for s in slots]
    booked = [dict(s, label=when(s["start"], s["time_zone"]), date_local=local_time(s["start"], s["time_zone"]).date().isoformat(),
                   time_local=f"{local_time(s['start'], s['time_zone']):%H:%M}") for s in booked]
    return render_template("sessions/match.html", match=match, zone=zone, slots=slots, booked=booked,
                           member=name_of_member(client, match["member_id"], {}), leader=_leader_name(client, match["leader_id"], {}),
                           errors=errors or {}, chosen=chosen or {}, offer_outside=offer_outside), status


@blp.get("/sessions/matches/<match_id>")
def match(match_id):
    person, away = staff_only()
    if away:
        return away
    return _page(api(person), match_id)


def _wanted_start(form) -> str | None:
    """The chosen suggested start (with its offset), or the typed date and time (local to the shown zone)."""
    if form.get("slot") and form.get("slot") != "other":
        return form["slot"]
    try:
        return datetime.fromisoformat(f"{form.get('date', '').strip()}T{form.get('time', '').strip()}").isoformat(timespec="minutes")
    except ValueError:
        return None


def _refused(problem: ApiError, key: str) -> tuple[dict, bool]:
    """The problem as field errors of the form ``key``, and whether it was only "outside their usual times"."""
    if problem.status == 409:
        return {key: [_("One of them already has something booked then. Choose another time.")]}, False
    fields = problem.field_errors()
    if OUTSIDE in fields:
        return {key: [_("This time is outside the usual times of the member or the peer leader.")]}, True
    if problem.status in (400, 404, 422):
        return {key: [" ".join(sum(fields.values(), [])) or problem.detail or problem.title]}, False
    raise problem


@blp.post("/sessions/matches/<match_id>/book")
def book(match_id):
    person, away = staff_only()
    if away:
        return away
    client = api(person)
    chosen = {k: request.form.get(k, "") for k in ("slot", "date", "time")}
    start = _wanted_start(request.form)
    if start is None:
        return _page(client, match_id, errors={"book": [_("Choose a suggested time, or enter a date and a time.")]},
                     chosen=chosen, status=422)
    body = {"match_id": match_id, "start": start, "on_behalf_of": "member", OUTSIDE: request.form.get(OUTSIDE) == "yes"}
    try:
        made = client.post("scheduling", "/v1/sessions", body)
    except ApiError as problem:
        errors, outside = _refused(problem, "book")
        return _page(client, match_id, errors=errors, chosen=chosen, offer_outside="book" if outside else None, status=422)
    flash(_("The session is booked for %(when)s (%(zone)s). Both of them are told.",
            when=when(made["start"], made["time_zone"]), zone=made["time_zone"]))
    return redirect(url_for("sessions_area.match", match_id=match_id), 303)


def _session_of_match(client, session_id: str, match_id: str) -> dict:
    try:
        session = client.get("scheduling", f"/v1/sessions/{session_id}")
    except ApiError as problem:
        if problem.status in (403, 404):
            abort(404)
        raise
    if session["match_id"] != match_id:
        abort(404)
    return session


@blp.post("/sessions/matches/<match_id>/sessions/<session_id>/reschedule")
def reschedule(match_id, session_id):
    person, away = staff_only()
    if away:
        return away
    client = api(person)
    _session_of_match(client, session_id, match_id)
    key = f"move-{session_id}"
    chosen = {key + "-date": request.form.get("date", ""), key + "-time": request.form.get("time", "")}
    start = _wanted_start({"date": request.form.get("date", ""), "time": request.form.get("time", "")})
    if start is None:
        return _page(client, match_id, errors={key: [_("Enter a date and a time.")]}, chosen=chosen, status=422)
    body = {"start": start, "on_behalf_of": "member", OUTSIDE: request.form.get(OUTSIDE) == "yes"}
    try:
        made = client.post("scheduling", f"/v1/sessions/{session_id}/reschedule", body)
    except ApiError as problem:
        errors, outside = _refused(problem, key)
        return _page(client, match_id, errors=errors, chosen=chosen, offer_outside=key if outside else None, status=422)
    flash(_("The session is moved to %(when)s (%(zone)s). Both of them are told.",
            when=when(made["start"], made["time_zone"]), zone=made["time_zone"]))
    return redirect(url_for("sessions_area.match", match_id=match_id), 303)


@blp.post("/sessions/matches/<match_id>/sessions/<session_id>/cancel")
def cancel(match_id, session_id):
    person, away = staff_only()
    if away:
        return away
    client = api(person)
    _session_of_match(client, session_id, match_id)
    client.post("scheduling", f"/v1/sessions/{session_id}/cancel",
                {"on_behalf_of": "member", "reason": request.form.get("reason", "").strip()[:500] or None})
    flash(_("The session is cancelled. Both of them are told."))
    return redirect(url_for("sessions_area.match", match_id=match_id), 303)
