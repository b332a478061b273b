"""What outside systems read: the Meeting Guide JSON (code4recovery spec), the public page of a meeting
(HTML, where a listing's ``url`` points) and iCalendar (RFC 5545).

Pure rendering from stored documents, no I/O. Nothing about who attends ever appears here.
"""
from __future__ import annotations

import calendar as _calendar
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache

from icalendar import Calendar, Event as VEvent, Timezone, TimezoneDaylight, TimezoneStandard, vRecur
from jinja2 import Environment, StrictUndefined

from scheduling import model

PRODID = "-//Recovery Network//Scheduling//EN"
UID_DOMAIN = "recoverynet"


# The Meeting Guide spec's meeting types (code4recovery/spec README, "Meeting Types"; proposed types
# are not used yet), with their English names. Online meetings have no type: the spec marks them by
# conference_url / conference_phone (and TSML's attendance_option).
MEETING_TYPES = {
    "11": "11th Step Meditation", "12x12": "12 Steps & 12 Traditions", "A": "Secular", "ABSI": "As Bill Sees It",
    "AF": "Afrikaans", "AL": "Concurrent with Alateen", "AL-AN": "Concurrent with Al-Anon", "AM": "Amharic",
    "AR": "Arabic", "ASL": "American Sign Language", "B": "Big Book", "BA": "Babysitting Available",
    "BE": "Newcomer", "BG": "Bulgarian", "BI": "Bisexual", "BRK": "Breakfast", "C": "Closed", "CAN": "Candlelight",
    "CF": "Child-Friendly", "D": "Discussion", "DA": "Danish", "DB": "Digital Basket", "DD": "Dual Diagnosis",
    "DE": "German", "DR": "Daily Reflections", "EL": "Greek", "EN": "English", "FA": "Persian", "FI": "Finnish",
    "FF": "Fragrance Free", "FR": "French", "G": "Gay", "GR": "Grapevine", "H": "Birthday", "HE": "Hebrew",
    "HI": "Hindi", "HR": "Croatian", "HU": "Hungarian", "IS": "Icelandic", "ITA": "Italian", "JA": "Japanese",
    "KA": "Georgian", "KOR": "Korean", "L": "Lesbian", "LGBTQ": "LGBTQ", "LIT": "Literature", "LS": "Living Sober",
    "LT": "Lithuanian", "M": "Men", "MED": "Meditation", "ML": "Malayalam", "MT": "Maltese", "N": "Native American",
    "NB": "Non-Binary", "NDG": "Indigenous", "NE": "Nepali", "NL": "Dutch", "NO": "Norwegian", "O": "Open",
    "OUT": "Outdoor", "P": "Professionals", "POA": "Proof of Attendance", "POC": "People of Color", "POL": "Polish",
    "POR": "Portuguese", "PUN": "Punjabi", "RUS": "Russian", "S": "Spanish", "SEN": "Seniors", "SK": "Slovak",
    "SL": "Slovenian", "SM": "Smoking Permitted", "SP": "Speaker", "ST": "Step Study", "SV": "Swedish",
    "T": "Transgender", "TC": "Location Temporarily Closed", "TH": "Thai", "TL": "Tagalog", "TR": "Tradition Study",
    "TUR": "Turkish", "UK": "Ukrainian", "W": "Women", "X": "Wheelchair Access", "XB": "Wheelchair-Accessible Bathroom",
    "XT": "Cross Talk Permitted", "Y": "Young People",
}

# Meeting Guide's language type codes, by the BCP 47 primary language of the meeting.
LANGUAGE_TYPES = {"en": "EN", "es": "S", "fr": "FR", "de": "DE", "pl": "POL", "pt": "POR", "ru": "RUS", "ja": "JA",
                  "ko": "KOR", "it": "ITA", "uk": "UK", "he": "HE", "hi": "HI", "fa": "FA", "sv": "SV", "da": "DA",
                  "no": "NO", "nb": "NO", "el": "EL", "hr": "HR", "hu": "HU", "lt": "LT", "sk": "SK", "th": "TH",
                  "tl": "TL", "am": "AM", "ml": "ML", "pa": "PUN", "ase": "ASL", "af": "AF", "ar": "AR", "bg": "BG",
                  "fi": "FI", "is": "IS", "ka": "KA", "mt": "MT", "ne": "NE", "nl": "NL", "sl": "SL", "tr": "TUR"}


def meeting_types(meeting: dict) -> list[str]:
    """The meeting's Meeting Guide types: its own, open or closed, its language's."""
    types = [t for t in meeting.get("types") or [] if t in MEETING_TYPES]
    types.append("O" if meeting["is_open"] else "C")
    language = LANGUAGE_TYPES.get((meeting.get("language") or "").split("-")[0].lower())
    if language:
        types.append(language)
    return list(dict.fromkeys(types))


# --- Meeting Guide ------------------------------------------------------------------------------

def meeting_guide_entry(meeting: dict, site: dict | None, *, base_url: str, now: datetime) -> dict | None:
    """One listing, or None when the meeting cannot be listed (Meeting Guide is for weekly meetings)."""
    first = datetime.fromisoformat(meeting["first_start_local"])
    frequency, weekdays = model.rule_weekdays(meeting["rrule"], first)
    if frequency != "WEEKLY":
        return None
    end = first + timedelta(minutes=meeting["duration_minutes"])
    days = sorted((d + 1) % 7 for d in weekdays)  # Meeting Guide: 0 = Sunday; Python: 0 = Monday
    entry: dict = {
        "name": meeting["name"][:255],
        "slug": meeting["slug"][:64],
        "day": days[0] if len(days) == 1 else days,
        "time": first.strftime("%H:%M"),
        "end_time": end.strftime("%H:%M"),
        "timezone": meeting["time_zone"],
        "types": meeting_types(meeting),
        "attendance_option": meeting["attendance_mode"],  # in_person | hybrid | online (TSML UI reads it)
        "updated": model.as_utc(meeting.get("updated_at") or meeting["created_at"]).strftime("%Y-%m-%d %H:%M:%S"),
        "url": f"{base_url.rstrip('/')}/v1/feeds/{meeting['organization_id']}/meetings/{meeting['slug']}",
    }
    notes = [meeting.get("description") or "", meeting.get("notes") or ""]
    cancelled = sorted(
        o.local_start.date().isoformat()
        for o in model.expand(model.Schedule(meeting["_id"], meeting["rrule"], first, meeting["time_zone"],
                                             meeting["duration_minutes"], meeting.get("exceptions") or {}),
                              now, now + timedelta(days=28), include_cancelled=True)
        if o.status == "cancelled")
    if cancelled:
        notes.append("Not meeting on " + ", ".join(cancelled) + ".")
    text = "\n".join(n.strip() for n in notes if n and n.strip())
    if text:
        entry["notes"] = text
    if site is not None:
        location = site.get("location") or {}
        entry["location"] = site.get("name")
        if meeting["attendance_mode"] in ("in_person", "hybrid"):
            for ours, theirs in (("street", "address"), ("city", "city"), ("region", "state"),
                                 ("postal_code", "postal_code"), ("country", "country")):
                if location.get(ours):
                    entry[theirs] = location[ours]
        else:  # online meetings carry an approximate place of origin
            approx = ", ".join(v for v in (location.get("city"), location.get("region"), location.get("country")) if v)
            if approx:
                entry["formatted_address"] = approx
                entry["approximate"] = "yes"
        if meeting.get("location_notes"):
            entry["location_notes"] = meeting["location_notes"]
    if meeting["attendance_mode"] in ("online", "hybrid"):
        if meeting.get("conference_url"):
            entry["conference_url"] = meeting["conference_url"]
        if meeting.get("conference_phone"):
            entry["conference_phone"] = meeting["conference_phone"]
    return {k: v for k, v in entry.items() if v not in (None, "")}


# --- the public page of one meeting (the Meeting Guide listing's url) ----------------------------

_PAGE = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True).from_string(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ name }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 1rem auto; padding: 0 1rem; line-height: 1.5; }
h1 { font-size: 1.6rem; margin-bottom: .25rem; } dt { font-weight: 600; margin-top: .75rem; } dd { margin-left: 0; }
.cancelled { text-decoration: line-through; } .text { white-space: pre-line; }
</style>
</head>
<body>
<main>
<h1{% if lang != "en" %} lang="{{ lang }}"{% endif %}>{{ name }}</h1>
<p>{{ when }}, {{ start }}&ndash;{{ end }} <span>({{ zone }} time, {{ zone_abbr }})</span></p>
<dl>
{% if place %}
<dt>Where</dt>
<dd>{% for line in place %}{{ line }}{% if not loop.last %}<br>{% endif %}{% endfor %}</dd>
{% endif %}
{% if location_notes %}<dd>{{ location_notes }}</dd>{% endif %}
{% if conference_url or conference_phone %}
<dt>Online</dt>
{% if conference_url %}<dd><a href="{{ conference_url }}" rel="nofollow">Join the meeting online</a></dd>{% endif %}
{% if conference_phone %}<dd>By phone: <a href="tel:{{ conference_phone }}">{{ conference_phone }}</a></dd>{% endif %}
{% endif %}
{% if types %}
<dt>Type</dt>
<dd>{{ types | join(", ") }}</dd>
{% endif %}
{% if description %}
<dt>About</dt>
<dd class="text"{% if lang != "en" %} lang="{{ lang }}"{% endif %}>{{ description }}</dd>
{% endif %}
{% if upcoming %}
<dt>Next meetings ({{ zone }} time)</dt>
{% for o in upcoming %}
<dd{% if o.cancelled %} class="cancelled"{% endif %}>{{ o.text }}{% if o.cancelled %} (not meeting){% endif %}</dd>
{% endfor %}
{% endif %}
</dl>
</main>
</body>
</html>
""")

_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def meeting_page(meeting: dict, site: dict | None, *, now: datetime) -> str:
    """A plain HTML page about one public meeting for a person to read: name, time in the meeting's zone
    (the zone shown), place or how to join, types in plain words. Nothing about who attends or leads."""
    first = datetime.fromisoformat(meeting["first_start_local"])
    frequency, weekdays = model.rule_weekdays(meeting["rrule"], first)
    when = {"WEEKLY": "Every " + " and ".join(_DAY_NAMES[d] for d in weekdays), "DAILY": "Every day",
            "MONTHLY": "Monthly", "YEARLY": "Yearly"}.get(frequency, "Repeating")
    tz = model.zone(meeting["time_zone"])
    schedule = model.Schedule(meeting["_id"], meeting["rrule"], first, meeting["time_zone"],
                              meeting["duration_minutes"], meeting.get("exceptions") or {})
    occurrences = model.expand(schedule, now, now + timedelta(days=120), include_cancelled=True)[:6]
    upcoming = [{"text": f"{(s := o.start.astimezone(tz)):%A} {s.day} {s:%B %Y}, {s:%H:%M} {s:%Z}",
                 "cancelled": o.status == "cancelled"} for o in occurrences]
    zone_abbr = (occurrences[0].start if occurrences else now).astimezone(tz).tzname()
    place: list[str] = []
    if site is not None and meeting["attendance_mode"] in ("in_person", "hybrid"):
        loc = site.get("location") or {}
        place = [v for v in (site.get("name"), loc.get("street"),
                             " ".join(v for v in (loc.get("postal_code"), loc.get("city")) if v),
                             ", ".join(v for v in (loc.get("region"), loc.get("country")) if v)) if v]
    online = meeting["attendance_mode"] in ("online", "hybrid")
    description = "\n".join(x.strip() for x in (meeting.get("description"), meeting.get("notes")) if x and x.strip())
    return _PAGE.render(
        name=meeting["name"], lang=(meeting.get("language") or "en"), when=when,
        start=first.strftime("%H:%M"), end=(first + timedelta(minutes=meeting["duration_minutes"])).strftime("%H:%M"),
        zone=meeting["time_zone"], zone_abbr=zone_abbr, place=place,
        location_notes=meeting.get("location_notes") if place else None,
        conference_url=meeting.get("conference_url") if online else None,
        conference_phone=meeting.get("conference_phone") if online else None,
        types=[MEETING_TYPES[t] for t in meeting_types(meeting)], description=description, upcoming=upcoming)


# --- iCalendar ----------------------------------------------------------------------------------

def new_calendar(name: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    return cal


def _common(vevent: VEvent, meeting: dict, now: datetime) -> None:
    vevent.add("summary", meeting["name"])
    description = "\n".join(x for x in (meeting.get("description"), meeting.get("notes")) if x)
    if meeting.get("conference_url"):
        description = (description + "\n" if description else "") + f"Join: {meeting['conference_url']}"
        vevent.add("url", meeting["conference_url"])
    if meeting.get("conference_phone"):
        description = (description + "\n" if description else "") + f"Phone: {meeting['conference_phone']}"
    if description:
        vevent.add("description", description)
    vevent.add("dtstamp", now)
    vevent.add("last-modified", model.as_utc(meeting.get("updated_at") or meeting["created_at"]))
    vevent.add("sequence", int(meeting.get("version", 1)))


def _rrule_for_ics(rrule_text: str, tz_name: str) -> vRecur:
    """Our rules keep UNTIL as a local time; RFC 5545 wants it in UTC when DTSTART has a TZID."""
    recur = vRecur.from_ical(rrule_text)
    if recur.get("UNTIL"):
        until = recur["UNTIL"][0]
        if not isinstance(until, datetime):  # a date: through the end of that local day
            until = datetime.combine(until, datetime.max.time()).replace(microsecond=0)
        if until.tzinfo is None:
            recur["UNTIL"] = [model.to_utc(until, tz_name)]
    return recur


def meeting_events(meeting: dict, site: dict | None, now: datetime) -> list[VEvent]:
    """The series as one VEVENT with its RRULE (cancelled occurrences as EXDATE) plus one override
    VEVENT (same UID, RECURRENCE-ID) per moved occurrence. The UID is stable: meeting-<id>@recoverynet."""
    tz = model.zone(meeting["time_zone"])
    first = datetime.fromisoformat(meeting["first_start_local"]).replace(tzinfo=tz)
    duration = timedelta(minutes=meeting["duration_minutes"])
    uid = f"meeting-{meeting['_id']}@{UID_DOMAIN}"
    location = None
    if site is not None and meeting["attendance_mode"] in ("in_person", "hybrid"):
        loc = site.get("location") or {}
        location = ", ".join(v for v in (site.get("name"), loc.get("street"), loc.get("city"), loc.get("region"),
                                         loc.get("postal_code"), loc.get("country")) if v)
    master = VEvent()
    master.add("uid", uid)
    master.add("dtstart", first)
    master.add("dtend", first + duration)
    master.add("rrule", _rrule_for_ics(meeting["rrule"], meeting["time_zone"]))
    _common(master, meeting, now)
    if location:
        master.add("location", location)
    overrides = []
    for key, exc in sorted((meeting.get("exceptions") or {}).items()):
        original = datetime.strptime(key, "%Y%m%dT%H%M%SZ").replace(tzinfo=model.UTC).astimezone(tz)
        if exc.get("status") == "cancelled":
            master.add("exdate", original)
        elif exc.get("status") == "moved":
            moved = VEvent()
            moved.add("uid", uid)
            moved.add("recurrence-id", original)
            moved.add("dtstart", model.as_utc(exc["start"]).astimezone(tz))
            moved.add("dtend", model.as_utc(exc["end"]).astimezone(tz))
            _common(moved, meeting, now)
            if location:
                moved.add("location", location)
            overrides.append(moved)
    return [master, *overrides]


def occurrence_event(meeting: dict, occ: model.Occurrence, now: datetime) -> VEvent:
    """One occurrence someone registered for alone (not the series)."""
    tz = model.zone(meeting["time_zone"])
    vevent = VEvent()
    vevent.add("uid", f"occurrence-{occ.occurrence_id.replace(':', '-')}@{UID_DOMAIN}")
    vevent.add("dtstart", occ.start.astimezone(tz))
    vevent.add("dtend", occ.end.astimezone(tz))
    _common(vevent, meeting, now)
    return vevent


def session_event(session: dict, now: datetime, *, summary: str = "One-on-one peer session") -> VEvent:
    tz = model.zone(session["time_zone"])
    vevent = VEvent()
    vevent.add("uid", f"session-{session['_id']}@{UID_DOMAIN}")
    vevent.add("summary", summary)
    vevent.add("dtstart", model.as_utc(session["start"]).astimezone(tz))
    vevent.add("dtend", model.as_utc(session["end"]).astimezone(tz))
    vevent.add("dtstamp", now)
    vevent.add("sequence", int(session.get("version", 1)))
    vevent.add("status", "CONFIRMED")
    return vevent


def render(cal: Calendar, events: list[VEvent], *, year: int | None = None) -> bytes:
    """The calendar with its events and one VTIMEZONE per zone they use (see ``vtimezone``)."""
    for vevent in events:
        cal.add_component(vevent)
    year = year or datetime.now(timezone.utc).year
    zones = [vtimezone(tzid, year) for tzid in sorted(cal.get_missing_tzids())]
    cal.subcomponents[:0] = [z for z in zones if z is not None]
    return cal.to_ical()


# --- VTIMEZONE ----------------------------------------------------------------------------------
# Written the way calendar servers write it: one STANDARD and one DAYLIGHT component, each with a
# yearly RRULE taken from the zone's current rules (zoneinfo), so it holds for any year, 2038 and on.
# Clients such as ical.js (Thunderbird, Nextcloud) read only the first date of an RDATE line, so a
# list of dates is never written on one line; a zone whose rules do not fit a yearly RRULE (moving
# transitions, a change of rules this year) gets one RDATE line per transition instead.

_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_EPOCH = datetime(1970, 1, 1)
_RULE_CHECK_YEARS = 28  # the Gregorian weekday-and-date cycle: every combination is tried once
_FALLBACK_YEARS = (10, 30)  # years before / after this one listed when no RRULE fits


def _offset_at(zone, instant: datetime) -> timedelta:
    return instant.astimezone(zone).utcoffset()


def _transitions(zone, year: int) -> list[tuple[datetime, timedelta, timedelta]]:
    """(UTC instant, offset before, offset after) of each change of UTC offset in ``year`` (UTC)."""
    found = []
    day = datetime(year, 1, 1, tzinfo=timezone.utc)
    end = datetime(year + 1, 1, 1, tzinfo=timezone.utc)
    offset = _offset_at(zone, day)
    while day < end:
        nxt = day + timedelta(days=1)
        after = _offset_at(zone, nxt)
        if after != offset:
            lo, hi = day, nxt  # offset at lo is the old one, at hi the new one: narrow to the second
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if _offset_at(zone, mid) == offset:
                    lo = mid
                else:
                    hi = mid
            found.append((hi, offset, _offset_at(zone, hi)))
            offset = _offset_at(zone, hi)
            # a second change the same day (never seen in practice) would be found from here
            day = hi
            continue
        day, offset = nxt, after
    return found


def _nth_weekday(year: int, month: int, weekday: int, nth: int) -> date | None:
    days = _calendar.monthrange(year, month)[1]
    if nth > 0:
        day = 1 + (weekday - date(year, month, 1).weekday()) % 7 + (nth - 1) * 7
        return date(year, month, day) if day <= days else None
    return date(year, month, days - (date(year, month, days).weekday() - weekday) % 7)


def _rule_holds(zone, year: int, rule: tuple, wall: time, before: timedelta, after: timedelta) -> bool:
    month, weekday, nth = rule
    day = _nth_weekday(year, month, weekday, nth)
    if day is None:
        return False
    instant = (datetime.combine(day, wall) - before).replace(tzinfo=timezone.utc)
    return (_offset_at(zone, instant - timedelta(seconds=1)) == before
            and _offset_at(zone, instant) == after)


def _yearly_rule(zone, year: int, transition) -> tuple | None:
    """(month, weekday, nth) with nth 1-4 or -1 (last) that gives this transition every year from
    ``year`` for a full weekday cycle, or None."""
    instant, before, after = transition
    local = (instant + before).replace(tzinfo=None)  # the onset is written in the old offset
    days = _calendar.monthrange(local.year, local.month)[1]
    candidates = []
    if local.day + 7 > days:
        candidates.append(-1)
    if (local.day - 1) // 7 < 4:
        candidates.append((local.day - 1) // 7 + 1)
    for nth in candidates:
        rule = (local.month, local.weekday(), nth)
        if all(_rule_holds(zone, y, rule, local.time(), before, after)
               for y in range(year, year + _RULE_CHECK_YEARS)):
            return rule
    return None


def _observance(daylight: bool, name: str | None, start: datetime, before: timedelta, after: timedelta):
    part = TimezoneDaylight() if daylight else TimezoneStandard()
    if name:
        part.add("tzname", name)
    part.add("dtstart", start)
    part.add("tzoffsetfrom", before)
    part.add("tzoffsetto", after)
    return part


@lru_cache(maxsize=256)
def _vtimezone_ical(tzid: str, year: int) -> bytes | None:
    try:
        zone = model.zone(tzid)
    except model.Invalid:  # a zone zoneinfo does not know: the client falls back to its own database
        return None
    vtz = Timezone()
    vtz.add("tzid", tzid)
    this_year = _transitions(zone, year)
    upcoming = this_year + _transitions(zone, year + 1)
    if not upcoming:  # no daylight saving time (any more): one STANDARD from the last change on
        offset = _offset_at(zone, datetime(year, 7, 1, tzinfo=timezone.utc))
        start, before = _EPOCH, offset
        for past in range(year - 1, 1969, -1):
            changes = _transitions(zone, past)
            if changes:
                instant, before, _ = changes[-1]
                start = (instant + before).replace(tzinfo=None)
                break
        name = datetime(year, 7, 1, tzinfo=timezone.utc).astimezone(zone).tzname()
        vtz.add_component(_observance(False, name, start, before, offset))
        return vtz.to_ical()
    rules = [_yearly_rule(zone, year, t) for t in this_year] if len(this_year) == 2 else [None]
    if all(rules):
        for (instant, before, after), rule in zip(this_year, rules):
            wall = (instant + before).time()
            first = year
            while first > 1970 and _rule_holds(zone, first - 1, rule, wall, before, after):
                first -= 1
            month, weekday, nth = rule
            start = datetime.combine(_nth_weekday(first, month, weekday, nth), wall)
            part = _observance(after > before, instant.astimezone(zone).tzname(), start, before, after)
            part.add("rrule", {"FREQ": "YEARLY", "BYMONTH": month, "BYDAY": f"{nth}{_WEEKDAYS[weekday]}"})
            vtz.add_component(part)
        return vtz.to_ical()
    # Rules no yearly RRULE can say: every transition of the years around this one, one per RDATE line.
    groups: dict[tuple, list[datetime]] = {}
    for y in range(max(1970, year - _FALLBACK_YEARS[0]), year + _FALLBACK_YEARS[1] + 1):
        for instant, before, after in _transitions(zone, y):
            key = (after > before, instant.astimezone(zone).tzname(), before, after)
            groups.setdefault(key, []).append((instant + before).replace(tzinfo=None))
    for (daylight, name, before, after), starts in groups.items():
        part = _observance(daylight, name, starts[0], before, after)
        for start in starts[1:]:
            part.add("rdate", start)
        vtz.add_component(part)
    return vtz.to_ical()


def vtimezone(tzid: str, year: int) -> Timezone | None:
    """The VTIMEZONE of ``tzid`` from its rules in ``year`` (None for a zone zoneinfo does not know)."""
    text = _vtimezone_ical(tzid, year)
    return Timezone.from_ical(text) if text else None
