"""Reminder timing: offsets before a start, which are due now, and a reminder's once-only key."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Sequence

from scheduling.model.zones import as_utc

def parse_offsets(text: str) -> tuple[int, ...]:
    """'1440,60' -> (1440, 60): minutes before the start, largest first."""
    values = sorted({int(part) for part in text.split(",") if part.strip()}, reverse=True)
    if not values or any(v <= 0 for v in values):
        raise ValueError("offsets are positive minutes, comma-separated (for example 1440,60)")
    return tuple(values)


def due_offsets(start: datetime, offsets: Sequence[int], now: datetime) -> list[int]:
    """Offsets whose reminder is due now. The reminder for offset o is due from start - o until the
    next smaller offset becomes due (or the start), so someone who registers 30 minutes before a
    meeting gets the 1 h reminder and not a stale 24 h one; a reminder that is due stays due through
    worker restarts until its window closes, and the reminder key makes it happen once."""
    start, now = as_utc(start), as_utc(now)
    if now >= start:
        return []
    ordered = sorted(offsets, reverse=True)
    due = []
    for i, offset in enumerate(ordered):
        opens = start - timedelta(minutes=offset)
        closes = start - timedelta(minutes=ordered[i + 1]) if i + 1 < len(ordered) else start
        if opens <= now < closes:
            due.append(offset)
    return due


def reminder_id(subject_id: str, person_kind: str, person_id: str, offset_minutes: int) -> str:
    return f"{subject_id}|{person_kind}:{person_id}|{offset_minutes}"
