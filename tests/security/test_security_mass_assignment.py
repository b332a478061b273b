"""Mass assignment (issue 9, Security): fields a caller may not set (ids, organization, scores and
totals, statuses and status transitions, timestamps, versions, erased flags) are refused with 422 naming
each field, and nothing is stored: every create is checked by reading the collection back (same count,
no trace of the values), every update by reading the object back."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.security.conftest import leader_body, member_body

pytestmark = pytest.mark.timeout(120)

SENTINEL = "INJECTED-" + uuid.uuid4().hex[:6]
# fields that exist on stored documents but that no caller sets
SERVER_OWNED = {"id": SENTINEL, "_id": SENTINEL, "organization_id": SENTINEL, "created_at": "2001-01-01T00:00:00Z",
                "updated_at": "2001-01-01T00:00:00Z", "version": 999, "status": "erased", "erased": True,
                "erased_at": "2001-01-01T00:00:00Z"}


def refused(problem, response, fields):
    body = problem(response, 422)
    missing = [f for f in fields if f not in (body.get("errors") or {})]
    assert not missing, f"422 does not name {missing}: {body}"


def count(client, path, headers, query=None):
    body = client.get(path, query_string=query or {}, headers=headers).get_json()
    return body["total"] if isinstance(body, dict) else len(body)


def test_intake_refuses_server_owned_fields_on_every_create_and_update(stack, world, problem):
    intake, admin, ids = stack.client("intake"), world.h(), world.ids
    creates = [
        ("/v1/sites", {"name": "S", "time_zone": "UTC", "virtual_only": True}, "/v1/sites", None),
        ("/v1/staff", {"first_name": "Sam", "email": f"s.{uuid.uuid4().hex[:6]}@example.org",
                       "site_ids": [ids["site"]]}, "/v1/staff", None),
        ("/v1/leaders", {**leader_body([ids["site"]]), "open_count": 0, "certifications_current": True},
         "/v1/leaders", None),
        ("/v1/members", {**member_body(ids["site"], external_id=f"ma-{uuid.uuid4().hex[:6]}"), "flags": [],
                         "plan": {"goal": "x"}}, "/v1/members", None),
    ]
    for path, body, listing, _ in creates:
        before = count(intake, listing, admin)
        extras = {**SERVER_OWNED, **{k: v for k, v in body.items() if k in ("open_count", "certifications_current",
                                                                            "flags", "plan")}}
        refused(problem, intake.post(path, json={**body, **extras}, headers=admin), extras)
        assert count(intake, listing, admin) == before, path
    # nested: a consent's recorder and time, a certification's verification, are the service's to set
    nested = member_body(ids["site"], consents=[{"purpose": "matching", "recorded_by": SENTINEL,
                                                  "recorded_at": "2001-01-01T00:00:00Z", "in_force": True}])
    assert problem(intake.post("/v1/members", json=nested, headers=admin), 422)["errors"]
    # a screening's total, band and flag are computed, never taken from the client
    screening = {"instrument": "PHQ-2", "answers": [0, 0], "total": 6, "band": "positive", "flagged": True,
                 "id": SENTINEL}
    refused(problem, intake.post(f"/v1/members/{ids['member']}/screenings", json=screening, headers=admin),
            ["total", "band", "flagged", "id"])
    listed = intake.get(f"/v1/members/{ids['member']}/screenings", headers=admin).get_json()
    assert [s["id"] for s in listed["items"]] == [ids["screening"]]
    refused(problem, intake.post(f"/v1/members/{ids['member']}/consents",
                                 json={"purpose": "share:x", "recorded_by": SENTINEL, "granted_at": "2001-01-01"},
                                 headers=admin), ["recorded_by", "granted_at"])
    refused(problem, intake.put(f"/v1/members/{ids['member']}/plan",
                                json={"goal": "g", "revision": 99, "updated_by": SENTINEL}, headers=admin),
            ["revision", "updated_by"])

    # updates: the member, the site, the leader, the staff member, the organization
    updates = [("/v1/members/" + ids["member"], {"preferred_name": "Zed"}),
               ("/v1/sites/" + ids["site"], {"name": "Riverside"}),
               ("/v1/leaders/" + ids["leader"], {"languages": ["en"]}),
               ("/v1/staff/" + ids["staff"], {"languages": ["en"]}),
               ("/v1/organizations/" + world.org, {"default_language": "en"})]
    for path, body in updates:
        before = intake.get(path, headers=admin)
        extras = {**SERVER_OWNED, "site_id": SENTINEL} if path.startswith("/v1/members") else SERVER_OWNED
        response = intake.patch(path, json={**body, **extras}, headers={**admin, "If-Match": before.headers["ETag"]})
        refused(problem, response, extras)
        after = intake.get(path, headers=admin)
        assert after.get_json() == before.get_json() and SENTINEL not in after.get_data(as_text=True), path

    # status transitions go through their own endpoint and its rules; "erased" only through erasure
    for to in ("erased", "pending_consent", "deleted"):
        response = intake.post(f"/v1/members/{ids['member2']}/status", json={"to_status": to}, headers=admin)
        assert response.status_code in (409, 422), (to, response.status_code)
        problem(response, response.status_code)
    assert intake.get(f"/v1/members/{ids['member2']}", headers=admin).get_json()["status"] == "active"


def test_a_leader_cannot_change_their_own_sites_capacity_or_certifications(stack, world, problem):
    intake, ids = stack.client("intake"), world.ids
    path = f"/v1/leaders/{ids['leader_other']}"
    me = world.h("leader_other")
    before = intake.get(path, headers=me)
    assert before.status_code == 200
    for field, value in (("site_ids", [ids["site2"]]), ("capacity", 100),
                         ("certifications", [{"name": "Self-issued", "expires_on": "2099-01-01"}])):
        response = intake.patch(path, json={field: value}, headers={**me, "If-Match": before.headers["ETag"]})
        assert response.status_code in (403, 422), (field, response.status_code, response.get_json())
        problem(response, response.status_code)
    after = intake.get(path, headers=me).get_json()
    assert (after["site_ids"], after["capacity"], after["certifications"]) == (
        before.get_json()["site_ids"], before.get_json()["capacity"], before.get_json()["certifications"])


def test_matching_refuses_server_owned_fields(stack, world, problem):
    matching, admin, ids = stack.client("matching"), world.h(), world.ids
    before = count(matching, "/v1/overrides", admin)
    override = {"member_id": ids["member"], "leader_id": ids["leader_other"], "kind": "block", "reason": "x",
                "active": False, "created_by": SENTINEL, **SERVER_OWNED}
    refused(problem, matching.post("/v1/overrides", json=override, headers=admin),
            ["active", "created_by", *SERVER_OWNED])
    assert count(matching, "/v1/overrides", admin) == before
    runs = count(matching, "/v1/batch-runs", admin)
    refused(problem, matching.post("/v1/batch-runs", json={"site_id": ids["site"], "matched": 1000, "total_score": 1e9,
                                                           **SERVER_OWNED}, headers=admin),
            ["matched", "total_score", *SERVER_OWNED])
    assert count(matching, "/v1/batch-runs", admin) == runs
    settings = matching.get("/v1/settings", headers=admin)
    refused(problem, matching.put("/v1/settings", json={"weights": settings.get_json()["weights"], "points": {},
                                                        **SERVER_OWNED},
                                  headers={**admin, "If-Match": settings.headers["ETag"]}), ["points", *SERVER_OWNED])
    assert matching.get("/v1/settings", headers=admin).headers["ETag"] == settings.headers["ETag"]
    # a match's status, score and breakdown change only through its lifecycle
    match = matching.get(f"/v1/matches/{ids['match']}", headers=admin).get_json()
    refused(problem, matching.post(f"/v1/matches/{ids['match']}/decline",
                                   json={"reason": "x", "status": "declined", "score": 100}, headers=admin),
            ["status", "score"])
    problem(matching.post(f"/v1/matches/{ids['match']}/decline", json={"reason": "x"}, headers=admin), 409)  # active
    refused(problem, matching.post(f"/v1/matches/{ids['match']}/end",
                                   json={"reason_code": "coordinator", "status": "proposed", "score": 0},
                                   headers=admin), ["status", "score"])
    after = matching.get(f"/v1/matches/{ids['match']}", headers=admin).get_json()
    assert (after["status"], after["score"]) == (match["status"], match["score"]) == ("active", match["score"])


def test_scheduling_refuses_server_owned_fields(stack, world, problem):
    scheduling, admin, ids = stack.client("scheduling"), world.h(), world.ids
    first = (datetime.now(timezone.utc) + timedelta(days=5)).strftime("%Y-%m-%dT08:00")
    meeting = {"site_id": ids["site"], "facilitator_id": ids["leader_other"], "name": "Injected", "capacity": 5,
               "attendance_mode": "in_person", "rrule": "FREQ=WEEKLY", "first_start_local": first,
               "duration_minutes": 30, "exceptions": {}, "registered_count": 0, **SERVER_OWNED}
    before = count(scheduling, "/v1/meetings", admin)
    refused(problem, scheduling.post("/v1/meetings", json=meeting, headers=admin),
            ["exceptions", "registered_count", *SERVER_OWNED])
    assert count(scheduling, "/v1/meetings", admin) == before
    current = scheduling.get(f"/v1/meetings/{ids['meeting']}", headers=admin)
    refused(problem, scheduling.patch(f"/v1/meetings/{ids['meeting']}", json={"name": "x", "site_id": SENTINEL,
                                                                             "time_zone": "UTC", **SERVER_OWNED},
                                      headers={**admin, "If-Match": current.headers["ETag"]}),
            ["site_id", "time_zone", *SERVER_OWNED])
    assert scheduling.get(f"/v1/meetings/{ids['meeting']}", headers=admin).get_json() == current.get_json()
    regs = scheduling.get(f"/v1/meetings/{ids['meeting']}/registrations", headers=admin).get_json()["items"]
    refused(problem, scheduling.post(f"/v1/meetings/{ids['meeting']}/registrations",
                                     json={"member_id": ids["member2"], "waitlist_position": 0, **SERVER_OWNED},
                                     headers=admin), ["waitlist_position", *SERVER_OWNED])
    assert scheduling.get(f"/v1/meetings/{ids['meeting']}/registrations", headers=admin).get_json()["items"] == regs
    sessions = count(scheduling, "/v1/sessions", admin)
    start = (datetime.now(timezone.utc) + timedelta(days=9)).isoformat()
    refused(problem, scheduling.post("/v1/sessions", json={"match_id": ids["match"], "start": start,
                                                           "member_id": SENTINEL, "leader_id": SENTINEL,
                                                           "booked_by_role": "admin", **SERVER_OWNED},
                                     headers=world.h("leader")),
            ["member_id", "leader_id", "booked_by_role", *SERVER_OWNED])
    assert count(scheduling, "/v1/sessions", admin) == sessions
    refused(problem, scheduling.put(f"/v1/meetings/{ids['meeting']}/occurrences/{ids['occurrence']}/attendance",
                                    json={"present_member_ids": [], "recorded_at": "2001-01-01T00:00:00Z",
                                          "recorded_by": SENTINEL}, headers=admin), ["recorded_at", "recorded_by"])


def test_notifications_refuses_server_owned_fields(stack, world, problem):
    notifications, admin, ids = stack.client("notifications"), world.h(), world.ids
    hooks = count(notifications, "/v1/webhooks", admin)
    refused(problem, notifications.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "failures": 0,
                                                              **SERVER_OWNED}, headers=admin),
            ["failures", *SERVER_OWNED])
    assert count(notifications, "/v1/webhooks", admin) == hooks
    path = f"/v1/people/{ids['member']}/preferences"
    current = notifications.get(path, headers=admin)
    refused(problem, notifications.put(path, json={"digest": True, "person_id": SENTINEL,
                                                   "effective_channels": ["sms"], **SERVER_OWNED},
                                       headers={**admin, "If-Match": current.headers["ETag"]}),
            ["person_id", "effective_channels", *SERVER_OWNED])
    assert notifications.get(path, headers=admin).get_json() == current.get_json()
    refused(problem, notifications.put("/v1/templates/match_proposed/email/en",
                                       json={"text": "x", "kind": "risk_flagged", "parts": {}, **SERVER_OWNED},
                                       headers=admin), ["kind", "parts", *SERVER_OWNED])
    template = notifications.get("/v1/templates", headers=admin).get_json()
    assert [t["parts"].get("subject") for t in template] == [ids["template_marker"]]
