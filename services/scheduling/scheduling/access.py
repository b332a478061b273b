"""Who may do what in scheduling: role and site checks on meetings, registrations, matches, sessions and
personal calendars. Pure functions of the principal and a stored document (no I/O); the use cases in
``handlers/`` ask them and raise the answer (NotFound where existence must not leak).

A member (``role: member``) is a party to their own things only: their match, their sessions, their
registrations, their calendar; they see public meetings at their site and the organization's public
online or hybrid meetings. Their own id is the token's ``member_id``, never a path or body value.
"""
from __future__ import annotations

from shared.auth import Principal
from shared.errors import Forbidden
from shared.repository import site_scope


def require_meeting_creator(principal: Principal, site_id: str | None) -> None:
    """Admins and coordinators create meetings; coordinators at their own sites."""
    if principal.role not in ("admin", "service", "coordinator"):
        raise Forbidden("Only admins and coordinators create meetings.")
    if principal.role == "coordinator" and not principal.can_access_site(site_id):
        raise Forbidden("Coordinators create meetings at their own sites.", field="site_id")


VIRTUAL_MODES = ("online", "hybrid")


def own_member_id(principal: Principal) -> str:
    """The member's own id, from the token only."""
    if principal.role != "member" or not principal.member_id:
        raise Forbidden("This is a member's own route (a member token).")
    return principal.member_id


def own_leader_id(principal: Principal) -> str:
    """The peer leader's own id, from the token only."""
    if principal.role != "leader" or not principal.leader_id:
        raise Forbidden("This is a peer leader's own route (a leader token).")
    return principal.leader_id


def member_may_see_meeting(meeting: dict, member: dict | None) -> bool:
    """A member sees public meetings at their site and the organization's public online or hybrid meetings
    (the query of ``Store.meetings_for_member`` says the same), never a support group for peer providers."""
    return bool(member) and bool(meeting.get("is_public")) and not meeting.get("for_peer_providers") and (
        (meeting.get("site_id") is not None and meeting.get("site_id") == member.get("site_id"))
        or meeting.get("attendance_mode") in VIRTUAL_MODES)


def can_see_meeting(principal: Principal, meeting: dict, member: dict | None = None) -> bool:
    """``member``: the caller's own read-model record, when the caller is a member."""
    if principal.role == "member":
        return member_may_see_meeting(meeting, member)
    if principal.is_admin or principal.role == "leader":
        return True
    if principal.role == "coordinator":
        return meeting.get("site_id") is None or principal.can_access_site(meeting.get("site_id"))
    return False


def can_manage_meeting(principal: Principal, meeting: dict) -> bool:
    """Admins, the site's coordinators, and (for occurrences and attendance) its facilitators."""
    if principal.is_admin:
        return True
    if principal.role == "coordinator":
        return meeting.get("site_id") is not None and principal.can_access_site(meeting["site_id"])
    return False


def is_facilitator(principal: Principal, meeting: dict) -> bool:
    return principal.role == "leader" and principal.leader_id in (meeting.get("leader_ids") or [])


def can_run_meeting(principal: Principal, meeting: dict) -> bool:
    """Occurrences, attendance and registration lists: the facilitators, the site's coordinators, admins."""
    return can_manage_meeting(principal, meeting) or is_facilitator(principal, meeting)


def meeting_site_filter(principal: Principal) -> list[str] | None:
    """The sites whose meetings a list shows the caller (None: every site)."""
    return principal.site_filter() if principal.role == "coordinator" else None


def check_registers_themself(principal: Principal, member_id: str) -> None:
    """A member registers (and cancels) only themself: another member's id answers 403."""
    if principal.role == "member" and member_id != principal.member_id:
        raise Forbidden("A member registers only themself (member_id is the token's).", field="member_id")


def check_leader_joins_themself(principal: Principal, registrant_id: str, meeting: dict) -> None:
    """A peer leader registers (and cancels) only themself, and only for a support group for peer providers;
    nobody registers a peer leader for them (the seat is the leader's own choice)."""
    if principal.role != "leader":
        raise Forbidden("A peer leader registers themself (a leader token).", field="registrant_kind")
    if registrant_id != principal.leader_id:
        raise Forbidden("A peer leader registers only themself (member_id is the token's leader id).",
                        field="member_id")
    if not meeting.get("for_peer_providers"):
        raise Forbidden("Peer leaders join support groups for peer providers only.", field="registrant_kind")


def can_register_for(principal: Principal, member: dict) -> bool:
    if principal.role == "member":
        return member.get("member_id") == principal.member_id
    return principal.is_admin or (principal.role == "coordinator" and principal.can_access_site(member.get("site_id")))


def can_see_match(principal: Principal, match: dict) -> bool:
    if principal.role == "member":
        return match["member_id"] == principal.member_id
    if principal.role == "leader" and match["leader_id"] != principal.leader_id:
        return False
    if principal.role == "coordinator" and not principal.can_access_site(match.get("site_id")):
        return False
    return True


def can_see_session(principal: Principal, session: dict) -> bool:
    if principal.role == "member":
        return session["member_id"] == principal.member_id
    return not ((principal.role == "leader" and session["leader_id"] != principal.leader_id) or (
        principal.role == "coordinator" and not principal.can_access_site(session.get("site_id"))))


def session_scope(principal: Principal) -> dict:
    """The clause that keeps a session list to what the caller may see: leaders their own sessions,
    members theirs, coordinators their sites' (it overrides the caller's own filters)."""
    if principal.role == "member":
        return {"member_id": principal.member_id}
    if principal.role == "leader":
        return {"leader_id": principal.leader_id}
    if principal.role == "coordinator":
        return site_scope("site_id", principal.site_filter())
    return {}


def acting_role(principal: Principal, on_behalf_of: str | None) -> str:
    """Who a booking, reschedule or cancellation is recorded as made by."""
    if principal.role in ("leader", "member"):
        return principal.role
    return "member" if on_behalf_of == "member" else principal.role


def can_see_person(principal: Principal, kind: str, person_id: str, person: dict) -> bool:
    """A member's or leader's private calendar and feed token: admins, the leader themself, the
    coordinators of the member's site (or of one of the leader's sites), the member themself."""
    return (principal.is_admin
            or (kind == "member" and principal.role == "member" and principal.member_id == person_id)
            or (kind == "leader" and principal.role == "leader" and principal.leader_id == person_id)
            or (principal.role == "coordinator" and (
                principal.can_access_site(person.get("site_id")) if kind == "member"
                else any(principal.can_access_site(s) for s in person.get("site_ids") or []))))
