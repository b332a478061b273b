"""Feed rendering without I/O: Meeting Guide entries and iCalendar (the feeds are expanded with ical.js too)."""
import json
import shutil
import subprocess
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from scheduling import feeds, model

UTC = timezone.utc
NOW = datetime(2027, 2, 20, 12, 0, tzinfo=UTC)


def meeting(**kw):
    doc = {"_id": "m1", "organization_id": "org1", "name": "Tuesday Hope", "language": "en", "slug": "tuesday-hope-m1",
           "rrule": "FREQ=WEEKLY;BYDAY=TU", "first_start_local": "2027-03-02T19:00", "duration_minutes": 90,
           "time_zone": "America/New_York", "types": ["D"], "is_open": True, "is_public": True,
           "attendance_mode": "in_person", "created_at": NOW, "updated_at": NOW, "version": 3, "exceptions": {},
           "description": "Discussion"}
    doc.update(kw)
    return doc


SITE = {"name": "Riverside", "time_zone": "America/New_York",
        "location": {"street": "12 River Rd", "city": "Albany", "region": "NY", "postal_code": "12207", "country": "US"}}


def test_meeting_guide_entry_fields():
    entry = feeds.meeting_guide_entry(meeting(), SITE, base_url="https://x.org/", now=NOW)
    assert entry == {"name": "Tuesday Hope", "slug": "tuesday-hope-m1", "day": 2, "time": "19:00",
                     "end_time": "20:30", "timezone": "America/New_York", "types": ["D", "O", "EN"],
                     "attendance_option": "in_person",
                     "updated": "2027-02-20 12:00:00", "url": "https://x.org/v1/feeds/org1/meetings/tuesday-hope-m1",
                     "notes": "Discussion", "location": "Riverside", "address": "12 River Rd", "city": "Albany",
                     "state": "NY", "postal_code": "12207", "country": "US"}


def test_meeting_guide_skips_monthly_and_crosses_midnight():
    assert feeds.meeting_guide_entry(meeting(rrule="FREQ=MONTHLY;BYDAY=1MO"), SITE, base_url="x", now=NOW) is None
    late = feeds.meeting_guide_entry(meeting(rrule="FREQ=WEEKLY;BYDAY=SU,SA", first_start_local="2027-03-06T23:30",
                                             attendance_mode="online", conference_url="https://zoom.us/j/1",
                                             language="es-MX"),
                                     None, base_url="x", now=NOW)
    assert late["day"] == [0, 6] and late["end_time"] == "01:00" and late["types"] == ["D", "O", "S"]
    assert late["conference_url"] == "https://zoom.us/j/1" and "address" not in late
    assert late["attendance_option"] == "online"


# The spec's current meeting types (code4recovery/spec README, "Meeting Types"; not the proposed ones).
# There is no type for online meetings: they are marked by conference_url / conference_phone.
SPEC_TYPES = {"11", "12x12", "A", "ABSI", "AF", "AL", "AL-AN", "AM", "AR", "ASL", "B", "BA", "BE", "BG", "BI", "BRK",
              "C", "CAN", "CF", "D", "DA", "DB", "DD", "DE", "DR", "EL", "EN", "FA", "FI", "FF", "FR", "G", "GR", "H",
              "HE", "HI", "HR", "HU", "IS", "ITA", "JA", "KA", "KOR", "L", "LGBTQ", "LIT", "LS", "LT", "M", "MED", "ML",
              "MT", "N", "NB", "NDG", "NE", "NL", "NO", "O", "OUT", "P", "POA", "POC", "POL", "POR", "PUN", "RUS", "S",
              "SEN", "SK", "SL", "SM", "SP", "ST", "SV", "T", "TC", "TH", "TL", "TR", "TUR", "UK", "W", "X", "XB", "XT",
              "Y"}
HH_MM = r"([01]\d|2[0-3]):[0-5]\d"


def assert_follows_the_spec(entry: dict) -> None:
    """The Meeting Guide spec's rule for every field the feed emits (and no field it does not know)."""
    import re
    from urllib.parse import urlsplit

    known = {"name", "slug", "day", "time", "end_time", "timezone", "types", "attendance_option", "updated", "url",
             "notes", "location", "location_notes", "address", "city", "state", "postal_code", "country",
             "formatted_address", "approximate", "conference_url", "conference_phone"}
    assert set(entry) <= known, set(entry) - known
    assert isinstance(entry["name"], str) and 0 < len(entry["name"]) <= 255
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", entry["slug"])  # URL-safe, 64 at most
    days = entry["day"] if isinstance(entry["day"], list) else [entry["day"]]
    assert days and all(type(d) is int and 0 <= d <= 6 for d in days)
    assert re.fullmatch(HH_MM, entry["time"]) and re.fullmatch(HH_MM, entry["end_time"])
    ZoneInfo(entry["timezone"])  # tz database name
    assert isinstance(entry["types"], list) and set(entry["types"]) <= SPEC_TYPES, set(entry["types"]) - SPEC_TYPES
    assert len(set(entry["types"])) == len(entry["types"])
    assert entry["attendance_option"] in ("in_person", "hybrid", "online", "inactive")
    datetime.strptime(entry["updated"], "%Y-%m-%d %H:%M:%S")
    for field in ("url", "conference_url"):
        if field in entry:
            parts = urlsplit(entry[field])
            assert parts.scheme in ("http", "https") and parts.netloc, (field, entry[field])
    if "conference_phone" in entry:  # numeric; + for international dialers; , * # for one-tap links
        assert re.fullmatch(r"\+?[0-9,*#]+", entry["conference_phone"])
    for field in ("notes", "location", "location_notes", "address", "city", "state", "postal_code", "country",
                  "formatted_address"):
        if field in entry:
            assert isinstance(entry[field], str) and entry[field].strip(), field
    if "approximate" in entry:
        assert entry["approximate"] in ("yes", "no")
    # Online meetings must have a conference_url and/or conference_phone; in person, an address; online
    # ones may have an approximate place of origin.
    if entry["attendance_option"] in ("online", "hybrid"):
        assert entry.get("conference_url") or entry.get("conference_phone")
    else:
        assert "conference_url" not in entry and "conference_phone" not in entry
    if entry["attendance_option"] in ("in_person", "hybrid"):
        assert entry.get("address") or entry.get("formatted_address")
        assert entry.get("approximate", "no") == "no"


def test_meeting_guide_entries_follow_the_spec_and_use_only_its_types():
    assert set(feeds.MEETING_TYPES) == SPEC_TYPES and "ONL" not in feeds.MEETING_TYPES
    assert set(feeds.LANGUAGE_TYPES.values()) <= SPEC_TYPES
    cases = [meeting(),
             meeting(attendance_mode="hybrid", conference_url="https://zoom.us/j/2", conference_phone="+15555550100,,2#",
                     types=["ST", "ONL", "X"], language="tr"),  # a code stored before the spec check is dropped
             meeting(attendance_mode="online", conference_phone="+4930123", is_open=False, language="nl-BE",
                     location_notes="Side door", notes="Bring the book"),
             meeting(rrule="FREQ=WEEKLY;BYDAY=MO,WE,FR", language="xx")]
    entries = [feeds.meeting_guide_entry(m, SITE, base_url="https://x.org", now=NOW) for m in cases]
    for entry in entries:
        assert_follows_the_spec(entry)
    assert entries[1]["types"] == ["ST", "X", "O", "TUR"] and entries[1]["attendance_option"] == "hybrid"
    assert entries[2]["types"] == ["D", "C", "NL"] and entries[2]["formatted_address"] == "Albany, NY, US"
    assert entries[2]["approximate"] == "yes" and "conference_url" not in entries[2]


def test_meeting_page_is_plain_html_in_the_meeting_zone():
    from html.parser import HTMLParser

    page = feeds.meeting_page(meeting(name="Tuesday <Hope>", attendance_mode="hybrid",
                                      conference_url="https://zoom.us/j/9?a=1&b=2", types=["D", "X"],
                                      exceptions={model.exception_key(datetime(2027, 3, 10, 0, 0, tzinfo=UTC)):
                                                  {"status": "cancelled"}}), SITE, now=NOW)
    HTMLParser().feed(page)  # parses
    assert page.startswith("<!doctype html>") and '<html lang="en">' in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "Tuesday &lt;Hope&gt;" in page and "<Hope>" not in page  # escaped
    assert "Every Tuesday, 19:00&ndash;20:30" in page and "America/New_York" in page
    assert "Tuesday 2 March 2027, 19:00 EST" in page and "Tuesday 16 March 2027, 19:00 EDT" in page
    assert '<dd class="cancelled">Tuesday 9 March 2027, 19:00 EST (not meeting)</dd>' in page
    assert "Riverside" in page and "12 River Rd" in page and "https://zoom.us/j/9?a=1&amp;b=2" in page
    assert "Discussion, Wheelchair Access, Open, English" in page
    assert "src=" not in page and "<link" not in page and "@import" not in page  # nothing from another host


def test_ics_series_with_exdate_override_and_utc_until():
    cancelled = datetime(2027, 3, 10, 0, 0, tzinfo=UTC)      # 9 March 19:00 EST
    moved_from = datetime(2027, 3, 16, 23, 0, tzinfo=UTC)    # 16 March 19:00 EDT
    doc = meeting(rrule="FREQ=WEEKLY;BYDAY=TU;UNTIL=20270601T190000", exceptions={
        model.exception_key(cancelled): {"status": "cancelled"},
        model.exception_key(moved_from): {"status": "moved", "start": datetime(2027, 3, 17, 23, 0, tzinfo=UTC),
                                          "end": datetime(2027, 3, 18, 0, 30, tzinfo=UTC)}})
    body = feeds.render(feeds.new_calendar("x"), feeds.meeting_events(doc, SITE, NOW))
    cal = Calendar.from_ical(body)
    master, override = cal.walk("VEVENT")
    assert str(master["uid"]) == str(override["uid"]) == "meeting-m1@recoverynet"
    assert b"UNTIL=20270601T230000Z" in master["rrule"].to_ical()
    assert master["exdate"].dts[0].dt.astimezone(UTC) == cancelled
    assert override.decoded("recurrence-id").astimezone(UTC) == moved_from
    assert str(master["location"]).startswith("Riverside, 12 River Rd")
    assert cal.walk("VTIMEZONE")


# --- VTIMEZONE, checked with ical.js (Thunderbird, Nextcloud Calendar) ---------------------------------

NODE_CHECK = Path(__file__).resolve().parents[1] / "node"
WEEKS = 60


def ical_js_starts(ics: bytes, count: int) -> dict[str, list[datetime]]:
    """Each event's first ``count`` starts as ical.js expands them with the feed's own VTIMEZONEs."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is needed to check the calendar feeds with ical.js (install node 18+ and npm).")
    if not (NODE_CHECK / "node_modules" / "ical.js").is_dir():
        pytest.fail(f"ical.js is not installed: run ./deploy/test (it runs npm ci in {NODE_CHECK}).")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "feed.ics"
        path.write_bytes(ics)
        done = subprocess.run([node, str(NODE_CHECK / "expand.mjs"), str(path), str(count)],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return {uid: [datetime.fromtimestamp(s, UTC) for s in starts] for uid, starts in json.loads(done.stdout).items()}


WEEKLY_AT_NINE = {  # zone -> first local start (a Monday), each crossing the zone's changes in 60 weeks
    "America/New_York": "2027-01-04T09:00",
    "Europe/Berlin": "2027-01-04T09:00",
    "Australia/Sydney": "2027-01-04T09:00",    # southern: daylight time at the start, ends in April
    "Asia/Kolkata": "2027-01-04T09:00",        # no daylight saving time
    "America/Phoenix": "2027-01-04T09:00",     # no daylight saving time, among zones that have it
    "Asia/Jerusalem": "2027-01-04T09:00",      # Friday before the last Sunday: no yearly RRULE fits
    "America/Sao_Paulo": "2027-01-04T09:00",   # daylight saving time abolished in 2019
}
AFTER_2038 = {"America/Chicago": "2037-11-02T09:00", "Europe/London": "2040-01-02T09:00"}


def test_every_occurrence_lands_where_zoneinfo_says_when_ical_js_expands_the_feed():
    meetings = [meeting(_id=f"m{i}", rrule="FREQ=WEEKLY", first_start_local=first, time_zone=zone,
                        duration_minutes=60)
                for i, (zone, first) in enumerate([*WEEKLY_AT_NINE.items(), *AFTER_2038.items()])]
    events = [e for m in meetings for e in feeds.meeting_events(m, None, NOW)]
    body = feeds.render(feeds.new_calendar("x"), events)
    got = ical_js_starts(body, WEEKS)
    for m in meetings:
        tz = ZoneInfo(m["time_zone"])
        first = datetime.fromisoformat(m["first_start_local"])
        expected = [(first + timedelta(weeks=k)).replace(tzinfo=tz).astimezone(UTC) for k in range(WEEKS)]
        wrong = [(e.astimezone(tz), g.astimezone(tz)) for e, g in zip(expected, got[f"meeting-{m['_id']}@recoverynet"])
                 if e != g]
        assert not wrong and len(got[f"meeting-{m['_id']}@recoverynet"]) == WEEKS, (m["time_zone"], wrong[:3])


def test_vtimezone_is_one_standard_and_one_daylight_rule_without_date_lists():
    cal = Calendar.from_ical(feeds.render(feeds.new_calendar("x"), [
        e for zone in ("America/New_York", "Australia/Sydney", "Asia/Kolkata")
        for e in feeds.meeting_events(meeting(_id=zone, time_zone=zone), None, NOW)], year=2027))
    zones = {str(z["tzid"]): z for z in cal.walk("VTIMEZONE")}
    assert sorted(zones) == ["America/New_York", "Asia/Kolkata", "Australia/Sydney"]
    new_york = {c.name: c for c in zones["America/New_York"].subcomponents}
    assert sorted(new_york) == ["DAYLIGHT", "STANDARD"] and len(zones["America/New_York"].subcomponents) == 2
    assert new_york["DAYLIGHT"]["rrule"].to_ical() == b"FREQ=YEARLY;BYDAY=2SU;BYMONTH=3"
    assert new_york["STANDARD"]["rrule"].to_ical() == b"FREQ=YEARLY;BYDAY=1SU;BYMONTH=11"
    assert new_york["DAYLIGHT"].decoded("dtstart") == datetime(2007, 3, 11, 2, 0)  # the rules since 2007
    sydney = {c.name: c for c in zones["Australia/Sydney"].subcomponents}
    assert sydney["DAYLIGHT"]["rrule"].to_ical() == b"FREQ=YEARLY;BYDAY=1SU;BYMONTH=10"
    assert sydney["STANDARD"]["rrule"].to_ical() == b"FREQ=YEARLY;BYDAY=1SU;BYMONTH=4"
    (kolkata,) = zones["Asia/Kolkata"].subcomponents
    assert kolkata.name == "STANDARD" and "rrule" not in kolkata and "rdate" not in kolkata
    assert kolkata.decoded("tzoffsetto") == timedelta(hours=5, minutes=30)
    assert b"RDATE" not in cal.to_ical()
