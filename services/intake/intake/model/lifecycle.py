"""Lifecycle: the statuses a member or a leader may move between, certifications, capacity."""
from __future__ import annotations

from datetime import date

from shared.errors import Conflict
from shared.events.intake import LEADER_STATUSES, MEMBER_STATUSES

from intake.model.vocabularies import _err


# --- lifecycle ---------------------------------------------------------------------------------

MEMBER_TRANSITIONS = {
    "pending_consent": {"active", "discharged"},
    "active": {"paused", "discharged", "graduated"},
    "paused": {"active", "discharged", "graduated"},
    "discharged": {"active"},        # re-admission
    "graduated": {"active"},         # came back for support
}


def check_member_transition(current: str, to: str, consents_now: list[dict]) -> None:
    if to not in MEMBER_STATUSES:
        raise _err("to_status", f"{to!r} is not a member status ({', '.join(MEMBER_STATUSES)}).")
    if to == current:
        raise Conflict(f"The member is already {current}.")
    if to not in MEMBER_TRANSITIONS[current]:
        raise Conflict(f"A member cannot go from {current} to {to}.")
    if to == "active" and not consents_now:
        raise Conflict("A member needs at least one consent in force to become active.")


def initial_member_status(consents_now: list[dict]) -> str:
    return "active" if consents_now else "pending_consent"


LEADER_TRANSITIONS = {
    "active": {"on_leave", "retired"},
    "on_leave": {"active", "retired"},
    "retired": {"active"},
}


def check_leader_transition(current: str, to: str) -> None:
    if to not in LEADER_STATUSES:
        raise _err("to_status", f"{to!r} is not a leader status ({', '.join(LEADER_STATUSES)}).")
    if to == current:
        raise Conflict(f"The leader is already {current}.")
    if to not in LEADER_TRANSITIONS[current]:
        raise Conflict(f"A leader cannot go from {current} to {to}.")


def certifications_current(certifications: list[dict], today: date) -> bool:
    """True when no certification has expired (an expired one makes the leader unavailable for new
    matches; matching reads ``expires_on`` from the snapshot)."""
    return all(c.get("expires_on") is None or c["expires_on"] >= today for c in certifications)


def check_capacity(capacity: int) -> int:
    if not isinstance(capacity, int) or capacity < 0 or capacity > 100:
        raise _err("capacity", "Capacity is a whole number from 0 to 100.")
    return capacity


# --- a leader's "I'm stretched" (a pause on new proposals they ask for) ----------------------------

STRETCH_NOTE_MAX = 500


def stretched(leader: dict, note: str | None, now) -> dict:
    """The leader says they are stretched: new proposals to them pause until it is lifted; their own
    matches go on. Saying it again keeps the first ``since`` and takes the new note (a private word to
    their coordinator, never in an event). A retired leader gets no proposals anyway: refused."""
    if leader.get("status") == "retired":
        raise Conflict("A retired peer leader gets no proposals; there is nothing to pause.")
    note = (note or "").strip() or None
    if note is not None and len(note) > STRETCH_NOTE_MAX:
        raise _err("note", f"Keep the note to {STRETCH_NOTE_MAX} characters.")
    before = leader.get("stretched") or {}
    # to the millisecond, as the database keeps it (the answer and the stored record say the same)
    return {"since": before.get("since") or now.replace(microsecond=now.microsecond // 1000 * 1000), "note": note}


def is_stretched(leader: dict) -> bool:
    return bool(leader.get("stretched"))
