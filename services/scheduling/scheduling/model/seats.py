"""Capacity and waitlist: seats per occurrence, who is registered or waits, and who is promoted when
a seat frees up (first come, first served)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Iterable, Sequence

from scheduling.model.zones import as_utc

@dataclass(frozen=True)
class Seat:
    """A registration as capacity sees it. ``occurrence_id`` None: the whole series."""

    registration_id: str
    occurrence_id: str | None
    status: str         # registered | waitlisted
    order: tuple        # (created_at, id): first come, first served


def seats_of(registrations: list[dict], now: datetime) -> list[Seat]:
    """Capacity looks at series registrations and at registrations for occurrences still to come."""
    return [Seat(r["_id"], r.get("occurrence_id"), r["status"], (r["created_at"], r["_id"]))
            for r in registrations
            if r.get("occurrence_id") is None or as_utc(r["occurrence_end"]) > now]


def registrant_ids(registrations: list[dict], occurrence_id: str | None = None) -> list[str]:
    """Members who hold or wait for a seat at the whole series or (given) at that occurrence (a peer leader's
    own seat at a support group for peer providers is not a member's: left out)."""
    ids = [r["member_id"] for r in registrations if r.get("registrant_kind", "member") == "member"
           and r.get("occurrence_id") is None or (occurrence_id is not None and r.get("occurrence_id") == occurrence_id)]
    return sorted(set(ids))


def _occupancy(seats: Iterable[Seat]) -> tuple[int, dict[str, int]]:
    series = 0
    per_occurrence: dict[str, int] = {}
    for seat in seats:
        if seat.status != "registered":
            continue
        if seat.occurrence_id is None:
            series += 1
        else:
            per_occurrence[seat.occurrence_id] = per_occurrence.get(seat.occurrence_id, 0) + 1
    return series, per_occurrence


def fits(capacity: int, seats: Iterable[Seat], occurrence: str | None) -> bool:
    """Capacity holds per occurrence: series registrants sit at every occurrence, single-occurrence
    registrants at theirs. A series seat needs room at every occurrence that has single registrants."""
    series, per_occurrence = _occupancy(seats)
    if occurrence is None:
        return series + max(per_occurrence.values(), default=0) < capacity
    return series + per_occurrence.get(occurrence, 0) < capacity


def decide_registration(capacity: int, seats: Sequence[Seat], occurrence: str | None) -> str:
    """'registered' when a seat is free and nobody waits for it; otherwise 'waitlisted'."""
    waiting_same_scope = any(s.status == "waitlisted" and s.occurrence_id == occurrence for s in seats)
    if not waiting_same_scope and fits(capacity, seats, occurrence):
        return "registered"
    return "waitlisted"


def promotions(capacity: int, seats: Sequence[Seat]) -> list[str]:
    """Waitlisted registrations that now have a seat, first come first served within each scope
    (a series waiter never jumps a series waiter ahead of them; same per occurrence)."""
    current = list(seats)
    promoted: list[str] = []
    blocked_scopes: set = set()
    for seat in sorted((s for s in seats if s.status == "waitlisted"), key=lambda s: s.order):
        if seat.occurrence_id in blocked_scopes:
            continue
        others = [s for s in current if s.registration_id != seat.registration_id]
        if fits(capacity, others, seat.occurrence_id):
            promoted.append(seat.registration_id)
            current = others + [replace(seat, status="registered")]
        else:
            blocked_scopes.add(seat.occurrence_id)
    return promoted


def waitlist_position(seats: Sequence[Seat], registration_id: str) -> int | None:
    me = next((s for s in seats if s.registration_id == registration_id), None)
    if me is None or me.status != "waitlisted":
        return None
    ahead = [s for s in seats if s.status == "waitlisted" and s.occurrence_id == me.occurrence_id and s.order < me.order]
    return len(ahead) + 1
