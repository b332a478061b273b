"""The route walk for the member role (issue 15, part D).

* Another member (of A's other site) and a member of organization B (whose token carries the very same
  member id as A's member) get, on every route that names an object of A, 404 (as if it did not exist) or
  403 where the member role alone is refused (the same answer for any id). MEMBER_EXPECTED says which, for
  every route of OBJECT_ROUTES: a new route fails the walk until it is listed here too.
* Every list route (no path parameter) answers a member 403, unless it is one a member may use
  (MEMBER_LISTS), which then shows them none of another member's or organization's ids.
* The member's own routes answer 2xx (OWN_ROUTES).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.security.conftest import SERVICES
from tests.security.test_security_routes import OBJECT_ROUTES, PUBLIC, fill, request, routes

pytestmark = pytest.mark.timeout(300)

# What another member gets on each object route of A: the service's default (MEMBER_DEFAULT: 404, as if
# it did not exist; intake's object routes are all staff's or leaders', refused to a member by role: 403)
# unless listed here with 403 (refused by role), or "own" (a route about the caller's own record, whatever
# the path names: not another's object; walked by the member's own tests).
MEMBER_DEFAULT = {"intake": 403, "matching": 404, "scheduling": 404, "notifications": 404, "reporting": 403}
MEMBER_EXPECTED = {
    "intake": {"DELETE /v1/me/consents/<path:purpose>": "own"},
    "matching": {
        "POST /v1/matches/<match_id>/end": 403,
        "GET /v1/members/<member_id>/proposals": 403,
        "POST /v1/members/<member_id>/different-leader": 403,
        "GET /v1/batch-runs/<run_id>": 403,
        "DELETE /v1/overrides/<override_id>": 403,
    },
    "scheduling": {
        "PATCH /v1/meetings/<meeting_id>": 403,
        "POST /v1/meetings/<meeting_id>/cancel": 403,
        "GET /v1/meetings/<meeting_id>/occurrences/<occurrence_id>/attendance": 403,
        "PUT /v1/meetings/<meeting_id>/occurrences/<occurrence_id>/attendance": 403,
        "POST /v1/meetings/<meeting_id>/occurrences/<occurrence_id>/cancel": 403,
        "POST /v1/meetings/<meeting_id>/occurrences/<occurrence_id>/move": 403,
        "GET /v1/meetings/<meeting_id>/registrations": 403,
    },
    "notifications": {
        "GET /v1/deliveries/<delivery_id>": 403,
        "POST /v1/deliveries/<delivery_id>/retry": 403,
        "GET /v1/sites/<site_id>/coordinators": 403,
        "PUT /v1/templates/<kind>/<channel>/<language>": 403,
        "DELETE /v1/templates/<kind>/<channel>/<language>": 403,
        "POST /v1/templates/<kind>/<channel>/<language>/preview": 403,
        "GET /v1/webhooks/<webhook_id>": 403,
        "DELETE /v1/webhooks/<webhook_id>": 403,
    },
    "reporting": {},
}

# List routes a member may use (each shows only their own things); every other list route answers 403.
MEMBER_LISTS = {
    "intake": set(),
    "matching": {"/v1/matches", "/v1/me/match", "/v1/me/export"},
    "scheduling": {"/v1/meetings", "/v1/occurrences", "/v1/sessions", "/v1/me/registrations", "/v1/me/suggestions",
                   "/v1/me/export"},
    "notifications": {"/v1/me/export"},
    "reporting": set(),  # reports are staff's (admins, coordinators): a member gets 403
}


def _member_expected(service, key, spec):
    return MEMBER_EXPECTED[service].get(key, spec.get("member", MEMBER_DEFAULT[service]))


@pytest.mark.parametrize("service", SERVICES)
def test_every_object_route_has_the_member_answer_it_expects(service):
    unknown = set(MEMBER_EXPECTED[service]) - set(OBJECT_ROUTES[service])
    assert not unknown, f"MEMBER_EXPECTED names routes that are gone: {sorted(unknown)}"


@pytest.mark.parametrize("who", ["member_other", "member_other_org"])
@pytest.mark.parametrize("service", SERVICES)
def test_a_member_gets_404_or_403_for_every_object_of_another_member_or_organization(stack, world, problem,
                                                                                     service, who):
    client, token = stack.client(service), world.tokens[who]
    failures = []
    for key, spec in OBJECT_ROUTES[service].items():
        expected = _member_expected(service, key, spec)
        if expected == "own":
            continue
        method, rule = key.split(" ", 1)
        response = request(client, method, fill(service, rule, world.ids), token, spec, world.ids)
        if response.status_code != expected:
            failures.append(f"{key}: {response.status_code} instead of {expected}: "
                            f"{response.get_data(as_text=True)[:300]}")
            continue
        problem(response, expected)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("who", ["member", "member_other", "member_other_org"])
@pytest.mark.parametrize("service", SERVICES)
def test_a_member_is_refused_every_staff_list_and_sees_only_their_own_in_theirs(stack, world, service, who):
    client, token = stack.client(service), world.tokens[who]
    now = datetime.now(timezone.utc)
    own = world.ids["member2"] if who == "member_other" else world.ids["member"]
    # ids a member must never see: another member's, and (for a member of B) everything of A
    foreign = [world.ids["member2"] if who == "member" else world.ids["member"]]
    if who != "member":
        foreign += [world.ids[k] for k in ("match", "session", "message", "delivery", "override", "registration")]
    foreign = [f for f in foreign if f != own]
    for endpoint, rule, method in routes(stack.apps[service]):
        if method != "GET" or "<" in rule or endpoint in PUBLIC:
            continue
        query = {"from": now.isoformat(), "to": (now + timedelta(days=30)).isoformat()} \
            if rule.endswith("occurrences") else {}
        response = client.get(rule, query_string=query, headers={"Authorization": f"Bearer {token}"})
        if rule not in MEMBER_LISTS[service]:
            if rule.startswith("/v1/me"):
                continue  # another part's self-service route (intake's /v1/me...), walked by its own tests
            assert response.status_code == 403, (who, rule, response.status_code, response.get_data(as_text=True)[:300])
            continue
        assert response.status_code in (200, 404), (who, rule, response.status_code,
                                                    response.get_data(as_text=True)[:300])
        text = response.get_data(as_text=True)
        assert not [f for f in foreign if f in text], (who, rule, text[:500])


def test_the_members_own_routes_answer(stack, world):
    """A's member reaches their own match, session, meeting, registration, calendar, inbox, preferences
    and each service's export."""
    ids, token = world.ids, world.tokens["member"]
    h = {"Authorization": f"Bearer {token}"}
    now = datetime.now(timezone.utc)
    matching, scheduling = stack.client("matching"), stack.client("scheduling")
    notifications = stack.client("notifications")
    calls = [
        (matching, "GET", f"/v1/me/match", None),
        (matching, "GET", f"/v1/matches/{ids['match']}", None),
        (matching, "GET", "/v1/me/export", None),
        (scheduling, "GET", f"/v1/meetings/{ids['meeting']}", None),
        (scheduling, "GET", f"/v1/meetings/{ids['meeting']}/occurrences?from={now.isoformat()}"
                            f"&to={(now + timedelta(days=30)).isoformat()}".replace("+", "%2B"), None),
        (scheduling, "GET", f"/v1/matches/{ids['match']}/suggestions", None),
        (scheduling, "GET", f"/v1/sessions/{ids['session']}", None),
        (scheduling, "GET", "/v1/me/registrations", None),
        (scheduling, "GET", "/v1/me/suggestions", None),
        (scheduling, "POST", "/v1/feed-tokens", {"person_kind": "member", "person_id": ids["member"]}),
        (scheduling, "GET", f"/v1/feeds/{world.org}/members/{ids['member']}/calendar.ics", None),
        (scheduling, "GET", "/v1/me/export", None),
        (notifications, "GET", f"/v1/people/{ids['member']}/preferences", None),
        (notifications, "GET", f"/v1/people/{ids['member']}/inbox", None),
        (notifications, "POST", f"/v1/people/{ids['member']}/inbox/{ids['message']}/read", None),
        (notifications, "GET", "/v1/me/export", None),
    ]
    failures = []
    for client, method, path, body in calls:
        response = client.open(path, method=method, headers=h, json=body)
        if not 200 <= response.status_code < 300:
            failures.append(f"{method} {path}: {response.status_code} {response.get_data(as_text=True)[:300]}")
    assert not failures, "\n".join(failures)
    registrations = scheduling.get("/v1/me/registrations", headers=h).get_json()["items"]
    assert [r["id"] for r in registrations] == [ids["registration"]]
    for client in (matching, scheduling, notifications):
        export = client.get("/v1/me/export", headers=h).get_data(as_text=True)
        assert ids["member"] in export and ids["member2"] not in export
