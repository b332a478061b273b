"""Availability and session suggestions: weekly windows as UTC intervals (each date converted on its
own, so daylight saving is respected), interval algebra, and suggested slots."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Iterable, Sequence

from shared.clock import clock, zone
from shared.errors import Invalid

from scheduling.model.conflicts import overlaps
from scheduling.model.zones import UTC, as_utc, to_local

Interval = tuple[datetime, datetime]


def _clock(value: str, field: str) -> tuple[int, int]:
    """An availability bound "HH:MM" (24:00 allowed), or ``Invalid`` naming the field."""
    try:
        return clock(value, end_of_day=True)
    except ValueError as exc:
        raise Invalid(f"{exc}.", field=field) from None


def weekly_to_intervals(windows: Sequence[dict], tz_name: str, start: datetime, end: datetime) -> list[Interval]:
    """Weekly availability windows (day 0 = Monday, HH:MM local, 24:00 allowed) -> UTC intervals
    overlapping [start, end), merged. Each date is converted on its own, so DST is respected."""
    tz = zone(tz_name)
    start, end = as_utc(start), as_utc(end)
    first = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    result: list[Interval] = []
    day = first
    while day <= last:
        for window in windows:
            if window["day"] != day.weekday():
                continue
            sh, sm = _clock(window["start"], "availability.start")
            eh, em = _clock(window["end"], "availability.end")
            w_start = datetime.combine(day, time(sh % 24, sm)).replace(tzinfo=tz).astimezone(UTC)
            end_day = day + timedelta(days=1) if eh == 24 else day
            w_end = datetime.combine(end_day, time(eh % 24, em)).replace(tzinfo=tz).astimezone(UTC)
            lo, hi = max(w_start, start), min(w_end, end)
            if lo < hi:
                result.append((lo, hi))
        day += timedelta(days=1)
    return merge(result)


DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def within_availability(windows: Sequence[dict], tz_name: str, start: datetime, end: datetime) -> bool:
    """Whether [start, end) lies wholly inside the weekly windows (local to ``tz_name``)."""
    covered = weekly_to_intervals(windows, tz_name, start, end)
    return bool(covered) and covered[0][0] <= as_utc(start) and covered[0][1] >= as_utc(end)


def outside_availability_message(who: str, windows: Sequence[dict], tz_name: str, start: datetime,
                                 end: datetime) -> str:
    """'<who>'s availability (America/Chicago): Tue 18:00-20:00, ... does not cover Wed 01:00-02:00.'"""
    tz = zone(tz_name)
    s, e = as_utc(start).astimezone(tz), as_utc(end).astimezone(tz)
    shown = ", ".join(f"{DAY_NAMES[w['day']]} {w['start']}-{w['end']}"
                      for w in sorted(windows, key=lambda w: (w["day"], w["start"])))
    return (f"{who}'s availability ({tz_name}): {shown or 'none given'}; it does not cover "
            f"{s:%a %Y-%m-%d %H:%M}-{e:%H:%M} there.")


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    a, b = merge(a), merge(b)
    i = j = 0
    out: list[Interval] = []
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(free: Sequence[Interval], busy: Sequence[Interval]) -> list[Interval]:
    out: list[Interval] = []
    busy = merge(busy)
    for s, e in merge(free):
        cursor = s
        for bs, be in busy:
            if be <= cursor or bs >= e:
                continue
            if bs > cursor:
                out.append((cursor, bs))
            cursor = max(cursor, be)
        if cursor < e:
            out.append((cursor, e))
    return out


def _ceil_to(instant: datetime, step: timedelta) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    steps = -(-(instant - epoch) // step)
    return epoch + steps * step


def suggest_slots(free: Sequence[Interval], *, duration: timedelta, count: int, earliest: datetime,
                  tz_name: str, step: timedelta = timedelta(minutes=30)) -> list[Interval]:
    """Up to ``count`` slots of ``duration`` inside ``free``, starting on ``step`` boundaries, not
    before ``earliest``: one per local day first (so people get a real choice), then more."""
    candidates: list[Interval] = []
    for s, e in merge(free):
        cursor = _ceil_to(max(s, as_utc(earliest)), step)
        while cursor + duration <= e:
            candidates.append((cursor, cursor + duration))
            cursor += step
    picked: list[Interval] = []
    days: set[date] = set()
    for slot in candidates:
        day = to_local(slot[0], tz_name).date()
        if day not in days:
            picked.append(slot)
            days.add(day)
        if len(picked) == count:
            return sorted(picked)
    for slot in candidates:
        if len(picked) == count:
            break
        if slot not in picked and not any(overlaps(*slot, *p) for p in picked):
            picked.append(slot)
    return sorted(picked)


def within(slot: Interval, free: Sequence[Interval]) -> bool:
    return any(s <= slot[0] and slot[1] <= e for s, e in merge(free))
