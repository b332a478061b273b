"""Time zones and local times of day, read one way in every service (no I/O, no Flask).

- ``zone(name, field=...)``: an IANA zone, or ``Invalid`` naming the field (input from a person);
  ``zone_or_utc(name)``: the same, falling back to UTC (a zone read back from our own records).
- ``clock(value)``: ``"HH:MM"`` (or ``"H:MM"``) -> (hours, minutes); ``24:00`` only with ``end_of_day=True`` (the end
  of an availability window).
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.errors import Invalid

UTC = timezone.utc
_HHMM = re.compile(r"(\d{1,2}):(\d{2})")


def utcnow() -> datetime:
    return datetime.now(UTC)


def zone(name: str | None, *, field: str = "time_zone") -> ZoneInfo:
    try:
        return ZoneInfo(name)  # type: ignore[arg-type]
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise Invalid(f"{name!r} is not an IANA time zone.", field=field) from None


def zone_or_utc(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return ZoneInfo("UTC")


def clock(value: str, *, end_of_day: bool = False) -> tuple[int, int]:
    """``"21:30"`` -> (21, 30). Raises ValueError for anything that is not a local time of day."""
    match = _HHMM.fullmatch(value or "")
    if not match:
        raise ValueError(f"{value!r} is not HH:MM")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not end_of_day)):
        raise ValueError(f"{value!r} is not a time of day")
    return hours, minutes


def minutes_of_day(value: str, *, end_of_day: bool = False) -> int:
    hours, minutes = clock(value, end_of_day=end_of_day)
    return hours * 60 + minutes
