"""Objects named in a body, not in the path (issue 9, Security): another organization's admin, or a
coordinator of another site, cannot reach organization A's objects by naming them in a request body
(a feed token for A's member, a pin on A's member and leader, a session of A's match, a meeting at A's
site with A's leader, a batch run of A's site, a member or leader or coordinator registered at A's
site). Each is refused (404 as if unknown, or 403 / 422 naming the field) and nothing is created."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.security.conftest import leader_body, member_body

pytestmark = pytest.mark.timeout(120)


def refused(problem, response, *statuses):
    problem(response, *statuses)


@pytest.mark.parametrize("who", ["other_admin", "coordinator_other_site"])
def test_objects_named_in_bodies_are_out_of_reach(stack, world, problem, who):
    ids, caller = world.ids, world.h(who)
    intake, matching = stack.client("intake"), stack.client("matching")
    scheduling = stack.client("scheduling")
    site, leader, member, match = ids["site"], ids["leader"], ids["member"], ids["match"]
    overrides = lambda: matching.get("/v1/overrides", query_string={"member_id": member},  # noqa: E731
                                     headers=world.h()).get_json()["total"]
    before = overrides()

    # intake: register people at a site the caller does not hold
    refused(problem, intake.post("/v1/members", json=member_body(site), headers=caller), 403, 404, 422)
    refused(problem, intake.post("/v1/leaders", json=leader_body([site]), headers=caller), 403, 404, 422)
    refused(problem, intake.post("/v1/staff", json={"first_name": "X", "email": "x.staff@example.org",
                                                    "site_ids": [site]}, headers=caller), 403, 404, 422)
    assert member not in intake.get("/v1/members", query_string={"site_id": site}, headers=caller).get_data(as_text=True)

    # matching: pins and blocks on A's member and leader, a batch run of A's site
    refused(problem, matching.post("/v1/overrides", json={"member_id": member, "leader_id": leader, "kind": "block",
                                                          "reason": "x"}, headers=caller), 403, 404, 422)
    run = matching.post("/v1/batch-runs", json={"site_id": site}, headers=caller)
    if who == "other_admin" and run.status_code == 202:
        # accepted as a run of B's own organization (matching scopes it to B: it can only ever find B's
        # members), so it reveals and touches nothing of A; A never sees it
        assert run.get_json()["id"] not in matching.get("/v1/batch-runs", headers=world.h()).get_data(as_text=True)
    else:
        refused(problem, run, 403, 404, 422)
    assert overrides() == before

    # scheduling: a session of A's match, a meeting at A's site led by A's leader, a feed token for A's member
    start = (datetime.now(timezone.utc) + timedelta(days=11)).isoformat()
    refused(problem, scheduling.post("/v1/sessions", json={"match_id": match, "start": start, "on_behalf_of": "member"},
                                     headers=caller), 403, 404, 422)
    first = (datetime.now(timezone.utc) + timedelta(days=4)).strftime("%Y-%m-%dT07:00")
    meeting = {"site_id": site, "facilitator_id": leader, "name": "Intruder", "capacity": 5,
               "attendance_mode": "in_person", "rrule": "FREQ=WEEKLY", "first_start_local": first,
               "duration_minutes": 30}
    refused(problem, scheduling.post("/v1/meetings", json=meeting, headers=caller), 403, 404, 422)
    online = {**meeting, "site_id": None, "attendance_mode": "online", "time_zone": "UTC",
              "conference_url": "https://example.org/room"}
    if who == "other_admin":  # an online meeting of B's own, but with A's leader as facilitator
        refused(problem, scheduling.post("/v1/meetings", json=online, headers=caller), 403, 404, 422)
    for kind, person in (("member", member), ("leader", leader)):
        refused(problem, scheduling.post("/v1/feed-tokens", json={"person_kind": kind, "person_id": person},
                                         headers=caller), 403, 404)
    assert "Intruder" not in scheduling.get("/v1/meetings", headers=world.h()).get_data(as_text=True)


def test_a_feed_token_opens_only_its_own_calendar(stack, world, problem):
    scheduling, ids = stack.client("scheduling"), world.ids
    issued = scheduling.post("/v1/feed-tokens", json={"person_kind": "member", "person_id": ids["member"]},
                             headers=world.h())
    assert issued.status_code == 201, issued.get_json()
    token = issued.get_json()["token"]
    own = f"/v1/feeds/{world.org}/members/{ids['member']}/calendar.ics"
    assert scheduling.get(own, query_string={"token": token}).status_code == 200
    problem(scheduling.get(f"/v1/feeds/{world.other_org}/members/{ids['member']}/calendar.ics",
                           query_string={"token": token}), 404)
    problem(scheduling.get(f"/v1/feeds/{world.org}/members/{ids['member2']}/calendar.ics",
                           query_string={"token": token}), 404)
    problem(scheduling.get(f"/v1/feeds/{world.org}/leaders/{ids['leader']}/calendar.ics",
                           query_string={"token": token}), 404)
    problem(scheduling.get(own, query_string={"token": token[:-4] + "AAAA"}), 404)
    problem(scheduling.get(own), 401)


def test_an_erased_member_is_gone_for_its_organization_and_unknown_to_others(stack, world, problem):
    """410 Gone tells A's staff the record was erased; to another organization, or a coordinator of
    another site, it must still look like an id that never existed (404), so erasure reveals nothing."""
    intake, ids = stack.client("intake"), world.ids
    member_id = intake.post("/v1/members", json=member_body(ids["site"]), headers=world.h()).get_json()["id"]
    erased = intake.post(f"/v1/members/{member_id}/erasure", json={"reason": "asked"}, headers=world.h())
    assert erased.status_code == 200, erased.get_json()
    problem(intake.get(f"/v1/members/{member_id}", headers=world.h()), 410)
    for who in ("other_admin", "coordinator_other_site"):
        for path in (f"/v1/members/{member_id}", f"/v1/members/{member_id}/consents",
                     f"/v1/members/{member_id}/plan"):
            problem(intake.get(path, headers=world.h(who)), 404)
