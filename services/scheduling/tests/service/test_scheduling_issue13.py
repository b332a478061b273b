"""Issue 13. (1) A member, leader or site scheduling's read model does not hold (yet) answers "not yet
known" (problem type, Retry-After, retry_after; 422 naming the body field), exactly as a made-up or
another organization's id. (2) A session outside the member's or the leader's weekly availability
needs ``outside_availability: true``; with it the session is booked and says so."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.events.matching import MatchActivated
from shared.events.scheduling import SessionTimesSuggested
from shared.errors import NOT_YET_KNOWN_TYPE

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("worker")]

NY = ZoneInfo("America/New_York")
LEADER_HOURS = [{"day": d, "start": "17:00", "end": "21:00"} for d in range(5)]      # Mon-Fri, New York
MEMBER_HOURS = [{"day": d, "start": "18:00", "end": "20:00"} for d in (1, 3)]        # Tue, Thu, Chicago


def assert_not_yet_known(resp, field):
    assert resp.status_code == 422, resp.get_json()
    assert resp.content_type == "application/problem+json"
    body = resp.get_json()
    assert body["type"] == NOT_YET_KNOWN_TYPE and body["status"] == 422 and list(body["errors"]) == [field]
    assert int(resp.headers["Retry-After"]) == body["retry_after"] > 0
    assert "retry" in body["detail"] and "yet" in body["detail"]
    return body


def comparable(body, ref_id):
    return {k: str(v).replace(ref_id, "ID") for k, v in body.items() if k not in ("instance", "request_id")}


def meeting_body(site, leader):
    first = (datetime.now(NY) + timedelta(days=3)).strftime("%Y-%m-%dT19:00")
    return {"site_id": site, "facilitator_id": leader, "name": "Evening Hope", "capacity": 5,
            "attendance_mode": "in_person", "rrule": "FREQ=WEEKLY", "first_start_local": first,
            "duration_minutes": 60}


def test_made_up_references_are_not_yet_known_and_another_orgs_look_the_same(upstream, client, headers, make_token):
    site = upstream.site(time_zone="America/New_York")
    leader = upstream.leader(site_id=site)
    member = upstream.member(site_id=site)
    upstream.known(sites=[site], leaders=[leader], members=[member])
    assert_not_yet_known(client.post("/v1/meetings", json=meeting_body("made-up-site", leader), headers=headers()),
                         "site_id")
    assert_not_yet_known(client.post("/v1/meetings", json=meeting_body(site, "made-up-leader"), headers=headers()),
                         "facilitator_id")
    meeting = client.post("/v1/meetings", json=meeting_body(site, leader), headers=headers())
    assert meeting.status_code == 201, meeting.get_json()
    registrations = f"/v1/meetings/{meeting.get_json()['id']}/registrations"
    made_up = assert_not_yet_known(client.post(registrations, json={"member_id": "made-up-member"},
                                               headers=headers()), "member_id")
    assert made_up["errors"]["member_id"]
    # Another organization's admin naming this organization's leader or site gets exactly the answer of
    # a made-up id: nothing tells it that they exist.
    stranger = {"Authorization": f"Bearer {make_token('org-elsewhere-' + upstream.org, 'admin')}"}
    online = {"site_id": None, "facilitator_id": "made-up-leader", "name": "x", "capacity": 5,
              "attendance_mode": "online", "rrule": "FREQ=WEEKLY", "time_zone": "UTC",
              "conference_url": "https://example.org/room",
              "first_start_local": (datetime.now(NY) + timedelta(days=3)).strftime("%Y-%m-%dT19:00"),
              "duration_minutes": 60}
    theirs = assert_not_yet_known(client.post("/v1/meetings", json={**online, "facilitator_id": leader},
                                              headers=stranger), "facilitator_id")
    made_up = assert_not_yet_known(client.post("/v1/meetings", json=online, headers=stranger), "facilitator_id")
    assert comparable(theirs, leader) == comparable(made_up, "made-up-leader")
    theirs = assert_not_yet_known(client.post("/v1/meetings", json=meeting_body(site, leader), headers=stranger),
                                  "site_id")
    made_up = assert_not_yet_known(client.post("/v1/meetings", json=meeting_body("made-up-site", leader),
                                               headers=stranger), "site_id")
    assert comparable(theirs, site) == comparable(made_up, "made-up-site")


@pytest.fixture
def match(upstream, tap, expect):
    site = upstream.site(time_zone="America/New_York")
    leader = upstream.leader(site_id=site, availability=LEADER_HOURS)
    member = upstream.member(site_id=site, time_zone="America/Chicago", availability=MEMBER_HOURS)
    upstream.known(sites=[site], leaders=[leader], members=[member])
    match_id = f"match-{datetime.now().timestamp()}"
    upstream.send(MatchActivated, match_id=match_id, member_id=member, leader_id=leader, site_id=site)
    slots = tap.wait_for(expect.of(SessionTimesSuggested, match_id=match_id))[0].data["suggestions"]
    return {"id": match_id, "site": site, "leader": leader, "member": member, "slots": slots}


def next_local(tz: ZoneInfo, weekday: int, hour: int, days_ahead: int = 2) -> datetime:
    day = datetime.now(tz).date() + timedelta(days=days_ahead)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=tz)


def test_a_session_outside_availability_needs_the_flag(match, client, headers):
    # 01:00 on a Wednesday in New York: outside both people's hours.
    night = next_local(NY, 2, 1).isoformat()
    refused = client.post("/v1/sessions", json={"match_id": match["id"], "start": night}, headers=headers())
    assert refused.status_code == 422 and refused.content_type == "application/problem+json"
    problem = refused.get_json()
    assert list(problem["errors"]) == ["outside_availability"]
    detail = problem["detail"]
    assert f"member {match['member']}" in detail and f"leader {match['leader']}" in detail
    assert "America/Chicago" in detail and "America/New_York" in detail
    assert client.get("/v1/sessions", query_string={"match_id": match["id"]}, headers=headers()).get_json()["total"] == 0

    # Inside the leader's hours but not the member's (Monday 17:00 New York): only the member is named.
    monday = next_local(NY, 0, 17).isoformat()
    refused = client.post("/v1/sessions", json={"match_id": match["id"], "start": monday}, headers=headers())
    assert refused.status_code == 422
    assert f"member {match['member']}" in refused.get_json()["detail"]
    assert f"leader {match['leader']}" not in refused.get_json()["detail"]

    # With the flag: booked, and the session says it is outside availability.
    booked = client.post("/v1/sessions", json={"match_id": match["id"], "start": night, "outside_availability": True},
                         headers=headers())
    assert booked.status_code == 201, booked.get_json()
    session = booked.get_json()
    assert session["outside_availability"] is True
    assert client.get(f"/v1/sessions/{session['id']}", headers=headers()).get_json()["outside_availability"] is True

    # Rescheduling follows the same rule; into a suggested time it is inside again.
    path = f"/v1/sessions/{session['id']}/reschedule"
    later = next_local(NY, 2, 2).isoformat()
    refused = client.post(path, json={"start": later}, headers=headers())
    assert refused.status_code == 422 and list(refused.get_json()["errors"]) == ["outside_availability"]
    moved = client.post(path, json={"start": match["slots"][0]["start"]}, headers=headers())
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["outside_availability"] is False


def test_a_session_inside_both_availabilities_needs_no_flag(match, client, headers):
    booked = client.post("/v1/sessions", json={"match_id": match["id"], "start": match["slots"][1]["start"]},
                         headers=headers("leader", leader_id=match["leader"], sites=[match["site"]]))
    assert booked.status_code == 201, booked.get_json()
    assert booked.get_json()["outside_availability"] is False
