"""Facilitator conflicts: what a person is already booked for, and the first clash with it in words."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Sequence

from scheduling.model.zones import to_local

@dataclass(frozen=True)
class Busy:
    """Something a person is already booked for."""

    start: datetime
    end: datetime
    kind: str          # "meeting" | "session"
    ref_id: str        # meeting id or session id
    name: str          # meeting name, or "one-on-one session"
    occurrence_id: str | None = None


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


def find_clash(wanted: Iterable[tuple[datetime, datetime]], busy: Sequence[Busy]) -> tuple[tuple, Busy] | None:
    """The first wanted interval that overlaps something busy, with what it overlaps."""
    ordered = sorted(busy, key=lambda b: b.start)
    for start, end in sorted(wanted):
        for item in ordered:
            if item.start >= end:
                break
            if overlaps(start, end, item.start, item.end):
                return (start, end), item
    return None


def clash_message(person: str, clash: tuple[tuple, Busy], tz_name: str) -> str:
    (start, _end), item = clash
    when = to_local(start, tz_name).strftime("%Y-%m-%d %H:%M")
    if item.kind == "meeting":
        return (f"{person} already facilitates the meeting '{item.name}' ({item.ref_id}) at that time "
                f"(clash on {when} {tz_name}).")
    return f"{person} already has a one-on-one session ({item.ref_id}) at that time (clash on {when} {tz_name})."
