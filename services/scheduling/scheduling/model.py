"""Scheduling's domain rules: recurrence in local wall time, occurrence exceptions, facilitator
conflicts, capacity and waitlist, availability intersection, session suggestions, reminder timing.

No Flask, pymongo or Kafka here: plain data in, plain data out (unit-tested in tests/unit).
Every instant handled here is an aware UTC ``datetime``; local wall times are naive ``datetime``s
paired with an IANA zone name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Sequence

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr

from shared.clock import clock, zone
from shared.errors import Invalid

UTC = timezone.utc

# Frequencies a peer-support meeting may have (sub-daily rules make no sense and explode expansion).
ALLOWED_FREQUENCIES = {DAILY: "DAILY", WEEKLY: "WEEKLY", MONTHLY: "MONTHLY", YEARLY: "YEARLY"}
MAX_EXPANSION = 2000  # occurrences per meeting per query: a guard, far above any real window


# --- time zones and instants -----------------------------------------------------------------------

def to_utc(local: datetime, tz_name: str) -> datetime:
    """A naive local wall time in ``tz_name`` -> the UTC instant. A wall time that does not exist
    (the hour skipped when clocks go forward) lands one hour later, as zoneinfo resolves fold=0."""
    aware = local.replace(tzinfo=zone(tz_name))
    return aware.astimezone(UTC)


def to_local(instant: datetime, tz_name: str) -> datetime:
    """A UTC instant -> naive local wall time in ``tz_name``."""
    return as_utc(instant).astimezone(zone(tz_name)).replace(tzinfo=None)


def as_utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def to_instant(value: datetime, tz_name: str) -> datetime:
    """A datetime from a request: with an offset it is an instant; without, local to ``tz_name``."""
    return to_utc(value, tz_name) if value.tzinfo is None else as_utc(value)


def occurrence_id(meeting_id: str, original_start: datetime) -> str:
    """Stable id of one occurrence: the meeting and its original (rule-given) start in UTC."""
    return f"{meeting_id}:{as_utc(original_start).strftime('%Y%m%dT%H%M%SZ')}"


def parse_occurrence_id(value: str) -> tuple[str, datetime]:
    meeting_id, sep, stamp = value.rpartition(":")
    if not sep or not meeting_id:
        raise Invalid("An occurrence id is '<meeting id>:<YYYYMMDDTHHMMSSZ>'.", field="occurrence_id")
    try:
        start = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise Invalid("An occurrence id is '<meeting id>:<YYYYMMDDTHHMMSSZ>'.", field="occurrence_id") from None
    return meeting_id, start


# --- recurrence -----------------------------------------------------------------------------------

def normalize_rrule(text: str) -> str:
    """'RRULE:FREQ=weekly;byday=tu' -> 'FREQ=WEEKLY;BYDAY=TU' (validated separately)."""
    cleaned = text.strip()
    if cleaned.upper().startswith("RRULE:"):
        cleaned = cleaned[6:]
    return ";".join(part.strip().upper() for part in cleaned.split(";") if part.strip())


def parse_rule(rrule_text: str, first_start_local: datetime) -> rrule:
    """Validate an RFC 5545 RRULE against a naive local first start; the rule is expanded in local
    wall time, which is what keeps a 19:00 meeting at 19:00 across daylight-saving changes."""
    text = normalize_rrule(rrule_text)
    if not text.startswith("FREQ=") and ";FREQ=" not in f";{text}":
        raise Invalid("The rule needs FREQ (for example FREQ=WEEKLY;BYDAY=TU).", field="rrule")
    if "DTSTART" in text or "\n" in text:
        raise Invalid("Give only the RRULE; the first start goes in first_start_local.", field="rrule")
    try:
        rule = rrulestr(text, dtstart=first_start_local)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        if "UNTIL" in message:
            message = "UNTIL must be a local date-time without Z (for example UNTIL=20261231T235959)."
        raise Invalid(f"Not a valid RFC 5545 rule: {message}", field="rrule") from None
    if not isinstance(rule, rrule):
        raise Invalid("Give one RRULE, not a set.", field="rrule")
    if rule._freq not in ALLOWED_FREQUENCIES:
        raise Invalid("Meetings recur daily, weekly, monthly or yearly.", field="rrule")
    if rule._until is not None and rule._until.tzinfo is not None:
        raise Invalid("UNTIL must be a local date-time without Z.", field="rrule")
    return rule


def validate_rule(rrule_text: str, first_start_local: datetime) -> rrule:
    """A meeting's rule must produce its first start as its first occurrence: RFC 5545 counts DTSTART
    as an instance even when the rule would skip it, dateutil does not, so a mismatch would make the
    calendar feeds and our occurrence list disagree."""
    rule = parse_rule(rrule_text, first_start_local)
    first = next(iter(rule), None)
    if first is None:
        raise Invalid("The rule produces no occurrence (check UNTIL and COUNT).", field="rrule")
    if first != first_start_local:
        raise Invalid(f"The first start must be an occurrence of the rule; the rule's first is "
                      f"{first.isoformat(timespec='minutes')}.", field="first_start_local")
    return rule


def rule_weekdays(rrule_text: str, first_start_local: datetime) -> tuple[str, list[int]]:
    """(frequency name, weekdays 0=Monday...) of a rule; a weekly rule without BYDAY meets on the
    first start's weekday."""
    rule = parse_rule(rrule_text, first_start_local)
    days = sorted(rule._byweekday or ()) if rule._byweekday else [first_start_local.weekday()]
    return ALLOWED_FREQUENCIES[rule._freq], days


@dataclass(frozen=True)
class Schedule:
    """What expansion needs of a meeting."""

    meeting_id: str
    rrule: str
    first_start_local: datetime
    time_zone: str
    duration_minutes: int
    # original start (UTC ISO "YYYYMMDDTHHMMSSZ" key, see occurrence_id) -> exception
    exceptions: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Occurrence:
    occurrence_id: str
    meeting_id: str
    original_start: datetime
    start: datetime
    end: datetime
    time_zone: str
    status: str = "scheduled"  # scheduled | moved | cancelled
    reason: str | None = None

    @property
    def local_start(self) -> datetime:
        return to_local(self.start, self.time_zone)

    @property
    def local_end(self) -> datetime:
        return to_local(self.end, self.time_zone)


def exception_key(original_start: datetime) -> str:
    return as_utc(original_start).strftime("%Y%m%dT%H%M%SZ")


def expand(schedule: Schedule, window_start: datetime, window_end: datetime, *,
           include_cancelled: bool = False) -> list[Occurrence]:
    """Occurrences that overlap [window_start, window_end), in start order, exceptions applied.

    The rule runs over naive local wall times; each is then placed in the zone and converted to UTC,
    so the UTC instant shifts across daylight saving while the local time stays put."""
    window_start, window_end = as_utc(window_start), as_utc(window_end)
    rule = parse_rule(schedule.rrule, schedule.first_start_local)
    duration = timedelta(minutes=schedule.duration_minutes)
    # Local bounds, widened by a day and the duration so zone offsets never cut an occurrence off.
    local_from = to_local(window_start, schedule.time_zone) - timedelta(days=1) - duration
    local_to = to_local(window_end, schedule.time_zone) + timedelta(days=1)
    found: list[Occurrence] = []
    seen: set[str] = set()
    for n, local in enumerate(rule.xafter(local_from, inc=True)):
        if local > local_to or n >= MAX_EXPANSION:
            break
        start = to_utc(local, schedule.time_zone)
        occ = Occurrence(occurrence_id(schedule.meeting_id, start), schedule.meeting_id, start, start,
                         start + duration, schedule.time_zone)
        seen.add(exception_key(start))
        occ = apply_exception(occ, schedule.exceptions.get(exception_key(start)))
        found.append(occ)
    # Occurrences moved into the window from outside it.
    for key, exc in schedule.exceptions.items():
        if key in seen or exc.get("status") != "moved":
            continue
        original = datetime.strptime(key, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        occ = Occurrence(occurrence_id(schedule.meeting_id, original), schedule.meeting_id, original, original,
                         original + duration, schedule.time_zone)
        found.append(apply_exception(occ, exc))
    result = [o for o in found
              if o.start < window_end and o.end > window_start and (include_cancelled or o.status != "cancelled")]
    return sorted(result, key=lambda o: (o.start, o.occurrence_id))


def apply_exception(occ: Occurrence, exc: dict | None) -> Occurrence:
    if not exc:
        return occ
    if exc.get("status") == "cancelled":
        return replace(occ, status="cancelled", reason=exc.get("reason"))
    if exc.get("status") == "moved":
        return replace(occ, status="moved", start=as_utc(exc["start"]), end=as_utc(exc["end"]),
                       reason=exc.get("reason"))
    return occ


def is_rule_occurrence(schedule: Schedule, original_start: datetime) -> bool:
    """Whether the rule really produces an occurrence at ``original_start`` (an instant)."""
    local = to_local(original_start, schedule.time_zone)
    rule = parse_rule(schedule.rrule, schedule.first_start_local)
    nxt = rule.after(local - timedelta(seconds=1), inc=True)
    return nxt is not None and to_utc(nxt, schedule.time_zone) == as_utc(original_start)


def schedule_of(meeting: dict) -> Schedule:
    """The recurrence of a stored meeting document."""
    return Schedule(meeting["_id"], meeting["rrule"], datetime.fromisoformat(meeting["first_start_local"]),
                    meeting["time_zone"], meeting["duration_minutes"], meeting.get("exceptions") or {})


def occurrences(meeting: dict, start: datetime, end: datetime, *, include_cancelled: bool = False) -> list[Occurrence]:
    """A stored meeting's occurrences in [start, end)."""
    return expand(schedule_of(meeting), start, end, include_cancelled=include_cancelled)


# --- facilitator conflicts ------------------------------------------------------------------------

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


# --- capacity and waitlist ------------------------------------------------------------------------

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
    """Members who hold or wait for a seat at the whole series or (given) at that occurrence."""
    ids = [r["member_id"] for r in registrations
           if r.get("occurrence_id") is None or (occurrence_id is not None and r.get("occurrence_id") == occurrence_id)]
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


# --- availability and session suggestions ---------------------------------------------------------

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


# --- reminders ------------------------------------------------------------------------------------

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


# --- small helpers shared by the use cases --------------------------------------------------------

def slugify(name: str, suffix: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48] or "meeting"
    return f"{base}-{suffix}"
