"""The home page by role. Staff (admins, coordinators): "Today" — people waiting for a peer leader, with
the reason, and today's meetings in each site's own time zone. Peer leaders, members and the platform
operator: a page that says plainly what is coming (issues 16 and 17), not a page that pretends to work.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template

from console import sessions
from console.api_client import ApiError
from console.views import api, sign_in_first

blp = Blueprint("home", __name__)

WAITING_SHOWN = 20


@blp.get("/")
def index():
    person = sessions.current_person()
    if person is None:
        return sign_in_first()
    if not person.is_staff:
        return render_template("home_coming.html", role=person.role)
    client = api(person)
    waiting = client.get("matching", "/v1/waitlist", params={"limit": WAITING_SHOWN, "offset": 0})
    people = [dict(item, name=_member_name(client, item["member_id"])) for item in waiting.get("items", [])]
    return render_template("today.html", waiting=people, waiting_total=waiting.get("total", len(people)),
                           meetings=_todays_meetings(client))


def _member_name(client, member_id: str) -> str | None:
    """The name staff know the person by (their preferred name first); None if intake will not say."""
    try:
        member = client.get("intake", f"/v1/members/{member_id}")
    except ApiError:
        return None
    first = member.get("preferred_name") or member.get("first_name") or ""
    return " ".join(part for part in (first, member.get("last_name")) if part) or None


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
