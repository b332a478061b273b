"""Small look-ups the Messages, Audit, Staff and Today pages share: people's names and sites' time zones,
read through intake's API with the signed-in person's token (what intake will not show stays unnamed),
and a moment written in a site's zone with the zone shown."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import abort, g

from console import sessions
from console.api_client import ApiError
from console.views import sign_in_first


def staff_only(admin: bool = False):
    """(person, None) for signed-in staff (admins only when ``admin``), else (None, a response): strangers
    go to sign in, anyone else gets the 404 page (what the API refuses, the console never offers)."""
    person = sessions.current_person()
    if person is None:
        return None, sign_in_first()
    if not person.is_staff or (admin and person.role != "admin"):
        abort(404)
    return person, None


def full_name(record: dict | None) -> str | None:
    if not record:
        return None
    first = record.get("preferred_name") or record.get("first_name") or ""
    return " ".join(part for part in (first, record.get("last_name")) if part) or None


def member_name(client, member_id: str | None) -> str | None:
    """The member's name as staff know it, or None when intake will not say (another site, erased, not a
    member). Remembered for the request."""
    if not member_id:
        return None
    cache = g.setdefault("member_names", {})
    if member_id not in cache:
        try:
            cache[member_id] = full_name(client.get("intake", f"/v1/members/{member_id}"))
        except ApiError:
            cache[member_id] = None
    return cache[member_id]


def sites(client) -> dict[str, dict]:
    """The sites the person may see, by id (a coordinator: theirs). Remembered for the request."""
    if "sites" not in g:
        found = client.get("intake", "/v1/sites", params={"limit": 200, "offset": 0}) or {}
        items = found.get("items", found) if isinstance(found, dict) else found
        g.sites = {site["id"]: site for site in items or []}
    return g.sites


def home_zone(client) -> str:
    """The zone dates are read in: the person's first site's (UTC when they have none)."""
    found = sites(client)
    return next((s.get("time_zone") for s in found.values() if s.get("time_zone")), "UTC")


def local(moment: str | datetime | None, zone: str | None) -> str:
    """``2026-03-02 09:15 (America/Chicago)``: a moment in the zone, the zone shown."""
    if not moment:
        return ""
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    zone = zone or "UTC"
    return f"{when.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} ({zone})"


def pages(total: int, offset: int, limit: int) -> dict:
    """Where the previous and next pages start (None when there is none) and which page this is."""
    return {"previous": max(0, offset - limit) if offset > 0 else None,
            "next": offset + limit if offset + limit < total else None,
            "number": offset // limit + 1, "count": max(1, -(-total // limit))}
