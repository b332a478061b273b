"""What a member reads about themselves in scheduling: their registrations (with their place in line),
the times suggested with their leader, and their export. The member's id is the token's
(``access.own_member_id``), never the caller's choice."""
from __future__ import annotations

from shared.auth import Principal
from shared.errors import NotFound
from shared.mongo import utcnow

from scheduling import access, model
from scheduling.config import Settings
from scheduling.handlers.sessions import current_suggestions
from scheduling.repository import Store


def my_registrations(reader: Store, principal: Principal, statuses) -> list[dict]:
    """The member's registrations, each with its place in line while waitlisted (a peer leader: their own
    seats at support groups for peer providers)."""
    org = principal.organization_id
    kind = "leader" if principal.role == "leader" else "member"
    own_id = access.own_leader_id(principal) if kind == "leader" else access.own_member_id(principal)
    regs = [r for r in reader.all_registrations_of_member(org, own_id)
            if r["status"] in statuses and r.get("registrant_kind", "member") == kind]
    now, seats = utcnow(), {}
    for reg in regs:
        if reg["meeting_id"] not in seats:
            seats[reg["meeting_id"]] = model.seats_of(reader.registrations(org, reg["meeting_id"]), now)
    return [{**r, "waitlist_position": model.waitlist_position(seats[r["meeting_id"]], r["_id"])
             if r["status"] == "waitlisted" else None} for r in regs]


def my_suggestions(reader: Store, settings: Settings, principal: Principal) -> dict:
    """Times suggested for a session with the member's leader (their active match)."""
    member_id = access.own_member_id(principal)
    active = [m for m in reader.matches_of_member(principal.organization_id, member_id) if m.get("status") == "active"]
    if not active:
        raise NotFound("You have no active match to book a session in (yet).")
    return current_suggestions(reader, settings, principal, active[0]["match_id"])


def _plain(doc: dict) -> dict:
    """A stored document as exported: the organization-scoped key gives way to the plain id."""
    return {k: v for k, v in doc.items() if k != "_id"} | {"id": doc["_id"]}


def export(reader: Store, principal: Principal) -> dict:
    """Everything scheduling holds about the member (right of access): its copy of them (from intake's
    events; the calendar feed token only as whether one is set), their matches (from matching's events),
    sessions, times suggested for them, registrations (cancelled too), their attendance marks (their own
    only: the other attendees' ids are left out) and the reminders sent to them."""
    org, member_id = principal.organization_id, access.own_member_id(principal)
    member = reader.person("member", org, member_id)
    profile = None
    if member is not None:
        profile = {k: v for k, v in _plain(member).items() if k != "feed_token_hash"} | {
            "id": member_id, "calendar_feed_token_set": bool(member.get("feed_token_hash"))}
    sessions, _ = reader.sessions(org, member_id=member_id, scope={"member_id": member_id})
    attendance = [{"occurrence_id": a["occurrence_id"], "meeting_id": a.get("meeting_id"),
                   "present": member_id in (a.get("present_member_ids") or [])}
                  for a in reader.attendance_of_member(org, member_id)]
    reader.audit(principal, "export", "member", member_id, org)
    return {"service": "scheduling", "organization_id": org, "member_id": member_id, "member": profile,
            "matches": [_plain(m) | {"id": m["match_id"]} for m in reader.matches_of_member(org, member_id)],
            "sessions": [_plain(s) for s in sessions],
            "suggestions": [_plain(s) | {"id": s["match_id"]} for s in reader.suggestions_of_member(org, member_id)],
            "registrations": [_plain(r) for r in reader.all_registrations_of_member(org, member_id)],
            "attendance": attendance,
            "reminders": [{"id": r["_id"], "sent_at": r.get("sent_at")} for r in reader.reminders_of_person(org, member_id)]}
