"""The home page by role. Staff (admins, coordinators): "Today" — people waiting for a peer leader (with
the reason), proposals waiting for an answer, risk flags to follow up, today's meetings in each site's own
time zone, and messages that failed; each item links to where it is handled. ``/today/sections`` answers
the same sections alone: static/today.js asks for it every few seconds and swaps them in, so the page
follows what happens without a reload (without JavaScript, a reload does the same).
Peer leaders and members: their portal's home (leader_portal.home, my.home), reached by this same view so
the session is checked in one place (the app's expiry rule, then ``current_person()``); a leader token
without a leader record, and the platform operator: a page that says plainly what is coming, not a page
that pretends to work.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, render_template

from console import sessions
from console.api_client import ApiError
from console.views import api, leader_portal, my, sign_in_first
from console.views.lookup import (NAME_FIELDS, full_name, home_zone, local, member_name, names_by_ids,
                                  remember_member_names, sites)

blp = Blueprint("home", __name__)

WAITING_SHOWN = 20
SHOWN = 10
REFRESH_SECONDS = 5


@blp.get("/")
def index():
    person = sessions.current_person()
    if person is None:
        return sign_in_first()
    if person.role == "leader":
        try:
            return leader_portal.home()
        except ApiError as problem:
            if problem.status not in (403, 404):   # no leader record for this token: the plain home page
                raise
    if person.role == "member":
        return my.home()
    if not person.is_staff:
        return render_template("home_coming.html", role=person.role)
    return render_template("today.html", refresh_seconds=REFRESH_SECONDS, **_today(person))


@blp.get("/today/sections")
def sections():
    """Today's sections alone (the page's script swaps them in); signed-in staff only."""
    person = sessions.current_person()
    if person is None:
        return sign_in_first()
    if not person.is_staff:
        abort(404)
    return render_template("today/_sections.html", **_today(person))


def _today(person) -> dict:
    """Today's sections: six independent calls at once, then the names of the people shown in two more
    (intake's members and leaders by ids)."""
    client = api(person)
    waiting, proposals, flagged, failed, site_list, meetings = client.together(
        lambda: client.get("matching", "/v1/waitlist", params={"limit": WAITING_SHOWN, "offset": 0}),
        lambda: client.get("matching", "/v1/matches", params={"status": "proposed", "limit": SHOWN, "offset": 0}),
        lambda: client.get("intake", "/v1/members", params={"flagged": "true", "limit": SHOWN, "offset": 0,
                                                            "fields": [*NAME_FIELDS, "site_id"]}),
        lambda: client.get("notifications", "/v1/deliveries", params={"status": "failed", "limit": SHOWN, "offset": 0}),
        lambda: sites(client),
        lambda: _todays_meetings(client))
    member_ids = ([w["member_id"] for w in waiting.get("items", [])] + [m["member_id"] for m in proposals.get("items", [])]
                  + [d["recipient_id"] for d in failed.get("items", []) if d.get("recipient_kind") == "member"])
    _, leaders = client.together(lambda: remember_member_names(client, member_ids),
                                 lambda: names_by_ids(client, "leaders", [m.get("leader_id") for m in proposals.get("items", [])]))
    zone = home_zone(client)
    people = [dict(item, name=member_name(client, item["member_id"])) for item in waiting.get("items", [])]
    return {"waiting": people, "waiting_total": waiting.get("total", len(people)),
            "proposals": [dict(m, name=member_name(client, m["member_id"]), leader=full_name(leaders.get(m.get("leader_id"))),
                               expires=local(m.get("expires_at"), (site_list.get(m.get("site_id")) or {}).get("time_zone") or zone))
                          for m in proposals.get("items", [])],
            "proposals_total": proposals.get("total", 0),
            "flagged": [dict(m, name=full_name(m), site_name=(site_list.get(m.get("site_id")) or {}).get("name"))
                        for m in flagged.get("items", [])],
            "flagged_total": flagged.get("total", 0),
            "failed_total": failed.get("total", 0),
            "failed": [dict(d, name=member_name(client, d["recipient_id"]) if d.get("recipient_kind") == "member" else None,
                            when=local(d.get("created_at"), (site_list.get(d.get("site_id") or "") or {}).get("time_zone") or zone))
                       for d in failed.get("items", [])],
            "meetings": meetings}


def _todays_meetings(client, now: datetime | None = None) -> list[dict]:
    """Occurrences whose start falls on today's date in their own site's time zone (every zone is within
    14 hours of UTC, so a window of UTC now +- 38 hours holds all of them)."""
    now = now or datetime.now(timezone.utc)
    found = client.get("scheduling", "/v1/occurrences", params={
        "from": (now - timedelta(hours=38)).isoformat(), "to": (now + timedelta(hours=38)).isoformat()})
    today = []
    for occurrence in found or []:
        zone = ZoneInfo(occurrence.get("time_zone") or "UTC")
        start = datetime.fromisoformat(occurrence["start"]).astimezone(zone)
        if start.date() == now.astimezone(zone).date():
            end = datetime.fromisoformat(occurrence["end"]).astimezone(zone)
            today.append(dict(occurrence, local_time=f"{start:%H:%M}–{end:%H:%M}", zone=occurrence.get("time_zone")))
    return sorted(today, key=lambda o: o["start"])
