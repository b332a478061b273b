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


IDS_PER_CALL, ID_MAX = 100, 64   # intake's bounds on ``?ids=``: ids per call, characters per id


# What a name needs of a member (intake's ``?fields=``: a page that names people receives no more of them).
NAME_FIELDS = ("first_name", "last_name", "preferred_name")


def by_ids(client, kind: str, ids, fields: tuple[str, ...] | None = None) -> dict[str, dict]:
    """The records (``kind``: "members" or "leaders") of ``ids`` that intake shows the signed-in person, by id,
    in one call per 100 ids (intake's ``?ids=``; the calls at once when there are several), with only
    ``fields`` of each when given. An id intake will not show (another site, erased,
    unknown) is simply absent, as is everything when intake refuses."""
    return _by_ids(client, kind, _wanted(ids), fields)


def names_by_ids(client, kind: str, ids) -> dict[str, dict]:
    """``by_ids`` with ``NAME_FIELDS``, kept for the person a few seconds (``Api.kept_records``): the names on
    lists that refresh themselves (Today) are not asked of intake, nor written to its audit log, at every
    refresh. Names only: what else a page reads of a person is asked each time."""
    try:
        return client.kept_records(f"{kind} names", _wanted(ids),
                                   lambda missing: _by_ids(client, kind, missing, NAME_FIELDS, raise_refused=True))
    except ApiError:   # intake refused: nobody named, and nothing kept
        return {}


def _wanted(ids) -> list[str]:
    """The ids worth asking for, each once, in order (a longer one than intake takes names nobody)."""
    return list(dict.fromkeys(i for i in ids if i and len(i) <= ID_MAX))


def _by_ids(client, kind: str, wanted: list[str], fields: tuple[str, ...] | None,
            raise_refused: bool = False) -> dict[str, dict]:
    chunks = [wanted[i:i + IDS_PER_CALL] for i in range(0, len(wanted), IDS_PER_CALL)]
    only = {"fields": list(fields)} if fields else {}

    def one(chunk):
        try:
            return client.get("intake", f"/v1/{kind}", params={"ids": chunk, "limit": len(chunk), "offset": 0,
                                                               **only}) or {}
        except ApiError:
            if raise_refused:
                raise
            return {}
    return {item["id"]: item for page in client.together(*(lambda c=c: one(c) for c in chunks))
            for item in page.get("items", [])}


def remember_member_names(client, member_ids) -> None:
    """Ask intake once for the names of the members a page will show (``member_name`` then answers from
    what this request already knows), or find them kept from the person's last pages (``names_by_ids``)."""
    cache = g.setdefault("member_names", {})
    unknown = [i for i in dict.fromkeys(member_ids) if i and i not in cache]
    if unknown:
        found = names_by_ids(client, "members", unknown)
        for member_id in unknown:
            cache[member_id] = full_name(found.get(member_id))


def member_name(client, member_id: str | None) -> str | None:
    """The member's name as staff know it, or None when intake will not say (another site, erased, not a
    member). Remembered for the request."""
    if not member_id:
        return None
    remember_member_names(client, [member_id])
    return g.member_names[member_id]


SITES_PAGE = 200   # intake's largest page


def sites(client) -> dict[str, dict]:
    """The sites the person may see, by id (a coordinator: theirs): every page's one way to them.
    Remembered for the request, and kept for the person a few seconds between pages (``Api.get_kept``):
    the console never changes a site, and nearly every page names one."""
    if "sites" not in g:
        items, offset = [], 0
        while True:
            found = client.get_kept("intake", "/v1/sites", params={"limit": SITES_PAGE, "offset": offset}) or {}
            items += found.get("items", [])
            offset += SITES_PAGE
            if offset >= found.get("total", 0):
                break
        g.sites = {site["id"]: site for site in items}
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
