"""One-on-one sessions: matching's MatchActivated -> suggestions inside both availabilities; booking,
double-booking refused, rescheduling, cancelling; MatchEnded cancels what is booked."""
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.events.matching import MatchActivated, MatchEnded
from shared.events.scheduling import SessionBooked, SessionCancelled, SessionRescheduled, SessionTimesSuggested


pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("worker")]

NY, CHI = ZoneInfo("America/New_York"), ZoneInfo("America/Chicago")
LEADER_HOURS = [{"day": d, "start": "17:00", "end": "21:00"} for d in range(5)]      # Mon-Fri, New York
MEMBER_HOURS = [{"day": d, "start": "18:00", "end": "20:00"} for d in (1, 3)]        # Tue, Thu, Chicago


def inside(slot_start: datetime, slot_end: datetime, windows, tz) -> bool:
    s, e = slot_start.astimezone(tz), slot_end.astimezone(tz)
    return s.date() == e.date() and any(
        w["day"] == s.weekday() and w["start"] <= s.strftime("%H:%M") and e.strftime("%H:%M") <= w["end"]
        for w in windows)


@pytest.fixture
def pair(upstream):
    site = upstream.site(time_zone="America/New_York")
    leader = upstream.leader(site_id=site, availability=LEADER_HOURS)
    member = upstream.member(site_id=site, time_zone="America/Chicago", availability=MEMBER_HOURS)
    upstream.known(sites=[site], leaders=[leader], members=[member])
    return {"site": site, "leader": leader, "member": member}


def activate(upstream, pair, match_id=None, member=None):
    match_id = match_id or f"match-{datetime.now().timestamp()}"
    upstream.send(MatchActivated, match_id=match_id, member_id=member or pair["member"], leader_id=pair["leader"],
                  site_id=pair["site"])
    return match_id


def days_both_can_meet(now: datetime, lead=timedelta(hours=12), horizon=timedelta(days=14)) -> list:
    """The days (New York's dates) with an hour both can meet on a half-hour, from ``now + lead`` to
    ``now + horizon`` (the service's defaults): the member's hours (inside the leader's), so how many fall in
    the 14 days depends on the day and hour the test runs."""
    days = set()
    for offset in range(horizon.days + 2):
        day = (now + timedelta(days=offset)).astimezone(CHI).date()
        for window in (w for w in MEMBER_HOURS if w["day"] == day.weekday()):
            start = datetime.combine(day, datetime.strptime(window["start"], "%H:%M").time(), tzinfo=CHI)
            end = datetime.combine(day, datetime.strptime(window["end"], "%H:%M").time(), tzinfo=CHI)
            while start + timedelta(hours=1) <= end:
                if now + lead <= start and start + timedelta(hours=1) <= now + horizon:
                    days.add(start.astimezone(NY).date())
                start += timedelta(minutes=30)
    return sorted(days)


def test_match_activated_suggests_times_inside_both_availabilities(upstream, pair, tap, expect, client, headers):
    activated_at = datetime.now(UTC)
    match_id = activate(upstream, pair)
    event = tap.wait_for(expect.of(SessionTimesSuggested, match_id=match_id))[0]
    data = event.data
    assert (data["member_id"], data["leader_id"], data["site_id"]) == (pair["member"], pair["leader"], pair["site"])
    assert data["time_zone"] == "America/New_York"  # the site's zone
    slots = [(datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"])) for s in data["suggestions"]]
    assert len(slots) == 5
    for start, end in slots:
        assert end - start == timedelta(minutes=60)
        assert inside(start, end, MEMBER_HOURS, CHI) and inside(start, end, LEADER_HOURS, NY)
        assert start.utcoffset() == start.astimezone(NY).utcoffset()  # shown in the site's zone
    # a choice of days first: one slot on each of the first (up to 5) days both people can meet
    # (the worker's "now" is between the event's sending and its arrival: a boundary may fall in between)
    assert sorted({s.date() for s, _ in slots}) in (days_both_can_meet(activated_at)[:5],
                                                    days_both_can_meet(datetime.now(UTC))[:5])
    resp = client.get(f"/v1/matches/{match_id}/suggestions", headers=headers())
    assert resp.status_code == 200 and resp.get_json()["time_zone"] == "America/New_York"
    assert client.get(f"/v1/matches/{match_id}/suggestions",
                      headers=headers("leader", leader_id="someone-else")).status_code == 404


def test_suggestions_wait_for_a_profile_that_arrives_late(upstream, pair, tap, expect):
    late_member = f"member-late-{datetime.now().timestamp()}"
    match_id = activate(upstream, pair, member=late_member)
    upstream.member(late_member, site_id=pair["site"], time_zone="America/Chicago", availability=MEMBER_HOURS)
    event = tap.wait_for(expect.of(SessionTimesSuggested, match_id=match_id))[0]
    assert event.data["suggestions"]


def test_booking_double_booking_rescheduling_and_cancelling(upstream, pair, tap, expect, client, headers):
    match_id = activate(upstream, pair)
    slots = tap.wait_for(expect.of(SessionTimesSuggested, match_id=match_id))[0].data["suggestions"]
    leader_headers = headers("leader", leader_id=pair["leader"], sites=[pair["site"]])
    resp = client.post("/v1/sessions", json={"match_id": match_id, "start": slots[0]["start"]}, headers=leader_headers)
    assert resp.status_code == 201, resp.get_json()
    session = resp.get_json()
    booked = tap.wait_for(expect.of(SessionBooked, session_id=session["id"]))[0]
    assert booked.data["booked_by_role"] == "leader" and booked.data["time_zone"] == "America/New_York"

    # The same member again at an overlapping time (booked for the member by a service account).
    half_past = (datetime.fromisoformat(slots[0]["start"]) + timedelta(minutes=30)).isoformat()
    resp = client.post("/v1/sessions", json={"match_id": match_id, "start": half_past, "on_behalf_of": "member"},
                       headers=headers("service"))
    assert resp.status_code == 409 and session["id"] in resp.get_json()["detail"]
    # The same leader with another member at that time.
    other_member = upstream.member(site_id=pair["site"], availability=LEADER_HOURS)
    upstream.known(members=[other_member])
    other_match = activate(upstream, pair, member=other_member)
    tap.wait_for(expect.of(SessionTimesSuggested, match_id=other_match))
    resp = client.post("/v1/sessions", json={"match_id": other_match, "start": slots[0]["start"]}, headers=headers())
    assert resp.status_code == 409
    assert "already has a one-on-one session" in resp.get_json()["detail"]
    # A meeting for the leader on top of the session is refused too, naming the session.
    start_ny = datetime.fromisoformat(slots[0]["start"]).astimezone(NY)
    resp = client.post("/v1/meetings", headers=headers(), json={
        "site_id": pair["site"], "facilitator_id": pair["leader"], "name": "Clashing", "capacity": 10,
        "attendance_mode": "in_person", "rrule": "FREQ=WEEKLY", "duration_minutes": 60,
        "first_start_local": start_ny.replace(tzinfo=None).isoformat(timespec="minutes")})
    assert resp.status_code == 409 and session["id"] in resp.get_json()["detail"]

    # Reschedule (the member's side), then cancel (the leader's side).
    resp = client.post(f"/v1/sessions/{session['id']}/reschedule",
                       json={"start": slots[1]["start"], "on_behalf_of": "member"}, headers=headers("service"))
    assert resp.status_code == 200, resp.get_json()
    moved = tap.wait_for(expect.of(SessionRescheduled, session_id=session["id"]))[0].data
    assert moved["rescheduled_by_role"] == "member"
    assert datetime.fromisoformat(moved["previous_start"]) == datetime.fromisoformat(slots[0]["start"])
    # The old time is free again for the other member.
    resp = client.post("/v1/sessions", json={"match_id": other_match, "start": slots[0]["start"]}, headers=headers())
    assert resp.status_code == 201, resp.get_json()
    resp = client.post(f"/v1/sessions/{session['id']}/cancel", json={"reason": "sick"}, headers=leader_headers)
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    cancelled = tap.wait_for(expect.of(SessionCancelled, session_id=session["id"]))[0].data
    assert cancelled["cancelled_by_role"] == "leader" and cancelled["reason"] == "sick"
    listed = client.get("/v1/sessions", headers=leader_headers, query_string={"match_id": match_id}).get_json()
    assert [s["status"] for s in listed["items"]] == ["cancelled"]
    bad = client.post("/v1/sessions", json={"match_id": match_id, "start": "2020-01-01T10:00:00Z"}, headers=headers())
    assert bad.status_code == 422 and "start" in bad.get_json()["errors"]


def test_match_ended_cancels_booked_sessions(upstream, pair, tap, expect, client, headers):
    match_id = activate(upstream, pair)
    slots = tap.wait_for(expect.of(SessionTimesSuggested, match_id=match_id))[0].data["suggestions"]
    session = client.post("/v1/sessions", json={"match_id": match_id, "start": slots[2]["start"]},
                          headers=headers()).get_json()
    upstream.send(MatchEnded, match_id=match_id, member_id=pair["member"], leader_id=pair["leader"],
                  site_id=pair["site"], ended_by_role="member", reason_code="member_choice",
                  re_proposal_follows=True)
    cancelled = tap.wait_for(expect.of(SessionCancelled, session_id=session["id"]))[0].data
    assert cancelled["cancelled_by_role"] == "system"
    resp = client.post("/v1/sessions", json={"match_id": match_id, "start": slots[3]["start"]}, headers=headers())
    assert resp.status_code == 409 and "match_id" in resp.get_json()["errors"]


def test_member_erasure_cancels_sessions_frees_seats_and_forgets_the_member(upstream, pair, tap, expect, client,
                                                                          headers, db):
    from shared.events.intake import MemberErased
    from shared.events.scheduling import RegistrationPromoted

    match_id = activate(upstream, pair)
    slots = tap.wait_for(expect.of(SessionTimesSuggested, match_id=match_id))[0].data["suggestions"]
    session = client.post("/v1/sessions", json={"match_id": match_id, "start": slots[0]["start"]},
                          headers=headers()).get_json()
    waiting = upstream.member(site_id=pair["site"])
    upstream.known(members=[waiting])
    other_leader = upstream.leader(site_id=pair["site"])
    upstream.known(leaders=[other_leader])
    meeting = client.post("/v1/meetings", headers=headers(), json={
        "site_id": pair["site"], "facilitator_id": other_leader, "name": "Small Circle", "capacity": 1,
        "attendance_mode": "in_person", "rrule": "FREQ=WEEKLY;BYDAY=SA", "duration_minutes": 60,
        "first_start_local": "2027-01-02T10:00"}).get_json()
    url = f"/v1/meetings/{meeting['id']}/registrations"
    assert client.post(url, json={"member_id": pair["member"]}, headers=headers()).get_json()["status"] == "registered"
    assert client.post(url, json={"member_id": waiting}, headers=headers()).get_json()["status"] == "waitlisted"

    upstream.send(MemberErased, member_id=pair["member"], site_id=pair["site"])
    cancelled = tap.wait_for(expect.of(SessionCancelled, session_id=session["id"]))[0].data
    assert cancelled["cancelled_by_role"] == "system" and cancelled["reason"] == "member_erased"
    tap.wait_for(expect.of(RegistrationPromoted, member_id=waiting, meeting_id=meeting["id"]))
    members = [r["member_id"] for r in client.get(url, headers=headers()).get_json()["items"]]
    assert members == [waiting]
    assert db.members.count_documents({"_id": f"{upstream.org}:{pair['member']}"}) == 0
    assert db.sessions.count_documents({"organization_id": upstream.org, "member_id": pair["member"]}) == 0


def test_concurrent_bookings_of_one_slot_book_it_once(upstream, pair, tap, expect, app, headers):
    import threading

    match_id = activate(upstream, pair)
    slot = tap.wait_for(expect.of(SessionTimesSuggested, match_id=match_id))[0].data["suggestions"][0]
    codes: list[int] = []
    barrier = threading.Barrier(3)

    def book():
        own = app.test_client()
        barrier.wait()
        codes.append(own.post("/v1/sessions", json={"match_id": match_id, "start": slot["start"]},
                              headers=headers()).status_code)

    threads = [threading.Thread(target=book) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(codes) == [201, 409, 409]
