"""Feed rendering without I/O: Meeting Guide entries and iCalendar."""
from datetime import datetime, timezone

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
                     "updated": "2027-02-20 12:00:00", "url": "https://x.org/v1/feeds/org1/meetings/tuesday-hope-m1",
                     "notes": "Discussion", "location": "Riverside", "address": "12 River Rd", "city": "Albany",
                     "state": "NY", "postal_code": "12207", "country": "US"}


def test_meeting_guide_skips_monthly_and_crosses_midnight():
    assert feeds.meeting_guide_entry(meeting(rrule="FREQ=MONTHLY;BYDAY=1MO"), SITE, base_url="x", now=NOW) is None
    late = feeds.meeting_guide_entry(meeting(rrule="FREQ=WEEKLY;BYDAY=SU,SA", first_start_local="2027-03-06T23:30",
                                             attendance_mode="online", conference_url="https://zoom.us/j/1",
                                             language="es-MX"),
                                     None, base_url="x", now=NOW)
    assert late["day"] == [0, 6] and late["end_time"] == "01:00" and {"ONL", "S"} <= set(late["types"])
    assert late["conference_url"] == "https://zoom.us/j/1" and "address" not in late


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
