"""Meetings, occurrences, registrations, attendance and feeds: HTTP API and worker against the real
broker and database; intake's events published as intake would."""
import json
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from icalendar import Calendar

from shared.events.scheduling import (
    AttendanceRecorded,
    MeetingCreated,
    OccurrenceCancelled,
    OccurrenceMoved,
    RegistrationCancelled,
    RegistrationCreated,
    RegistrationPromoted,
)

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("worker")]

UTC = timezone.utc
NY = ZoneInfo("America/New_York")


def meeting_body(site_id, leader_id, **kw):
    body = {"site_id": site_id, "facilitator_id": leader_id, "name": "Tuesday Hope", "capacity": 20,
            "attendance_mode": "in_person", "rrule": "FREQ=WEEKLY;BYDAY=TU", "first_start_local": "2027-03-02T19:00",
            "duration_minutes": 90, "is_public": True, "types": ["D", "X"], "description": "Open discussion."}
    body.update(kw)
    return body


@pytest.fixture
def world(upstream):
    site = upstream.site()
    leader, other_leader = upstream.leader(site_id=site), upstream.leader(site_id=site)
    members = [upstream.member(site_id=site) for _ in range(4)]
    upstream.known(sites=[site], leaders=[leader, other_leader], members=members)
    return {"site": site, "leader": leader, "other_leader": other_leader, "members": members}


def create(client, headers, body, status=201):
    resp = client.post("/v1/meetings", json=body, headers=headers())
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


def occurrences(client, headers, meeting_id, start, end, **params):
    resp = client.get(f"/v1/meetings/{meeting_id}/occurrences", headers=headers(),
                      query_string={"from": start, "to": end, **params})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_weekly_meeting_keeps_its_local_time_across_a_dst_change(client, headers, world, tap, expect):
    meeting = create(client, headers, meeting_body(world["site"], world["leader"]))
    assert meeting["time_zone"] == "America/New_York"  # the site's zone
    tap.wait_for(expect.of(MeetingCreated, meeting_id=meeting["id"], rrule="FREQ=WEEKLY;BYDAY=TU"))
    occs = occurrences(client, headers, meeting["id"], "2027-03-01T00:00:00Z", "2027-03-25T00:00:00Z")
    # US daylight saving time starts on Sunday 14 March 2027.
    assert [o["local_start"] for o in occs] == ["2027-03-02T19:00", "2027-03-09T19:00", "2027-03-16T19:00",
                                                "2027-03-23T19:00"]
    starts = [datetime.fromisoformat(o["start"]).astimezone(UTC) for o in occs]
    assert [s.hour for s in starts] == [0, 0, 23, 23]
    assert all(o["seats_left"] == 20 for o in occs)


def test_facilitator_conflict_is_refused_naming_the_clashing_meeting(client, headers, world):
    first = create(client, headers, meeting_body(world["site"], world["leader"]))
    clash = meeting_body(world["site"], world["leader"], name="Evening Steps", first_start_local="2027-03-09T20:00",
                         rrule="FREQ=WEEKLY;BYDAY=TU,TH")
    resp = client.post("/v1/meetings", json=clash, headers=headers())
    assert resp.status_code == 409
    problem = resp.get_json()
    assert resp.content_type == "application/problem+json"
    assert "Tuesday Hope" in problem["detail"] and first["id"] in problem["detail"]
    assert problem["clash"]["id"] == first["id"] and "facilitator_id" in problem["errors"]
    # As co-facilitator too.
    resp = client.post("/v1/meetings", json={**clash, "facilitator_id": world["other_leader"],
                                             "co_facilitator_id": world["leader"]}, headers=headers())
    assert resp.status_code == 409
    # Another leader at the same time is fine; so is the same leader an hour after the end.
    create(client, headers, {**clash, "facilitator_id": world["other_leader"]})
    create(client, headers, meeting_body(world["site"], world["leader"], name="Late", first_start_local="2027-03-02T20:30"))
    late = client.get("/v1/meetings", headers=headers(), query_string={"leader_id": world["leader"]}).get_json()
    assert late["total"] == 2


def test_capacity_waitlist_and_promotion(client, headers, world, tap, expect):
    meeting = create(client, headers, meeting_body(world["site"], world["leader"], capacity=2))
    url = f"/v1/meetings/{meeting['id']}/registrations"
    regs = []
    for member in world["members"]:
        resp = client.post(url, json={"member_id": member}, headers=headers())
        assert resp.status_code == 201, resp.get_json()
        regs.append(resp.get_json())
    assert [r["status"] for r in regs] == ["registered", "registered", "waitlisted", "waitlisted"]
    assert [r["waitlist_position"] for r in regs] == [None, None, 1, 2]
    # Registering twice is refused, naming the registration.
    again = client.post(url, json={"member_id": world["members"][0]}, headers=headers())
    assert again.status_code == 409 and regs[0]["id"] in again.get_json()["detail"]
    # A seat frees: the first in line moves up, the second becomes first.
    assert client.delete(f"{url}/{regs[0]['id']}", headers=headers()).status_code == 200
    tap.wait_for(expect.of(RegistrationCancelled, registration_id=regs[0]["id"]))
    promoted = tap.wait_for(expect.of(RegistrationPromoted, meeting_id=meeting["id"]))
    assert [e.data["member_id"] for e in promoted] == [world["members"][2]]
    listed = {r["member_id"]: r for r in client.get(url, headers=headers()).get_json()["items"]}
    assert listed[world["members"][2]]["status"] == "registered"
    assert listed[world["members"][3]]["waitlist_position"] == 1
    created = tap.wait_for(expect.of(RegistrationCreated, meeting_id=meeting["id"]), count=4)
    assert sorted(e.data["status"] for e in created) == ["registered", "registered", "waitlisted", "waitlisted"]
    # Raising the capacity promotes the rest.
    etag = client.get(f"/v1/meetings/{meeting['id']}", headers=headers()).headers["ETag"]
    resp = client.patch(f"/v1/meetings/{meeting['id']}", json={"capacity": 5},
                        headers={**headers(), "If-Match": etag})
    assert resp.status_code == 200, resp.get_json()
    tap.wait_for(expect.of(RegistrationPromoted, member_id=world["members"][3]))


def test_cancelled_occurrence_vanishes_from_feeds_and_registrants_are_told(client, headers, world, tap, expect,
                                                                         upstream):
    now = datetime.now(UTC)
    first_local = (now + timedelta(days=2)).astimezone(NY).replace(hour=19, minute=0, second=0, microsecond=0,
                                                                   tzinfo=None)
    body = meeting_body(world["site"], world["leader"], rrule="FREQ=WEEKLY",
                        first_start_local=first_local.isoformat(timespec="minutes"))
    meeting = create(client, headers, body)
    series_member, one_off_member, waiting = world["members"][:3]
    url = f"/v1/meetings/{meeting['id']}/registrations"
    occs = occurrences(client, headers, meeting["id"], now.isoformat(), (now + timedelta(days=30)).isoformat())
    target = occs[1]
    assert client.post(url, json={"member_id": series_member}, headers=headers()).status_code == 201
    assert client.post(url, json={"member_id": one_off_member, "occurrence_id": target["occurrence_id"]},
                       headers=headers()).status_code == 201
    # The member's private calendar, by feed token.
    token = client.post("/v1/feed-tokens", json={"person_kind": "member", "person_id": series_member},
                        headers=headers()).get_json()
    assert token["url"].endswith(f"/v1/feeds/{upstream.org}/members/{series_member}/calendar.ics?token={token['token']}")

    resp = client.post(f"/v1/meetings/{meeting['id']}/occurrences/{target['occurrence_id']}/cancel",
                       json={"reason": "Building closed"}, headers=headers())
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    told = tap.wait_for(expect.of(OccurrenceCancelled, occurrence_id=target["occurrence_id"]))[0]
    assert told.data["registrant_ids"] == sorted([series_member, one_off_member])
    assert told.data["reason"] == "Building closed"

    # Gone from the occurrence list (and listed as cancelled when asked for).
    after = occurrences(client, headers, meeting["id"], now.isoformat(), (now + timedelta(days=30)).isoformat())
    assert target["occurrence_id"] not in [o["occurrence_id"] for o in after]
    with_cancelled = occurrences(client, headers, meeting["id"], now.isoformat(),
                                 (now + timedelta(days=30)).isoformat(), include_cancelled="true")
    assert {o["occurrence_id"]: o["status"] for o in with_cancelled}[target["occurrence_id"]] == "cancelled"

    cancelled_start = datetime.fromisoformat(target["start"])
    for path in (f"/v1/feeds/{upstream.org}/sites/{world['site']}/meetings.ics",
                 f"/v1/feeds/{upstream.org}/members/{series_member}/calendar.ics?token={token['token']}"):
        resp = client.get(path)
        assert resp.status_code == 200 and resp.mimetype == "text/calendar"
        starts = expanded_starts(resp.data, f"meeting-{meeting['id']}@recoverynet", now, now + timedelta(days=30))
        assert cancelled_start not in starts
        assert datetime.fromisoformat(occs[0]["start"]) in starts and datetime.fromisoformat(occs[2]["start"]) in starts
    # The one-off registrant's calendar no longer has that occurrence at all.
    token2 = client.post("/v1/feed-tokens", json={"person_kind": "member", "person_id": one_off_member},
                         headers=headers()).get_json()["token"]
    cal = Calendar.from_ical(client.get(f"/v1/feeds/{upstream.org}/members/{one_off_member}/calendar.ics",
                                        query_string={"token": token2}).data)
    assert not [c for c in cal.walk("VEVENT")]
    # Meeting Guide notes the date it does not meet.
    guide = client.get(f"/v1/feeds/{upstream.org}/meeting-guide.json").get_json()
    entry = next(e for e in guide if e["slug"] == meeting["slug"])
    if cancelled_start - now < timedelta(days=28):
        assert target["local_start"][:10] in entry["notes"]
    # Wrong or missing token: not found / unauthorized; a bearer token of the organization works.
    path = f"/v1/feeds/{upstream.org}/members/{series_member}/calendar.ics"
    assert client.get(path, query_string={"token": "x" * 40}).status_code == 404
    assert client.get(path).status_code == 401
    assert client.get(path, headers=headers()).status_code == 200
    assert waiting  # unused member stays unregistered


def expanded_starts(ics: bytes, uid: str, start: datetime, end: datetime) -> set[datetime]:
    """Expand a series with a standard parser (icalendar) and dateutil, honouring EXDATE and
    RECURRENCE-ID overrides, as a calendar app would."""
    cal = Calendar.from_ical(ics)
    events = [c for c in cal.walk("VEVENT") if str(c.get("uid")) == uid]
    master = next(e for e in events if e.get("recurrence-id") is None)
    dtstart = master.decoded("dtstart")
    rule = rrulestr(master.get("rrule").to_ical().decode(), dtstart=dtstart)
    exdates = set()
    raw = master.get("exdate")
    for group in (raw if isinstance(raw, list) else [raw] if raw is not None else []):
        exdates |= {d.dt.astimezone(UTC) for d in group.dts}
    overrides = {e.decoded("recurrence-id").astimezone(UTC): e.decoded("dtstart").astimezone(UTC)
                 for e in events if e.get("recurrence-id") is not None}
    starts = set()
    for occ in rule.between(start, end, inc=True):
        occ = occ.astimezone(UTC)
        if occ in exdates:
            continue
        starts.add(overrides.get(occ, occ))
    return starts


def test_moving_an_occurrence_and_recording_attendance(client, headers, world, tap, expect, upstream):
    now = datetime.now(UTC)
    local = (now - timedelta(minutes=20)).astimezone(NY).replace(second=0, microsecond=0, tzinfo=None)
    meeting = create(client, headers, meeting_body(world["site"], world["leader"], rrule="FREQ=WEEKLY",
                                                   first_start_local=local.isoformat(timespec="minutes")))
    occs = occurrences(client, headers, meeting["id"], (now - timedelta(hours=1)).isoformat(),
                       (now + timedelta(days=15)).isoformat())
    current, next_one = occs[0], occs[1]
    facilitator = headers("leader", leader_id=world["leader"], sites=[world["site"]])
    outsider = headers("leader", leader_id=world["other_leader"], sites=[world["site"]])
    path = f"/v1/meetings/{meeting['id']}/occurrences/{current['occurrence_id']}/attendance"
    body = {"present_member_ids": world["members"][:2], "absent_member_ids": [world["members"][2]]}
    assert client.put(path, json=body, headers=outsider).status_code == 403
    resp = client.put(path, json=body, headers=facilitator)
    assert resp.status_code == 200, resp.get_json()
    recorded = tap.wait_for(expect.of(AttendanceRecorded, occurrence_id=current["occurrence_id"]))[0]
    assert recorded.data["present_member_ids"] == sorted(world["members"][:2])
    bad = client.put(path, json={"present_member_ids": ["a"], "absent_member_ids": ["a"]}, headers=facilitator)
    assert bad.status_code == 422 and "absent_member_ids" in bad.get_json()["errors"]
    # The facilitator moves next week's occurrence by a day, same local time.
    new_start = (datetime.fromisoformat(next_one["local_start"]) + timedelta(days=1)).isoformat()
    resp = client.post(f"/v1/meetings/{meeting['id']}/occurrences/{next_one['occurrence_id']}/move",
                       json={"start": new_start}, headers=facilitator)
    assert resp.status_code == 200, resp.get_json()
    moved = tap.wait_for(expect.of(OccurrenceMoved, occurrence_id=next_one["occurrence_id"]))[0]
    assert datetime.fromisoformat(moved.data["new_start"]).astimezone(NY).isoformat()[:16] == new_start[:16]
    ics = client.get(f"/v1/feeds/{upstream.org}/sites/{world['site']}/meetings.ics").data
    starts = expanded_starts(ics, f"meeting-{meeting['id']}@recoverynet", now, now + timedelta(days=15))
    assert datetime.fromisoformat(moved.data["new_start"]) in starts
    assert datetime.fromisoformat(next_one["start"]) not in starts
    # Moving onto another meeting of the same facilitator is refused, naming it.
    other = create(client, headers, meeting_body(world["site"], world["leader"], name="Thursday Circle",
                                                 rrule="FREQ=WEEKLY",
                                                 first_start_local=(local + timedelta(days=3)).isoformat(timespec="minutes")))
    target = occurrences(client, headers, other["id"], now.isoformat(), (now + timedelta(days=8)).isoformat())[0]
    resp = client.post(f"/v1/meetings/{meeting['id']}/occurrences/{occs[2]['occurrence_id']}/move",
                       json={"start": target["start"]}, headers=facilitator)
    assert resp.status_code == 409 and "Thursday Circle" in resp.get_json()["detail"]


# The Meeting Guide spec's current types (code4recovery/spec README); there is none for online meetings.
MEETING_GUIDE_TYPES = {"11", "12x12", "A", "ABSI", "AF", "AL", "AL-AN", "AM", "AR", "ASL", "B", "BA", "BE", "BG", "BI",
                       "BRK", "C", "CAN", "CF", "D", "DA", "DB", "DD", "DE", "DR", "EL", "EN", "FA", "FI", "FF", "FR",
                       "G", "GR", "H", "HE", "HI", "HR", "HU", "IS", "ITA", "JA", "KA", "KOR", "L", "LGBTQ", "LIT",
                       "LS", "LT", "M", "MED", "ML", "MT", "N", "NB", "NDG", "NE", "NL", "NO", "O", "OUT", "P", "POA",
                       "POC", "POL", "POR", "PUN", "RUS", "S", "SEN", "SK", "SL", "SM", "SP", "ST", "SV", "T", "TC",
                       "TH", "TL", "TR", "TUR", "UK", "W", "X", "XB", "XT", "Y"}


def test_meeting_guide_feed_follows_the_spec_and_shows_only_public_meetings(client, headers, world, upstream):
    create(client, headers, meeting_body(world["site"], world["leader"], types=["D", "X"]))
    create(client, headers, meeting_body(world["site"], world["other_leader"], name="Online Morning",
                                         attendance_mode="online", conference_url="https://zoom.us/j/123",
                                         conference_phone="+15555550100", rrule="FREQ=WEEKLY;BYDAY=MO,WE,FR",
                                         first_start_local="2027-03-01T07:30", duration_minutes=60, is_open=False))
    create(client, headers, meeting_body(world["site"], world["other_leader"], name="Private group", is_public=False,
                                         first_start_local="2027-03-02T12:00"))
    create(client, headers, meeting_body(world["site"], world["other_leader"], name="First Monday",
                                         rrule="FREQ=MONTHLY;BYDAY=1MO", first_start_local="2027-03-01T12:00"))
    meetings = client.get("/v1/meetings", headers=headers()).get_json()["items"]
    hope = next(m for m in meetings if m["name"] == "Tuesday Hope")
    # A registration must not leak into the feed.
    assert client.post(f"/v1/meetings/{hope['id']}/registrations", json={"member_id": world["members"][0]},
                      headers=headers()).status_code == 201

    resp = client.get(f"/v1/feeds/{upstream.org}/meeting-guide.json")  # no token: public
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    feed = resp.get_json()
    assert isinstance(feed, list)
    assert sorted(e["name"] for e in feed) == ["Online Morning", "Tuesday Hope"]  # public + weekly only
    assert len({e["slug"] for e in feed}) == len(feed)
    for entry in feed:
        assert isinstance(entry["name"], str) and 0 < len(entry["name"]) <= 255
        assert re.fullmatch(r"[a-z0-9-]{1,64}", entry["slug"])
        days = entry["day"] if isinstance(entry["day"], list) else [entry["day"]]
        assert days and all(isinstance(d, int) and 0 <= d <= 6 for d in days)
        assert re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", entry["time"])
        assert re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", entry["end_time"])
        ZoneInfo(entry["timezone"])
        assert set(entry["types"]) <= MEETING_GUIDE_TYPES
        datetime.strptime(entry["updated"], "%Y-%m-%d %H:%M:%S")
        assert entry["url"].startswith("http")
        assert entry.get("formatted_address") or entry.get("address") or entry.get("conference_url") \
            or entry.get("conference_phone")
        assert all(v not in (None, "") for v in entry.values())
    hope_entry = next(e for e in feed if e["name"] == "Tuesday Hope")
    assert (hope_entry["day"], hope_entry["time"], hope_entry["end_time"]) == (2, "19:00", "20:30")
    assert hope_entry["timezone"] == "America/New_York"
    assert {"address", "city", "state", "postal_code", "country"} <= hope_entry.keys()
    assert set(hope_entry["types"]) == {"D", "X", "O", "EN"}
    assert hope_entry["attendance_option"] == "in_person" and "conference_url" not in hope_entry
    listing = client.get(hope_entry["url"].removeprefix("http://testserver"), headers={"Accept": "application/json"})
    assert listing.status_code == 200 and listing.get_json()["slug"] == hope_entry["slug"]
    online = next(e for e in feed if e["name"] == "Online Morning")
    assert online["day"] == [1, 3, 5] and online["time"] == "07:30" and online["end_time"] == "08:30"
    assert online["conference_url"] == "https://zoom.us/j/123" and online["conference_phone"] == "+15555550100"
    assert online["attendance_option"] == "online" and set(online["types"]) == {"D", "X", "C", "EN"}
    assert "address" not in online and online["formatted_address"] == "Albany, NY, US"
    # Nothing about who attends or leads.
    text = json.dumps(feed)
    for person in [*world["members"], world["leader"], world["other_leader"]]:
        assert person not in text
    # Another organization's feed is empty, not this one's.
    assert client.get("/v1/feeds/org-nobody/meeting-guide.json").get_json() == []


def test_a_listing_url_opens_a_public_page_for_people(client, headers, world, upstream):
    meeting = create(client, headers, meeting_body(world["site"], world["leader"], co_facilitator_id=world["other_leader"],
                                                   attendance_mode="hybrid", conference_url="https://zoom.us/j/77",
                                                   types=["D", "X", "BE"]))
    for member in world["members"][:2]:
        assert client.post(f"/v1/meetings/{meeting['id']}/registrations", json={"member_id": member},
                           headers=headers()).status_code == 201
    feed = client.get(f"/v1/feeds/{upstream.org}/meeting-guide.json").get_json()
    url = next(e["url"] for e in feed if e["slug"] == meeting["slug"])
    resp = client.get(url.removeprefix("http://testserver"), headers={"Accept": "text/html,*/*;q=0.8"})  # no token
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert resp.headers["Cache-Control"] == "public, max-age=300" and "Accept" in resp.headers["Vary"]
    page = resp.get_data(as_text=True)
    assert '<html lang="en">' in page and 'name="viewport"' in page
    assert "<h1>Tuesday Hope</h1>" in page
    assert "Every Tuesday, 19:00&ndash;20:30" in page and "America/New_York" in page  # the meeting's own zone
    assert "Tuesday 2 March 2027, 19:00 EST" in page and "Tuesday 16 March 2027, 19:00 EDT" in page
    assert "https://zoom.us/j/77" in page and "Discussion, Wheelchair Access, Newcomer, Open, English" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//(?!zoom\.us/)""", page)  # no asset from another host
    for person in [*world["members"], world["leader"], world["other_leader"], meeting["id"]]:
        assert person not in page  # nobody who attends or leads
    assert client.get(f"/v1/feeds/{upstream.org}/meetings/no-such-meeting").status_code == 404
    private = create(client, headers, meeting_body(world["site"], world["other_leader"], name="Private",
                                                   is_public=False, first_start_local="2027-03-02T12:00"))
    assert client.get(f"/v1/feeds/{upstream.org}/meetings/{private['slug']}").status_code == 404


def test_meeting_types_are_the_meeting_guide_codes(client, headers, world):
    resp = client.post("/v1/meetings", json=meeting_body(world["site"], world["leader"], types=["D", "ONL"]),
                       headers=headers())
    assert resp.status_code == 422 and list(resp.get_json()["errors"]) == ["types"]
    assert "ONL" in json.dumps(resp.get_json()["errors"])
    create(client, headers, meeting_body(world["site"], world["leader"], types=["12x12", "AL-AN", "TUR"]))


def test_site_calendar_parses_with_stable_uids_and_time_zones(client, headers, world, upstream):
    meeting = create(client, headers, meeting_body(world["site"], world["leader"]))
    create(client, headers, meeting_body(world["site"], world["other_leader"], name="Hidden", is_public=False))
    path = f"/v1/feeds/{upstream.org}/sites/{world['site']}/meetings.ics"
    first, second = client.get(path), client.get(path)
    assert first.status_code == 200
    cal = Calendar.from_ical(first.data)
    assert str(cal["version"]) == "2.0" and cal.get("prodid")
    events = cal.walk("VEVENT")
    assert [str(e["uid"]) for e in events] == [f"meeting-{meeting['id']}@recoverynet"]
    assert [str(e["uid"]) for e in Calendar.from_ical(second.data).walk("VEVENT")] == [str(events[0]["uid"])]
    event = events[0]
    assert str(event["summary"]) == "Tuesday Hope"
    assert event["dtstart"].params["TZID"] == "America/New_York"
    assert event.decoded("dtstart").replace(tzinfo=None) == datetime(2027, 3, 2, 19, 0)
    assert event["rrule"].to_ical() == b"FREQ=WEEKLY;BYDAY=TU"
    assert [tz["tzid"] for tz in cal.walk("VTIMEZONE")] == ["America/New_York"]
    # Unknown site: 404 problem.
    assert client.get(f"/v1/feeds/{upstream.org}/sites/nope/meetings.ics").status_code == 404


def test_leader_calendar_needs_a_token(client, headers, world, upstream):
    meeting = create(client, headers, meeting_body(world["site"], world["leader"], is_public=False))
    path = f"/v1/feeds/{upstream.org}/leaders/{world['leader']}/calendar.ics"
    assert client.get(path).status_code == 401
    own = headers("leader", leader_id=world["leader"], sites=[world["site"]])
    other = headers("leader", leader_id=world["other_leader"], sites=[world["site"]])
    assert client.get(path, headers=other).status_code == 404
    resp = client.get(path, headers=own)
    assert resp.status_code == 200
    uids = [str(e["uid"]) for e in Calendar.from_ical(resp.data).walk("VEVENT")]
    assert uids == [f"meeting-{meeting['id']}@recoverynet"]  # private meetings are in the leader's own calendar
    token = client.post("/v1/feed-tokens", json={"person_kind": "leader", "person_id": world["leader"]},
                        headers=own).get_json()["token"]
    assert client.get(path, query_string={"token": token}).status_code == 200
    assert client.post("/v1/feed-tokens", json={"person_kind": "leader", "person_id": world["leader"]},
                       headers=other).status_code == 404


def test_bad_input_and_other_organizations(client, headers, world, make_token):
    from shared.testing.fixtures import auth_header

    bad = client.post("/v1/meetings", json=meeting_body(world["site"], world["leader"], rrule="FREQ=HOURLY"),
                      headers=headers())
    assert bad.status_code == 422 and "rrule" in bad.get_json()["errors"]
    bad = client.post("/v1/meetings", json=meeting_body(world["site"], world["leader"],
                                                        first_start_local="2027-03-04T19:00"), headers=headers())
    assert bad.status_code == 422 and "first_start_local" in bad.get_json()["errors"]  # a Thursday, rule says TU
    bad = client.post("/v1/meetings", json=meeting_body(world["site"], world["leader"], capacity=0), headers=headers())
    assert bad.status_code == 422 and "capacity" in bad.get_json()["errors"]
    bad = client.post("/v1/meetings", json=meeting_body(world["site"], "leader-unknown"), headers=headers())
    assert bad.status_code == 422 and "facilitator_id" in bad.get_json()["errors"]
    bad = client.post("/v1/meetings", json=meeting_body(None, world["leader"], attendance_mode="online",
                                                        time_zone="Mars/Base"), headers=headers())
    assert bad.status_code == 422 and "time_zone" in bad.get_json()["errors"]
    bad = client.post("/v1/meetings", json=meeting_body(world["site"], world["leader"], attendance_mode="online"),
                      headers=headers())
    assert bad.status_code == 422 and "conference_url" in bad.get_json()["errors"]
    bad = client.get("/v1/occurrences", headers=headers(), query_string={"from": "2027-01-01T00:00:00Z"})
    assert bad.status_code == 422 and "to" in bad.get_json()["errors"]
    assert client.get("/v1/meetings").status_code == 401
    meeting = create(client, headers, meeting_body(world["site"], world["leader"]))
    stranger = auth_header(make_token("org-elsewhere", "admin"))
    assert client.get(f"/v1/meetings/{meeting['id']}", headers=stranger).status_code == 404
    other_site = headers("coordinator", sites=["another-site"])
    assert client.get(f"/v1/meetings/{meeting['id']}", headers=other_site).status_code == 404
    assert client.get(f"/v1/meetings/{meeting['id']}", headers=headers("coordinator", sites=[world["site"]])).status_code == 200
    resp = client.patch(f"/v1/meetings/{meeting['id']}", json={"name": "Renamed"}, headers=headers())
    assert resp.status_code == 428


def test_site_time_zone_change_keeps_local_wall_time(client, headers, world, upstream, tap, expect):
    from shared.events.intake import SiteUpdated
    from shared.events.scheduling import MeetingUpdated

    meeting = create(client, headers, meeting_body(world["site"], world["leader"]))
    upstream.send(SiteUpdated, site_id=world["site"], name="Riverside Recovery Center", time_zone="America/Chicago",
                  virtual_only=False, location=None)
    updated = tap.wait_for(expect.of(MeetingUpdated, meeting_id=meeting["id"]))[0]
    assert updated.data["time_zone"] == "America/Chicago"
    occs = occurrences(client, headers, meeting["id"], "2027-03-01T00:00:00Z", "2027-03-11T00:00:00Z")
    assert [o["local_start"] for o in occs] == ["2027-03-02T19:00", "2027-03-09T19:00"]
    assert datetime.fromisoformat(occs[0]["start"]).astimezone(UTC).hour == 1  # 19:00 CST


def test_concurrent_registrations_never_overfill_a_meeting(app, headers, world, tap, expect):
    import threading

    client = app.test_client()
    meeting = create(client, headers, meeting_body(world["site"], world["leader"], capacity=1))
    url = f"/v1/meetings/{meeting['id']}/registrations"
    statuses: list[str] = []
    barrier = threading.Barrier(len(world["members"]))

    def register(member):
        own = app.test_client()
        barrier.wait()
        resp = own.post(url, json={"member_id": member}, headers=headers())
        statuses.append(resp.get_json().get("status") or str(resp.status_code))

    threads = [threading.Thread(target=register, args=(m,)) for m in world["members"]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses) == ["registered", "waitlisted", "waitlisted", "waitlisted"]
    listed = client.get(url, headers=headers()).get_json()["items"]
    assert sorted(r["waitlist_position"] or 0 for r in listed) == [0, 1, 2, 3]


def test_cancelling_a_meeting_tells_registrants_and_removes_it_from_feeds(client, headers, world, tap, expect,
                                                                        upstream):
    from shared.events.scheduling import MeetingCancelled

    meeting = create(client, headers, meeting_body(world["site"], world["leader"]))
    for member in world["members"][:2]:
        client.post(f"/v1/meetings/{meeting['id']}/registrations", json={"member_id": member}, headers=headers())
    resp = client.post(f"/v1/meetings/{meeting['id']}/cancel", json={"reason": "Group closed"}, headers=headers())
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    told = tap.wait_for(expect.of(MeetingCancelled, meeting_id=meeting["id"]))[0]
    assert told.data["registrant_ids"] == sorted(world["members"][:2])
    assert all(e["slug"] != meeting["slug"] for e in client.get(f"/v1/feeds/{upstream.org}/meeting-guide.json").get_json())
    cal = Calendar.from_ical(client.get(f"/v1/feeds/{upstream.org}/sites/{world['site']}/meetings.ics").data)
    assert not cal.walk("VEVENT")
    # Its leader is free again at that time.
    create(client, headers, meeting_body(world["site"], world["leader"], name="Successor"))


def test_closed_meeting_takes_only_its_sites_members(client, headers, world, upstream):
    outsider = upstream.member(site_id="another-site")
    upstream.known(members=[outsider])
    meeting = create(client, headers, meeting_body(world["site"], world["leader"], is_open=False))
    url = f"/v1/meetings/{meeting['id']}/registrations"
    refused = client.post(url, json={"member_id": outsider}, headers=headers())
    assert refused.status_code == 403 and "member_id" in refused.get_json()["errors"]
    assert client.post(url, json={"member_id": world["members"][0]}, headers=headers()).status_code == 201
    # A coordinator of another site cannot register this site's members (nor see them).
    other = headers("coordinator", sites=["another-site"])
    assert client.post(url, json={"member_id": world["members"][1]}, headers=other).status_code == 404
