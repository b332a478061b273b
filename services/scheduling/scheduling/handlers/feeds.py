"""The feeds' use cases: the public Meeting Guide listing and site calendars, a member's or leader's
private calendar (with its feed token or a bearer token), and issuing feed tokens. Rendering (JSON
entries, iCalendar, the HTML page) is ``scheduling.feeds``; this module reads what it renders."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from shared.auth import Principal
from shared.errors import NotFound
from shared.mongo import utcnow
from shared.unit_of_work import UnitOfWork

from scheduling import access
from scheduling import feeds as render
from scheduling.config import Settings
from scheduling.handlers.meetings import find_occurrence
from scheduling.repository import Store


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_feed_token(uow: UnitOfWork, principal: Principal, person_kind: str, person_id: str) -> str:
    """A new secret for a person's private calendar feed (the previous one stops working)."""
    org = principal.organization_id
    token = secrets.token_urlsafe(32)
    store = Store.of(uow)
    person = store.person(person_kind, org, person_id)
    if person is None or not access.can_see_person(principal, person_kind, person_id, person):
        raise NotFound(f"No {person_kind} {person_id}.")
    store.save_person(person_kind, org, person_id, {"feed_token_hash": hash_token(token)})
    return token


def meeting_guide_feed(reader: Store, settings: Settings, org: str) -> list[dict]:
    """The organization's public, active, weekly meetings in the Meeting Guide format."""
    now = utcnow()
    meetings, _ = reader.meetings(org, public_only=True)
    entries = []
    for meeting in meetings:
        entry = render.meeting_guide_entry(meeting, reader.site(org, meeting.get("site_id")),
                                           base_url=settings.platform.public_base_url, now=now)
        if entry is not None:
            entries.append(entry)
    return sorted(entries, key=lambda e: (str(e["day"]), e["time"], e["slug"]))


def public_meeting(reader: Store, settings: Settings, org: str, slug: str) -> dict:
    """One public meeting's listing (where the Meeting Guide ``url`` points)."""
    meeting = reader.public_meeting_by_slug(org, slug)
    entry = meeting and render.meeting_guide_entry(meeting, reader.site(org, meeting.get("site_id")),
                                                   base_url=settings.platform.public_base_url, now=utcnow())
    if not entry:
        raise NotFound(f"No public meeting {slug}.")
    return entry


def public_meeting_page(reader: Store, org: str, slug: str) -> str:
    """One public meeting as a page for people (HTML): where the Meeting Guide ``url`` points."""
    meeting = reader.public_meeting_by_slug(org, slug)
    if meeting is None:
        raise NotFound(f"No public meeting {slug}.")
    return render.meeting_page(meeting, reader.site(org, meeting.get("site_id")), now=utcnow())


def site_calendar(reader: Store, org: str, site_id: str) -> bytes:
    site = reader.site(org, site_id)
    if site is None:
        raise NotFound(f"No site {site_id}.")
    now = utcnow()
    meetings, _ = reader.meetings(org, site_id=site_id, public_only=True)
    events = [e for m in meetings for e in render.meeting_events(m, site, now)]
    return render.render(render.new_calendar(f"{site.get('name') or site_id} meetings"), events)


def person_for_feed(reader: Store, kind: str, org: str, person_id: str, *, token: str | None,
                    principal: Principal | None) -> dict:
    """The person whose private calendar is asked for, if the caller may read it: with the person's
    feed token, or with a bearer token of their organization that may see them."""
    person = reader.person(kind, org, person_id)
    if person is None:
        raise NotFound(f"No {kind} {person_id}.")
    if principal is not None:
        if principal.organization_id == org and access.can_see_person(principal, kind, person_id, person):
            if kind == "member":
                reader.audit(principal, "read", "member_calendar", person_id, org, via="bearer")
            return person
    elif token and person.get("feed_token_hash") and hmac.compare_digest(hash_token(token), person["feed_token_hash"]):
        if kind == "member":
            reader.audit(None, "read", "member_calendar", person_id, org, via="feed_token")
        return person
    raise NotFound(f"No {kind} {person_id}.")


def member_calendar(reader: Store, org: str, member_id: str) -> bytes:
    now = utcnow()
    events = []
    for reg in reader.registrations_of_member(org, member_id, ("registered",)):
        meeting = reader.meeting(org, reg["meeting_id"])
        if meeting is None or meeting["status"] != "active":
            continue
        if reg.get("occurrence_id") is None:
            events += render.meeting_events(meeting, reader.site(org, meeting.get("site_id")), now)
        else:
            occ = find_occurrence(meeting, reg["occurrence_id"])
            if occ.status != "cancelled":
                events.append(render.occurrence_event(meeting, occ, now))
    sessions, _ = reader.sessions(org, member_id=member_id, status="booked", ends_after=now - timedelta(days=30))
    events += [render.session_event(s, now) for s in sessions]
    return render.render(render.new_calendar("My recovery meetings"), events)


def leader_calendar(reader: Store, org: str, leader_id: str) -> bytes:
    now = utcnow()
    meetings, _ = reader.meetings(org, leader_id=leader_id)
    events = [e for m in meetings for e in render.meeting_events(m, reader.site(org, m.get("site_id")), now)]
    sessions, _ = reader.sessions(org, leader_id=leader_id, status="booked", ends_after=now - timedelta(days=30))
    events += [render.session_event(s, now) for s in sessions]
    return render.render(render.new_calendar("Meetings I facilitate and my sessions"), events)
