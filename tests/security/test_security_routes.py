"""A walk over every route of every service (issue 9, Security).

* Every route refuses a missing, expired, forged or wrong-audience token with 401 problem+json, except
  the public routes listed in PUBLIC (each with its reason): a new public route fails this test until it
  is listed here, with its justification.
* Every route that names an object (a path parameter) answers 404, exactly as for an object that does
  not exist, when organization B's admin asks for organization A's real objects, and when a coordinator
  of A's other site asks for objects of a site they do not hold (403 where the role alone is refused).
  Each such route is listed in OBJECT_ROUTES with a valid body, so a refusal is never a validation error;
  a new route fails the walk until it is listed.
* List routes (no path parameter) never show B's admin, or the other site's coordinator, any of A's ids.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared.testing.fixtures import auth_header, forged_token, old_secret_token

from tests.security.conftest import PARAMS, SERVICES  # noqa: F401

pytestmark = pytest.mark.timeout(300)

# The console (services/console) is not in this walk: it takes no bearer token but a session cookie, and calls
# these same APIs with the signed-in person's token (so what they refuse, it cannot reach). Its own walk,
# services/console/tests/service/test_console_routes.py, lists every console route as public or signed-in and
# checks that each signed-in page sends a stranger to sign in and each POST without the CSRF token is refused.

# Routes that need no bearer token, and why.
PUBLIC = {
    "healthz": "liveness probe for the orchestrator",
    "readyz": "readiness probe (says only whether the database answers)",
    "metrics": "Prometheus scrape; counters and backlogs, no records",
    "api-docs.openapi_json": "the API description",
    "api-docs.openapi_swagger_ui": "browsable API docs",
    "api-docs.openapi_redoc": "browsable API docs",
    "static": "static assets of the docs",
    "scheduling.MeetingGuideFeed": "public meetings in the Meeting Guide format (no attendee data)",
    "scheduling.PublicMeeting": "one public meeting listing (no attendee data)",
    "scheduling.SiteCalendarFeed": "a site's public meetings as iCalendar (no attendee data)",
    "notifications.Unsubscribe": "the signed unsubscribe link in every email: the token is the credential",
    "intake.SignIn": "asking for a sign-in code: the same 202 for every address, rate-limited (429)",
    "intake.SignInToken": "exchanging a one-time sign-in code for a token: the code is the credential",
    "tokens.Jwks": "intake's public token keys (JWKS): public by nature, every service verifies tokens with them",
}
# Public in the auth sense (no bearer required) but private: they demand a feed token or a bearer token
# and refuse a bad bearer token with 401 themselves.
OWN_CREDENTIAL = {"scheduling.MemberCalendarFeed", "scheduling.LeaderCalendarFeed"}

LATER = (datetime.now(timezone.utc) + timedelta(days=20)).replace(hour=22, minute=0, second=0, microsecond=0)
MATCH_ANY = {"If-Match": "*"}

# Every route that names an object: a valid request, and what B's admin ("other") and a coordinator of
# the other site ("coord") must get. 404 = as if it did not exist; 403 = the role alone is refused
# (the same answer for any id); "own_org" = not site-scoped (the coordinator's own organization);
# "no_leak" = the same answer as for an unknown id, revealing none of A's ids; "own_namespace" = names a slot
# of the caller's own organization (template kind/channel/language), not an object of A.
OBJECT_ROUTES = {
    "intake": {
        "GET /v1/organizations/<organization_id>": dict(coord="own_org"),
        "PATCH /v1/organizations/<organization_id>": dict(json={"name": "Renamed"}, headers=MATCH_ANY, coord=403),
        "POST /v1/organizations/<organization_id>/admin-tokens": dict(json={}, other=403, coord=403),
        "GET /v1/sites/<site_id>": dict(),
        "PATCH /v1/sites/<site_id>": dict(json={"name": "Renamed"}, headers=MATCH_ANY, coord=403),
        "POST /v1/sites/<site_id>/imports": dict(
            data=json.dumps({"external_id": "x-1", "first_name": "Ann", "email": "ann.import@example.org",
                             "date_of_birth": "1980-01-01", "languages": ["en"]}) + "\n",
            content_type="application/x-ndjson"),
        "GET /v1/staff/<staff_id>": dict(coord=403),
        "PATCH /v1/staff/<staff_id>": dict(json={"first_name": "Renamed"}, headers=MATCH_ANY, coord=403),
        "POST /v1/staff/<staff_id>/tokens": dict(json={}, coord=403),
        "POST /v1/staff/<staff_id>/deactivate": dict(coord=403),
        "GET /v1/members/<member_id>": dict(),
        "PATCH /v1/members/<member_id>": dict(json={"preferred_name": "Renamed"}, headers=MATCH_ANY),
        "GET /v1/members/<member_id>/consents": dict(),
        "POST /v1/members/<member_id>/consents": dict(json={"purpose": "share:research"}),
        "DELETE /v1/members/<member_id>/consents/<path:purpose>": dict(),
        "GET /v1/members/<member_id>/consent-history": dict(),
        "POST /v1/members/<member_id>/status": dict(json={"to_status": "paused", "reason": "x"}),
        "POST /v1/members/<member_id>/transfer": dict(json={"to_site_id": "site2"}),
        "POST /v1/members/<member_id>/erasure": dict(json={}, coord=403),
        "DELETE /v1/members/<member_id>/flags/<flag>": dict(),
        "GET /v1/members/<member_id>/screenings": dict(),
        "POST /v1/members/<member_id>/screenings": dict(json={"instrument": "PHQ-2", "answers": [0, 0]}),
        "GET /v1/members/<member_id>/plan": dict(),
        "PUT /v1/members/<member_id>/plan": dict(json={"goal": "other goal"}),
        "GET /v1/members/<member_id>/plan/history": dict(),
        "GET /v1/imports/<import_id>": dict(),
        "GET /v1/leaders/<leader_id>": dict(),
        "PATCH /v1/leaders/<leader_id>": dict(json={"capacity": 1}, headers=MATCH_ANY),
        "POST /v1/leaders/<leader_id>/status": dict(json={"to_status": "on_leave", "reason": "x"}),
        "DELETE /v1/leaders/<leader_id>/stretched": dict(),
        # self-service: a member's own consent and a leader's matched member; staff are refused by role
        "DELETE /v1/me/consents/<path:purpose>": dict(other=403, coord=403),
        "GET /v1/me/members/<member_id>": dict(other=403, coord=403),
    },
    "matching": {
        "GET /v1/matches/<match_id>": dict(),
        "POST /v1/matches/<match_id>/accept": dict(json=None),
        "POST /v1/matches/<match_id>/decline": dict(json={"reason": "not a fit"}),
        "POST /v1/matches/<match_id>/end": dict(json={"reason_code": "coordinator", "reason": "x"}),
        "GET /v1/members/<member_id>/proposals": dict(),
        "POST /v1/members/<member_id>/different-leader": dict(json={"reason": "asked"}),
        "GET /v1/batch-runs/<run_id>": dict(),
        "DELETE /v1/overrides/<override_id>": dict(),
    },
    "scheduling": {
        "GET /v1/meetings/<meeting_id>": dict(),
        "PATCH /v1/meetings/<meeting_id>": dict(json={"name": "Renamed"}, headers=MATCH_ANY),
        "POST /v1/meetings/<meeting_id>/cancel": dict(json={"reason": "x"}),
        "GET /v1/meetings/<meeting_id>/occurrences": dict(query={
            "from": datetime.now(timezone.utc).isoformat(), "to": LATER.isoformat()}),
        "GET /v1/meetings/<meeting_id>/occurrences/<occurrence_id>/attendance": dict(),
        "PUT /v1/meetings/<meeting_id>/occurrences/<occurrence_id>/attendance": dict(
            json={"present_member_ids": ["member"]}),
        "POST /v1/meetings/<meeting_id>/occurrences/<occurrence_id>/cancel": dict(json={"reason": "x"}),
        "POST /v1/meetings/<meeting_id>/occurrences/<occurrence_id>/move": dict(json={"start": LATER.isoformat()}),
        "GET /v1/meetings/<meeting_id>/registrations": dict(),
        "POST /v1/meetings/<meeting_id>/registrations": dict(json={"member_id": "member2"}),
        "DELETE /v1/meetings/<meeting_id>/registrations/<registration_id>": dict(),
        "GET /v1/matches/<match_id>/suggestions": dict(),
        "GET /v1/sessions/<session_id>": dict(),
        "POST /v1/sessions/<session_id>/reschedule": dict(json={"start": LATER.isoformat()}),
        "POST /v1/sessions/<session_id>/cancel": dict(json={"reason": "x"}),
        "GET /v1/feeds/<organization_id>/members/<member_id>/calendar.ics": dict(),
        "GET /v1/feeds/<organization_id>/leaders/<leader_id>/calendar.ics": dict(),
    },
    "notifications": {
        "GET /v1/people/<person_id>/preferences": dict(),
        "PUT /v1/people/<person_id>/preferences": dict(json={"digest": True}, headers=MATCH_ANY),
        "GET /v1/people/<person_id>/inbox": dict(),
        "POST /v1/people/<person_id>/inbox/<message_id>/read": dict(json=None),
        "GET /v1/deliveries/<delivery_id>": dict(),
        "POST /v1/deliveries/<delivery_id>/retry": dict(json=None, coord=403),
        "GET /v1/sites/<site_id>/coordinators": dict(),
        "PUT /v1/templates/<kind>/<channel>/<language>": dict(json={"text": "Hi {{ name }}"}, other="own_namespace",
                                                              coord=403),
        "DELETE /v1/templates/<kind>/<channel>/<language>": dict(other="own_namespace", coord=403),
        "POST /v1/templates/<kind>/<channel>/<language>/preview": dict(json={}, other="own_namespace", coord=403),
        "GET /v1/webhooks/<webhook_id>": dict(coord=403),
        "DELETE /v1/webhooks/<webhook_id>": dict(coord=403),
    },
    # reporting names no object in its paths: the scope is the token's organization and sites (?site_id= of a
    # site the caller does not hold gives an empty report; test_security_reporting.py checks that)
    "reporting": {},
}


def routes(app):
    """(endpoint, rule, method) of every route of the app, HEAD and OPTIONS aside."""
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, rule.rule, method


def fill(service, rule, ids, *, unknown=False):
    """The rule with its parameters replaced by organization A's real ids (or unknown ones)."""
    import re

    def value(match):
        name = match.group(1).split(":")[-1]
        ref = PARAMS[service][name]
        if ref.startswith("="):
            return ref[1:]
        if unknown and name not in ("organization_id",):
            return f"nope-{uuid.uuid4().hex[:10]}"
        return ids[ref]
    return re.sub(r"<([^>]+)>", value, rule)


def request(client, method, path, token, spec, ids):
    kwargs = {"headers": {**(auth_header(token) if token else {}), **spec.get("headers", {})}}
    body = spec.get("json", {} if method in ("POST", "PUT", "PATCH") else None)
    if isinstance(body, dict):
        body = {k: (ids[v] if isinstance(v, str) and v in ("site2", "member2") else v) for k, v in body.items()}
        if "present_member_ids" in body:
            body["present_member_ids"] = [ids["member"]]
    if "data" in spec:
        kwargs["data"], kwargs["content_type"] = spec["data"], spec["content_type"]
    elif body is not None:
        kwargs["json"] = body
    if "query" in spec:
        kwargs["query_string"] = spec["query"]
    return client.open(path, method=method, **kwargs)


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_refuses_missing_expired_forged_and_wrong_audience_tokens(stack, world, make_token, problem,
                                                                             service):
    """... and tokens signed with the old shared secret (HS256, before issue 15): 401 on every service."""
    app, client = stack.apps[service], stack.client(service)
    bad = {
        "missing": None,
        "garbage": "not-a-jwt",
        "expired": make_token(world.org, "admin", ttl_seconds=-30),
        "forged": forged_token(world.org, "admin"),
        "old-secret": old_secret_token(world.org, "admin"),
        "wrong-audience": make_token(world.org, "admin", audience="another-platform"),
    }
    walked = 0
    for endpoint, rule, method in routes(app):
        if endpoint in PUBLIC:
            continue
        path = fill(service, rule, world.ids)
        spec = OBJECT_ROUTES[service].get(f"{method} {rule}", {})
        for kind, token in bad.items():
            if kind == "missing" or token is None:
                response = request(client, method, path, None, spec, world.ids)
            else:
                response = request(client, method, path, token, spec, world.ids)
            body = problem(response, 401)
            assert body.get("detail"), (method, rule, kind)
            walked += 1
    assert walked >= len(bad) * 2  # reporting has two routes; the others dozens


@pytest.mark.parametrize("service", SERVICES)
def test_every_object_route_is_in_the_table(stack, service):
    """A new route that names an object must be added to OBJECT_ROUTES (and so to the walks below)."""
    listed = set(OBJECT_ROUTES[service])
    found = {f"{m} {r}" for e, r, m in routes(stack.apps[service]) if "<" in r and e not in PUBLIC}
    assert found == listed, {"not listed": sorted(found - listed), "gone": sorted(listed - found)}


def _check_refusal(problem, response, expected, what):
    assert isinstance(expected, int), expected
    if response.status_code != expected:
        raise AssertionError(f"{what}: {response.status_code} instead of {expected}: "
                             f"{response.get_data(as_text=True)[:400]}")
    problem(response, expected)


def _reveals_nothing(world, text):
    own = {v for k, v in world.ids.items() if k not in ("template_marker",)} | {world.ids["template_marker"]}
    return [v for v in own if v and v in text and v not in (world.ids["site"], world.ids["member"])] or None


@pytest.mark.parametrize("service", SERVICES)
def test_another_organizations_admin_gets_404_for_every_object(stack, world, problem, service):
    client = stack.client(service)
    token = world.tokens["other_admin"]
    failures = []
    for key, spec in OBJECT_ROUTES[service].items():
        method, rule = key.split(" ", 1)
        expected = spec.get("other", 404)
        path = fill(service, rule, world.ids)
        response = request(client, method, path, token, spec, world.ids)
        text = response.get_data(as_text=True)
        try:
            if expected == "no_leak":
                twin = request(client, method, fill(service, rule, world.ids, unknown=True), token, spec, world.ids)
                assert response.status_code == twin.status_code, (response.status_code, twin.status_code)
                leaked = _reveals_nothing(world, text)
                assert not leaked, f"reveals {leaked}"
                assert response.status_code < 500
            elif expected == "own_namespace":
                assert response.status_code < 500 and world.ids["template_marker"] not in text, text[:300]
            else:
                _check_refusal(problem, response, expected, key)
        except AssertionError as exc:
            failures.append(f"{key}: {exc}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("service", SERVICES)
def test_a_coordinator_of_another_site_gets_404_for_every_site_scoped_object(stack, world, problem, service):
    client = stack.client(service)
    token = world.tokens["coordinator_other_site"]
    failures = []
    for key, spec in OBJECT_ROUTES[service].items():
        method, rule = key.split(" ", 1)
        expected = spec.get("coord", 404)
        if expected == "own_org":
            continue
        response = request(client, method, fill(service, rule, world.ids), token, spec, world.ids)
        try:
            _check_refusal(problem, response, expected, key)
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("service", SERVICES)
def test_list_routes_show_no_object_of_another_organization(stack, world, make_token, service):
    """Every list route, read by the admin of an organization that never named A's ids itself."""
    client = stack.client(service)
    now = datetime.now(timezone.utc)
    a_ids = [v for k, v in world.ids.items() if k not in ("template_marker",)] + [world.ids["template_marker"]]
    stranger = auth_header(make_token(f"org-stranger-{uuid.uuid4().hex[:8]}", "admin"))
    for endpoint, rule, method in routes(stack.apps[service]):
        if method != "GET" or "<" in rule or endpoint in PUBLIC:
            continue
        query = {"from": now.isoformat(), "to": LATER.isoformat()} if rule.endswith("occurrences") else {}
        response = client.get(rule, query_string=query, headers=stranger)
        assert response.status_code in (200, 403), (rule, response.status_code, response.get_data(as_text=True))
        text = response.get_data(as_text=True)
        assert not [i for i in a_ids if i in text], (rule, text[:500])


# Routes an operator's token may use (sign-out-everywhere: any signed-in role, operators included).
OPERATOR_ROUTES = {"intake.Organizations", "intake.Organization", "intake.AdminTokens", "self_service.Me", "tokens.SignOutEverywhere"}


def _crafted(world, **changes):
    """A token signed with the platform's key whose claims the platform must still refuse (``alg``:
    "none", or HS256/HS512 signed with the old shared secret, are refused for their signature)."""
    import time as _time

    import jwt

    from shared.auth import ISSUER
    from shared.testing.fixtures import OLD_HS256_SECRET, test_keys

    now = int(_time.time())
    claims = {"iss": ISSUER, "aud": "recoverynet", "iat": now, "exp": now + 600, "jti": str(uuid.uuid4()),
              "sub": "crafted", "role": "admin", "org": world.org, "sites": []}
    algorithm = changes.pop("alg", "EdDSA")
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not ...}
    if algorithm == "none":
        return jwt.encode(claims, None, algorithm="none")
    if algorithm == "EdDSA":
        key = test_keys().signing_key
        return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": key.kid})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HS512 with the old secret: short for SHA-512, which is the point
        return jwt.encode(claims, OLD_HS256_SECRET, algorithm=algorithm)


@pytest.mark.parametrize("service", SERVICES)
def test_tokens_without_an_organization_or_with_an_unknown_role_reach_nothing(stack, world, make_token, problem,
                                                                             service):
    """A platform operator's token (no organization) is refused (403) on every organization route, and
    correctly signed tokens with claims the platform does not accept (an unknown role, an admin bound to
    no organization, a leader without a leader id, malformed sites, another issuer, no expiry, the
    unsigned "none" algorithm, HS512 with the old shared secret) are refused with 401, all as problem+json."""
    app, client = stack.apps[service], stack.client(service)
    tokens = {"operator": make_token(None, "operator"), "unknown-role": _crafted(world, role="root"),
              "no-org-admin": _crafted(world, org=None), "leader-without-id": _crafted(world, role="leader"),
              "malformed-sites": _crafted(world, role="coordinator", sites="all"),
              "other-issuer": _crafted(world, iss="someone-else"), "no-expiry": _crafted(world, exp=...),
              "alg-none": _crafted(world, alg="none"), "hs512": _crafted(world, alg="HS512")}
    for endpoint, rule, method in routes(app):
        if endpoint in PUBLIC or endpoint in OWN_CREDENTIAL:
            continue
        spec = OBJECT_ROUTES[service].get(f"{method} {rule}", {})
        for kind, token in tokens.items():
            if kind == "operator" and endpoint in OPERATOR_ROUTES:
                continue
            response = request(client, method, fill(service, rule, world.ids), token, spec, world.ids)
            # an operator's empty create body fails validation (422, the same for anyone) before the role check
            expected = (403, 422) if kind == "operator" else (401,)
            assert response.status_code in expected, (kind, method, rule, response.status_code,
                                                      response.get_data(as_text=True)[:300])
            problem(response, *expected)


def test_public_feeds_show_no_attendee_and_no_private_meeting(stack, world):
    scheduling, ids = stack.client("scheduling"), world.ids
    private = [ids["member"], ids["member2"], ids["registration"], ids["session"], ids["match"]]
    for path in (f"/v1/feeds/{world.org}/meeting-guide.json", f"/v1/feeds/{world.org}/sites/{ids['site']}/meetings.ics"):
        response = scheduling.get(path)
        assert response.status_code == 200, (path, response.status_code)
        text = response.get_data(as_text=True)
        assert "Morning circle" in text  # the public meeting is listed ...
        assert not [p for p in private if p in text], path  # ... without who comes
        assert not [i for i in world.identifiers if i.lower() in text.lower()], path
    other = scheduling.get(f"/v1/feeds/{world.other_org}/meeting-guide.json").get_data(as_text=True)
    assert "Morning circle" not in other and ids["meeting"] not in other
