"""A booked one-on-one session that reaches its end without being cancelled took place: the worker's
job records it and emits SessionHeld once (issue 18: reporting counts sessions held)."""
from datetime import datetime, timedelta, timezone

import pytest

from shared.events.matching import MatchActivated
from shared.events.scheduling import SessionBooked, SessionHeld, SessionTimesSuggested

from scheduling.handlers.jobs import mark_sessions_held

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("worker")]


def test_a_booked_session_past_its_end_is_held_once_and_a_cancelled_one_never(upstream, tap, expect, client,
                                                                               headers, app):
    site = upstream.site(time_zone="America/New_York")
    leader = upstream.leader(site_id=site, availability=[{"day": d, "start": "17:00", "end": "21:00"} for d in range(5)])
    member = upstream.member(site_id=site, time_zone="America/Chicago",
                             availability=[{"day": d, "start": "16:00", "end": "20:00"} for d in range(5)])
    upstream.known(sites=[site], leaders=[leader], members=[member])
    match_id = f"match-{datetime.now().timestamp()}"
    upstream.send(MatchActivated, match_id=match_id, member_id=member, leader_id=leader, site_id=site)
    slots = tap.wait_for(expect.of(SessionTimesSuggested, match_id=match_id))[0].data["suggestions"]
    held = client.post("/v1/sessions", json={"match_id": match_id, "start": slots[0]["start"]}, headers=headers())
    cancelled = client.post("/v1/sessions", json={"match_id": match_id, "start": slots[1]["start"]}, headers=headers())
    assert held.status_code == 201 and cancelled.status_code == 201, (held.get_json(), cancelled.get_json())
    held, cancelled = held.get_json(), cancelled.get_json()
    assert client.post(f"/v1/sessions/{cancelled['id']}/cancel", json={}, headers=headers()).status_code == 200
    tap.wait_for(expect.of(SessionBooked, session_id=held["id"]))

    repo = app.extensions["scheduling.repository"]
    later = datetime.now(timezone.utc) + timedelta(days=60)
    while mark_sessions_held(repo, later):  # other tests' sessions may be due as well
        pass
    assert mark_sessions_held(repo, later) == 0  # once
    event = tap.wait_for(expect.of(SessionHeld, session_id=held["id"]))[0]
    assert (event.data["member_id"], event.data["leader_id"], event.data["match_id"]) == (member, leader, match_id)
    assert datetime.fromisoformat(event.data["end"]) > datetime.fromisoformat(event.data["start"])
    assert not tap.matching(expect.of(SessionHeld, session_id=cancelled["id"]))
