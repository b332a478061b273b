"""Roles (issue 9, Security): a peer leader sees only their own matches, sessions and members; a
coordinator only their sites; only organization admins change matching weights, notification templates
and webhooks (403 for everyone else). Against the real objects of the package's world."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(120)


def ids_in(response):
    return response.get_data(as_text=True)


def test_a_peer_leader_sees_only_their_own_matches_sessions_and_members(stack, world, problem):
    matching, scheduling = stack.client("matching"), stack.client("scheduling")
    intake, notifications = stack.client("intake"), stack.client("notifications")
    ids, mine, theirs = world.ids, world.h("leader"), world.h("leader_other")

    # matches: the match's own leader sees it (and so its member); another leader sees nothing of it
    own = matching.get("/v1/matches", headers=mine).get_json()["items"]
    assert ids["match"] in [m["id"] for m in own] and {m["leader_id"] for m in own} == {ids["leader"]}
    assert next(m for m in own if m["id"] == ids["match"])["member_id"] == ids["member"]
    assert matching.get(f"/v1/matches/{ids['match']}", headers=mine).status_code == 200
    listed = matching.get("/v1/matches", headers=theirs)
    assert listed.status_code == 200 and ids["match"] not in ids_in(listed) and ids["member"] not in ids_in(listed)
    assert {m["leader_id"] for m in listed.get_json()["items"]} <= {ids["leader_other"]}
    assert matching.get("/v1/matches", query_string={"leader_id": ids["leader"]}, headers=theirs).get_json()["total"] == 0
    problem(matching.get(f"/v1/matches/{ids['match']}", headers=theirs), 404)
    problem(matching.post(f"/v1/matches/{ids['match']}/end", json={"reason_code": "leader_choice"}, headers=theirs),
            404)
    problem(matching.get(f"/v1/members/{ids['member']}/proposals", headers=mine), 403)  # staff only

    # sessions
    assert ids["session"] in ids_in(scheduling.get("/v1/sessions", headers=mine))
    assert scheduling.get(f"/v1/sessions/{ids['session']}", headers=mine).status_code == 200
    listed = scheduling.get("/v1/sessions", headers=theirs)
    assert listed.status_code == 200 and ids["session"] not in ids_in(listed)
    problem(scheduling.get(f"/v1/sessions/{ids['session']}", headers=theirs), 404)
    problem(scheduling.post(f"/v1/sessions/{ids['session']}/cancel", json={"reason": "x"}, headers=theirs), 404)
    problem(scheduling.get(f"/v1/matches/{ids['match']}/suggestions", headers=theirs), 404)
    problem(scheduling.get(f"/v1/feeds/{world.org}/leaders/{ids['leader']}/calendar.ics", headers=theirs), 404)
    problem(scheduling.get(f"/v1/feeds/{world.org}/members/{ids['member']}/calendar.ics", headers=theirs), 404)

    # members' records: leaders read no member record in intake, nor another person's preferences or inbox
    problem(intake.get("/v1/members", headers=mine), 403)
    problem(intake.get(f"/v1/members/{ids['member']}", headers=mine), 403)
    problem(intake.get(f"/v1/members/{ids['member']}/screenings", headers=mine), 403)
    leaders = intake.get("/v1/leaders", headers=theirs).get_json()["items"]
    assert [l["id"] for l in leaders] == [ids["leader_other"]]
    problem(intake.get(f"/v1/leaders/{ids['leader']}", headers=theirs), 404)
    problem(notifications.get(f"/v1/people/{ids['member']}/preferences", headers=mine), 404)
    problem(notifications.get(f"/v1/people/{ids['member']}/inbox", headers=mine), 404)
    problem(notifications.get(f"/v1/people/{ids['leader']}/inbox", headers=theirs), 404)
    problem(notifications.get("/v1/deliveries", headers=mine), 403)


def test_a_coordinator_sees_only_their_sites(stack, world, problem):
    intake, matching = stack.client("intake"), stack.client("matching")
    scheduling, notifications = stack.client("scheduling"), stack.client("notifications")
    ids, here, there = world.ids, world.h("coordinator"), world.h("coordinator_other_site")

    members_here = ids_in(intake.get("/v1/members", headers=here))
    members_there = ids_in(intake.get("/v1/members", headers=there))
    assert ids["member"] in members_here and ids["member2"] not in members_here
    assert ids["member2"] in members_there and ids["member"] not in members_there
    assert intake.get("/v1/members", query_string={"site_id": ids["site"]}, headers=there).get_json()["total"] == 0
    assert [s["id"] for s in intake.get("/v1/sites", headers=there).get_json()["items"]] == [ids["site2"]]
    assert ids["leader"] not in ids_in(intake.get("/v1/leaders", headers=there))

    assert ids["match"] in ids_in(matching.get("/v1/matches", headers=here))
    for query in ({}, {"site_id": ids["site"]}, {"member_id": ids["member"]}):
        assert ids["match"] not in ids_in(matching.get("/v1/matches", query_string=query, headers=there))
    assert ids["batch_run"] not in ids_in(matching.get("/v1/batch-runs", headers=there))

    assert ids["meeting"] in ids_in(scheduling.get("/v1/meetings", headers=here))
    assert ids["meeting"] not in ids_in(scheduling.get("/v1/meetings", headers=there))
    assert ids["meeting"] not in ids_in(scheduling.get("/v1/meetings", query_string={"site_id": ids["site"]},
                                                       headers=there))
    assert ids["session"] in ids_in(scheduling.get("/v1/sessions", headers=here))
    assert ids["session"] not in ids_in(scheduling.get("/v1/sessions", headers=there))

    assert ids["delivery"] in ids_in(notifications.get("/v1/deliveries", query_string={"recipient_id": ids["member"]},
                                                       headers=here))
    for query in ({}, {"site_id": ids["site"]}, {"recipient_id": ids["member"]}):
        assert ids["delivery"] not in ids_in(notifications.get("/v1/deliveries", query_string=query, headers=there))
    assert notifications.get(f"/v1/people/{ids['member']}/preferences", headers=here).status_code == 200
    problem(notifications.get(f"/v1/people/{ids['member']}/preferences", headers=there), 404)
    problem(notifications.get(f"/v1/sites/{ids['site']}/coordinators", headers=there), 404)


@pytest.mark.parametrize("role", ["coordinator", "leader", "service"])
def test_only_organization_admins_change_weights_templates_and_webhooks(stack, world, problem, role):
    matching, notifications = stack.client("matching"), stack.client("notifications")
    who = world.h(role)
    weights = matching.get("/v1/settings", headers=world.h()).get_json()["weights"]
    problem(matching.put("/v1/settings", json={"weights": {**weights, "leader_load": 99}},
                         headers={**who, "If-Match": "*"}), 403)
    problem(notifications.put("/v1/templates/match_proposed/email/es", json={"text": "Hola {{ name }}"}, headers=who),
            403)
    problem(notifications.delete("/v1/templates/match_proposed/email/en", headers=who), 403)
    problem(notifications.post("/v1/templates/match_proposed/email/en/preview", json={}, headers=who), 403)
    problem(notifications.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/evil"}, headers=who), 403)
    problem(notifications.delete(f"/v1/webhooks/{world.ids['webhook']}", headers=who), 403)
    # nothing changed
    assert matching.get("/v1/settings", headers=world.h()).get_json()["weights"] == weights
    hooks = notifications.get("/v1/webhooks", headers=world.h()).get_json()
    assert [h["url"] for h in hooks] == ["http://127.0.0.1:9/hook"]
    templates = notifications.get("/v1/templates", headers=world.h()).get_json()
    assert [(t["kind"], t["channel"], t["language"]) for t in templates] == [("match_proposed", "email", "en")]


def test_an_organization_admin_changes_weights_templates_and_webhooks(stack, world):
    matching, notifications = stack.client("matching"), stack.client("notifications")
    admin = world.h()
    current = matching.get("/v1/settings", headers=admin)
    same = matching.put("/v1/settings", json={"weights": current.get_json()["weights"]},
                        headers={**admin, "If-Match": current.headers["ETag"]})
    assert same.status_code == 200, same.get_json()
    made = notifications.put("/v1/templates/session_booked/sms/en", json={"text": "Booked {{ name }}"}, headers=admin)
    assert made.status_code == 200, made.get_json()
    assert notifications.delete("/v1/templates/session_booked/sms/en", headers=admin).status_code == 204
    hook = notifications.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/other"}, headers=admin)
    assert hook.status_code == 201, hook.get_json()
    assert notifications.delete(f"/v1/webhooks/{hook.get_json()['id']}", headers=admin).status_code == 204


@pytest.mark.parametrize("service", ["intake", "matching", "scheduling", "notifications"])
def test_list_filters_naming_another_sites_objects_return_nothing_of_them(stack, world, service):
    """Every list route, read by a coordinator of the other site with its filters pointed at the first
    site's objects, shows none of them."""
    from datetime import datetime, timedelta, timezone

    client, ids, there = stack.client(service), world.ids, world.h("coordinator_other_site")
    now = datetime.now(timezone.utc)
    filters = {"site_id": ids["site"], "member_id": ids["member"], "leader_id": ids["leader"],
               "recipient_id": ids["member"], "resource_id": ids["member"], "match_id": ids["match"],
               "from": now.isoformat(), "to": (now + timedelta(days=60)).isoformat()}
    first_site = [ids[k] for k in ("member", "match", "session", "meeting", "delivery", "registration", "leader",
                                   "batch_run", "import", "screening", "message")]
    for rule in stack.apps[service].url_map.iter_rules():
        if "GET" not in rule.methods or "<" in rule.rule or not rule.rule.startswith("/v1/") or "feeds" in rule.rule:
            continue
        for name, value in filters.items():
            query = {name: value}
            if name in ("from", "to") or rule.rule.endswith("occurrences"):
                query = {"from": filters["from"], "to": filters["to"], **({} if name in ("from", "to") else query)}
            response = client.get(rule.rule, query_string=query, headers=there)
            if response.status_code != 200:
                assert response.status_code in (403, 422), (rule.rule, query, response.status_code)
                continue
            text = response.get_data(as_text=True)
            assert not [i for i in first_site if i in text], (rule.rule, query, text[:400])
