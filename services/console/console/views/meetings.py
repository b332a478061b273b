"""Meetings (issue 16): the week of a site in the site's own time zone, and creating a recurring meeting.

Scheduling keeps meetings as an RFC 5545 rule in the site's local wall time; this page asks for what a
coordinator knows (the weekday, the time, how often) and builds the rule. One occurrence's page (who is
coming, the waitlist, registering a member, cancelling or moving it, attendance) is in ``meeting_day.py``.
Only staff (admins, coordinators) reach these pages; coordinators see only their sites (intake and
scheduling answer for their sites only, so the console shows only what they return).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import format_date, lazy_gettext

from console.i18n import gettext as _
from console import sessions
from console.api_client import NOT_YET_KNOWN, ApiError
from console.views import api, sign_in_first
from console.views.lookup import sites as site_records

blp = Blueprint("meetings", __name__)

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# The Meeting Guide types a coordinator is likely to choose, in plain words (scheduling accepts only the
# codes of the Meeting Guide list; these are a subset of it).
MEETING_TYPES = {
    "D": lazy_gettext("Discussion"), "SP": lazy_gettext("Speaker"), "ST": lazy_gettext("Step study"),
    "BE": lazy_gettext("Newcomer"), "B": lazy_gettext("Big Book"), "LIT": lazy_gettext("Literature"),
    "MED": lazy_gettext("Meditation"), "W": lazy_gettext("Women"), "M": lazy_gettext("Men"),
    "Y": lazy_gettext("Young people"), "LGBTQ": lazy_gettext("LGBTQ"), "X": lazy_gettext("Wheelchair access"),
    "CF": lazy_gettext("Child-friendly"), "ASL": lazy_gettext("American Sign Language"),
}
MODES = {"in_person": lazy_gettext("In person"), "online": lazy_gettext("Online"), "hybrid": lazy_gettext("Hybrid (in person and online)")}
RECURRENCES = {"weekly": lazy_gettext("Every week"), "biweekly": lazy_gettext("Every other week")}
# scheduling's field names -> this form's fields
FIELD_OF = {"rrule": "weekday", "first_start_local": "start_time", "duration_minutes": "duration_minutes",
            "conference_phone": "conference_url", "time_zone": "site_id", "co_facilitator_id": "facilitator_id"}


def staff_only():
    """The signed-in staff person, or a response sending anyone else away."""
    person = sessions.current_person()
    if person is None:
        return None, sign_in_first()
    if not person.is_staff:
        abort(404)
    return person, None


def weekday_names() -> list[str]:
    monday = date(2024, 1, 1)
    return [format_date(monday + timedelta(days=i), "EEEE") for i in range(7)]


def person_name(record: dict | None) -> str | None:
    if not record:
        return None
    first = record.get("preferred_name") or record.get("first_name") or ""
    return " ".join(part for part in (first, record.get("last_name")) if part) or None


def member_names(client, site_id: str | None) -> dict[str, str]:
    """Member id -> name, for a site's members (at most 200: intake's page)."""
    params = {"limit": 200, "offset": 0}
    if site_id:
        params["site_id"] = site_id
    try:
        found = client.get("intake", "/v1/members", params=params)
    except ApiError:
        return {}
    return {m["id"]: person_name(m) or m["id"] for m in found.get("items", [])}


def name_of_member(client, member_id: str, known: dict[str, str]) -> str:
    if member_id in known:
        return known[member_id]
    try:
        known[member_id] = person_name(client.get("intake", f"/v1/members/{member_id}")) or _("A member (name not available)")
    except ApiError:
        known[member_id] = _("A member (name not available)")
    return known[member_id]


def my_sites(client) -> list[dict]:
    return list(site_records(client).values())


def local_time(value: str, zone: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(ZoneInfo(zone))


def field_errors(problem: ApiError, mapping: dict[str, str], known: set[str], fallback: str) -> dict[str, list[str]]:
    """The API's field errors on this form's fields; what names no field of the form goes on ``fallback``."""
    errors: dict[str, list[str]] = {}
    if problem.type == NOT_YET_KNOWN:
        name = next(iter(problem.field_errors()), fallback)
        errors[mapping.get(name, name if name in known else fallback)] = [
            _("The platform is still taking in this person or site (just added). Please try again in a few seconds.")]
        return errors
    for name, messages in problem.field_errors().items():
        errors.setdefault(mapping.get(name, name if name in known else fallback), []).extend(messages)
    if not errors:
        errors[fallback] = [problem.detail or problem.title]
    return errors


# --- the week -------------------------------------------------------------------------------------

def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


@blp.get("/meetings")
def week():
    person, away = staff_only()
    if away:
        return away
    client = api(person)
    sites = my_sites(client)
    if not sites:
        return render_template("meetings/week.html", sites=[], site=None, days=[], zone=None)
    site = next((s for s in sites if s["id"] == request.args.get("site_id")), sites[0])
    zone = ZoneInfo(site["time_zone"])
    try:
        monday = _monday(date.fromisoformat(request.args.get("week", "")))
    except ValueError:
        monday = _monday(datetime.now(zone).date())
    start = datetime.combine(monday, time(0), zone)
    end = datetime.combine(monday + timedelta(days=7), time(0), zone)
    found = client.get("scheduling", "/v1/occurrences", params={
        "from": start.isoformat(), "to": end.isoformat(), "site_id": site["id"], "include_cancelled": "true"}) or []
    days = []
    for offset in range(7):
        day = monday + timedelta(days=offset)
        items = []
        for occurrence in found:
            begins = local_time(occurrence["start"], site["time_zone"])
            if begins.date() == day:
                ends = local_time(occurrence["end"], site["time_zone"])
                items.append(dict(occurrence, time=f"{begins:%H:%M}–{ends:%H:%M}", sort=begins))
        days.append({"date": day, "label": format_date(day, "EEEE d MMMM"), "is_today": day == datetime.now(zone).date(),
                     "meetings": sorted(items, key=lambda o: o["sort"])})
    return render_template("meetings/week.html", sites=sites, site=site, days=days, zone=site["time_zone"],
                           week_label=format_date(monday, "d MMMM y"),
                           previous_week=(monday - timedelta(days=7)).isoformat(),
                           next_week=(monday + timedelta(days=7)).isoformat())


# --- a new recurring meeting ----------------------------------------------------------------------

FORM_FIELDS = ("name", "site_id", "facilitator_id", "weekday", "start_time", "duration_minutes", "starting",
               "recurrence", "capacity", "types", "attendance_mode", "conference_url", "language")


def _blank_form(site_id: str | None) -> dict:
    return {"name": "", "site_id": site_id or "", "facilitator_id": "", "weekday": "MO", "start_time": "19:00",
            "duration_minutes": "60", "starting": "", "recurrence": "weekly", "capacity": "20", "types": [],
            "attendance_mode": "in_person", "conference_url": "", "language": "en"}


def _form_page(client, form: dict, errors: dict, status: int = 200):
    sites = my_sites(client)
    leaders = client.get("intake", "/v1/leaders", params={"limit": 200, "offset": 0, "status": "active"}).get("items", [])
    leaders = sorted(({"id": l["id"], "name": person_name(l) or l["id"], "site_ids": l.get("site_ids", [])} for l in leaders),
                     key=lambda l: l["name"].lower())
    return render_template("meetings/new.html", form=form, errors=errors, sites=sites, leaders=leaders,
                           weekdays=list(zip(WEEKDAYS, weekday_names())), types=MEETING_TYPES, modes=MODES,
                           recurrences=RECURRENCES), status


@blp.get("/meetings/new")
def new():
    person, away = staff_only()
    if away:
        return away
    return _form_page(api(person), _blank_form(request.args.get("site_id")), {})


def _check(form: dict, sites: dict) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not form["name"]:
        errors["name"] = [_("Give the meeting a name.")]
    if form["site_id"] not in sites:
        errors["site_id"] = [_("Choose one of your sites.")]
    if not form["facilitator_id"]:
        errors["facilitator_id"] = [_("Choose the peer leader who leads it.")]
    if form["weekday"] not in WEEKDAYS:
        errors["weekday"] = [_("Choose a day of the week.")]
    try:
        time.fromisoformat(form["start_time"])
    except ValueError:
        errors["start_time"] = [_("Enter a time like 19:00.")]
    if not form["duration_minutes"].isdigit() or not 5 <= int(form["duration_minutes"]) <= 720:
        errors["duration_minutes"] = [_("Enter how many minutes it lasts, from 5 to 720.")]
    if not form["capacity"].isdigit() or int(form["capacity"]) < 1:
        errors["capacity"] = [_("Enter how many people fit, 1 or more.")]
    if form["starting"]:
        try:
            date.fromisoformat(form["starting"])
        except ValueError:
            errors["starting"] = [_("Enter a date like 2026-03-03, or leave it empty to start this week.")]
    if form["recurrence"] not in RECURRENCES:
        errors["recurrence"] = [_("Choose how often it meets.")]
    if form["attendance_mode"] not in MODES:
        errors["attendance_mode"] = [_("Choose in person, online or hybrid.")]
    elif form["attendance_mode"] != "in_person" and not form["conference_url"].startswith(("https://", "http://")):
        errors["conference_url"] = [_("An online or hybrid meeting needs its link, starting with https://.")]
    return errors


@blp.post("/meetings/new")
def create():
    person, away = staff_only()
    if away:
        return away
    client = api(person)
    form = {name: request.form.get(name, "").strip() for name in FORM_FIELDS}
    form["types"] = [t for t in request.form.getlist("types") if t in MEETING_TYPES]
    form["for_peer_providers"] = request.form.get("for_peer_providers") == "yes"
    sites = {s["id"]: s for s in my_sites(client)}
    errors = _check(form, sites)
    if errors:
        return _form_page(client, form, errors, 422)
    zone = ZoneInfo(sites[form["site_id"]]["time_zone"])
    first = date.fromisoformat(form["starting"]) if form["starting"] else datetime.now(zone).date()
    first += timedelta(days=(WEEKDAYS.index(form["weekday"]) - first.weekday()) % 7)
    starts = time.fromisoformat(form["start_time"])
    rrule = f"FREQ=WEEKLY;BYDAY={form['weekday']}" + (";INTERVAL=2" if form["recurrence"] == "biweekly" else "")
    body = {"name": form["name"], "site_id": form["site_id"], "facilitator_id": form["facilitator_id"],
            "capacity": int(form["capacity"]), "types": form["types"], "attendance_mode": form["attendance_mode"],
            "language": form["language"] if form["language"] in ("en", "es") else "en", "rrule": rrule,
            "first_start_local": f"{first.isoformat()}T{starts:%H:%M}", "duration_minutes": int(form["duration_minutes"]),
            "for_peer_providers": form["for_peer_providers"]}
    if form["attendance_mode"] != "in_person":
        body["conference_url"] = form["conference_url"]
    try:
        meeting = client.post("scheduling", "/v1/meetings", body)
    except ApiError as problem:
        if problem.status == 409:
            clash = problem.body.get("clash") or {}
            errors = {"facilitator_id": [_("This peer leader already leads %(what)s at one of these times. Choose another time or leader.",
                                           what=clash.get("name") or _("something else"))]}
        elif problem.status in (400, 403, 404, 422):
            errors = field_errors(problem, FIELD_OF, set(FORM_FIELDS), "name")
        else:
            raise
        return _form_page(client, form, errors, 422)
    flash(_("%(name)s is on the calendar: the first one is on %(date)s at %(time)s.", name=meeting["name"],
            date=format_date(first, "EEEE d MMMM"), time=f"{starts:%H:%M}"))
    return redirect(url_for("meetings.week", site_id=form["site_id"], week=_monday(first).isoformat()), 303)
