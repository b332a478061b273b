"""Weekly availability: local windows placed on a 15-minute UTC grid of the current week (so summer
time on either side is taken into account), and described in words."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Iterable

import numpy as np

from shared.clock import minutes_of_day, zone_or_utc

from matching.model.people import Window

SLOT_MINUTES = 15                # weekly availability is compared on a 15-minute UTC grid
SLOTS_PER_WEEK = 7 * 24 * 60 // SLOT_MINUTES
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DAY_SHORT = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def describe_availability(windows: Iterable[Window], tz_name: str) -> str:
    """Weekly windows in words, e.g. "Mon-Fri 17:00-20:00, Sat 09:00-12:00 (America/Chicago)"."""
    by_time: dict[tuple[str, str], list[int]] = {}
    for w in windows:
        by_time.setdefault((w.start, w.end), []).append(w.day)
    parts = []
    for (start, end), days in sorted(by_time.items(), key=lambda item: min(item[1])):
        days = sorted(set(days))
        runs, run = [], [days[0]]
        for day in days[1:]:
            if day == run[-1] + 1:
                run.append(day)
            else:
                runs.append(run)
                run = [day]
        runs.append(run)
        names = ", ".join(DAY_SHORT[r[0]] if len(r) == 1 else
                          f"{DAY_SHORT[r[0]]}{'-' if len(r) > 2 else ', '}{DAY_SHORT[r[-1]]}" for r in runs)
        parts.append(f"{names} {start}-{end}")
    return f"{'; '.join(parts) or 'no times given'} ({tz_name})"


def week_start(now: datetime) -> datetime:
    """Monday 00:00 UTC of the week of ``now``: the reference week both sides are placed in (so a
    summer-time change on one side is taken into account for the week we are in)."""
    day = now.astimezone(timezone.utc).date()
    monday = day - timedelta(days=day.weekday())
    return datetime.combine(monday, time(0), tzinfo=timezone.utc)


def availability_slots(windows: Iterable[Window], tz_name: str, now: datetime) -> np.ndarray:
    """Weekly local windows -> a boolean vector of the week's 15-minute slots in UTC (read-only)."""
    return _slots(tuple(windows), tz_name or "UTC", week_start(now))


@lru_cache(maxsize=65536)
def _slots(windows: tuple[Window, ...], tz_name: str, ref: datetime) -> np.ndarray:
    # Cached: every proposal places every leader's week again, and the answer only changes with the
    # windows, the zone or the week (summer time).
    slots = np.zeros(SLOTS_PER_WEEK, dtype=bool)
    tz = zone_or_utc(tz_name)
    for w in windows:
        start_m, end_m = minutes_of_day(w.start, end_of_day=True), minutes_of_day(w.end, end_of_day=True)
        if end_m <= start_m:
            continue
        local_day = ref.date() + timedelta(days=w.day)
        local_start = datetime.combine(local_day, time(0), tzinfo=tz) + timedelta(minutes=start_m)
        offset = (local_start.astimezone(timezone.utc) - ref).total_seconds() / 60
        first = int(round(offset / SLOT_MINUTES))
        count = int(round((end_m - start_m) / SLOT_MINUTES))
        idx = (first + np.arange(count)) % SLOTS_PER_WEEK
        slots[idx] = True
    slots.setflags(write=False)
    return slots
