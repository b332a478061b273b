"""Recurrence in local wall time: RFC 5545 rules validated and expanded into occurrences (so a 19:00
meeting stays at 19:00 across daylight saving), occurrence ids and exceptions (moved, cancelled)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr

from shared.errors import Invalid

from scheduling.model.zones import UTC, as_utc, to_local, to_utc

# Frequencies a peer-support meeting may have (sub-daily rules make no sense and explode expansion).
ALLOWED_FREQUENCIES = {DAILY: "DAILY", WEEKLY: "WEEKLY", MONTHLY: "MONTHLY", YEARLY: "YEARLY"}
MAX_EXPANSION = 2000  # occurrences per meeting per query: a guard, far above any real window


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


# --- a meeting's slug -----------------------------------------------------------------------------

def slugify(name: str, suffix: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48] or "meeting"
    return f"{base}-{suffix}"
