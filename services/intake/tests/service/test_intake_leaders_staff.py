"""Peer leaders, staff and the audit log through the real API, database and broker."""
import pytest

from shared.auth import verify_token
from shared.events.intake import (
    ContactChanged,
    CoordinatorAssigned,
    LeaderAvailabilityChanged,
    LeaderCapacityChanged,
    LeaderDeactivated,
    LeaderReactivated,
    LeaderRegistered,
    LeaderUpdated,
)
from shared.testing.fixtures import test_keys

pytestmark = pytest.mark.timeout(180)


def test_leader_registration_update_and_status_events(intake, intake_worker, tap, bodies):
    a, b = intake.site("A", "America/Denver"), intake.site("B")
    r = intake.leader([a["id"]], phone=bodies.phone())
    leader = r.json
    lid = leader["id"]
    assert leader["status"] == "active" and leader["time_zone"] == "America/Denver"
    assert leader["certifications_current"] is True
    registered = tap.wait_for(lambda e: e.type == LeaderRegistered.type and e.key == lid)[0]
    assert registered.data["capacity"] == 4 and registered.data["site_ids"] == [a["id"]]
    assert registered.data["certifications"] == [{"name": "CPRS", "issuer": "State board", "expires_on": "2030-01-01"}]
    assert "email" not in registered.data and "first_name" not in registered.data
    contact = tap.wait_for(lambda e: e.type == ContactChanged.type and e.key == lid)[0]
    assert contact.data["person_kind"] == "leader" and contact.data["email"] == leader["email"]
    assert contact.data["site_ids"] == [a["id"]] and contact.data["display_name"] == "Sam"

    etag = intake.call("get", f"/v1/leaders/{lid}", expect=200).headers["ETag"]
    updated = intake.call("patch", f"/v1/leaders/{lid}", json={
        "capacity": 2, "availability": [{"day": 4, "start": "08:00", "end": "10:00"}],
        "site_ids": [a["id"], b["id"]], "certifications": [{"name": "CPRS", "expires_on": "2020-01-01"}]},
        headers={"If-Match": etag}, expect=200).json
    assert updated["capacity"] == 2 and updated["certifications_current"] is False
    tap.wait_for(lambda e: e.type == LeaderCapacityChanged.type and e.key == lid and e.data["capacity"] == 2)
    tap.wait_for(lambda e: e.type == LeaderAvailabilityChanged.type and e.key == lid
                 and e.data["availability"][0]["day"] == 4)
    snap = tap.wait_for(lambda e: e.type == LeaderUpdated.type and e.key == lid)[0]
    assert snap.data["site_ids"] == [a["id"], b["id"]]
    assert snap.data["certifications"][0]["expires_on"] == "2020-01-01"
    tap.wait_for(lambda e: e.type == ContactChanged.type and e.key == lid and len(e.data["site_ids"]) == 2)

    intake.call("post", f"/v1/leaders/{lid}/status", json={"to_status": "on_leave", "reason": "surgery"}, expect=200)
    deact = tap.wait_for(lambda e: e.type == LeaderDeactivated.type and e.key == lid)[0]
    assert deact.data["to_status"] == "on_leave"
    intake.call("post", f"/v1/leaders/{lid}/status", json={"to_status": "active"}, expect=200)
    tap.wait_for(lambda e: e.type == LeaderReactivated.type and e.key == lid)
    intake.call("post", f"/v1/leaders/{lid}/status", json={"to_status": "active"}, expect=409)
    listed = intake.call("get", "/v1/leaders?status=active", expect=200).json
    assert [x["id"] for x in listed["items"]] == [lid]


def test_leader_validation_scoping_and_duplicates(intake, bodies):
    a, b = intake.site("A"), intake.site("B")
    r = intake.leader([a["id"]], expect=422, capacity=-1)
    assert set(r.json["errors"]) == {"capacity"}
    r = intake.leader([a["id"]], expect=422, email="bad@", languages=["english!"])
    assert set(r.json["errors"]) >= {"email", "languages"}
    leader = intake.leader([a["id"]]).json
    dup = intake.leader([b["id"]], expect=409, email=leader["email"])
    assert dup.json["existing"]["id"] == leader["id"]
    coord_b = intake.coordinator(b["id"])
    intake.call("get", f"/v1/leaders/{leader['id']}", coord_b, expect=404)
    intake.leader([a["id"]], coord_b, expect=422)
    assert intake.call("get", "/v1/leaders", coord_b, expect=200).json["total"] == 0
    # a leader reads and edits their own profile, not capacity
    own = intake.make_token(intake.org, "leader", leader_id=leader["id"])
    got = intake.call("get", f"/v1/leaders/{leader['id']}", own, expect=200)
    intake.call("patch", f"/v1/leaders/{leader['id']}", own, json={"capacity": 9},
                headers={"If-Match": got.headers["ETag"]}, expect=403)
    intake.call("patch", f"/v1/leaders/{leader['id']}", own, json={"pronouns": "she/her"},
                headers={"If-Match": got.headers["ETag"]}, expect=200)
    other = intake.leader([a["id"]]).json
    intake.call("get", f"/v1/leaders/{other['id']}", own, expect=404)


def test_staff_coordinator_assignment_contact_and_token(intake, intake_worker, tap, bodies):
    site = intake.site()
    staff = intake.call("post", "/v1/staff", json={"first_name": "Cora", "email": bodies.email("cora"),
                                                    "site_ids": [site["id"]]}, expect=201).json
    assigned = tap.wait_for(lambda e: e.type == CoordinatorAssigned.type and e.key == intake.org
                            and e.data["staff_id"] == staff["id"])[0]
    assert assigned.data["site_ids"] == [site["id"]]
    contact = tap.wait_for(lambda e: e.type == ContactChanged.type and e.key == staff["id"])[0]
    assert contact.data["person_kind"] == "staff"
    token = intake.call("post", f"/v1/staff/{staff['id']}/tokens", json={}, expect=201).json["token"]
    principal = verify_token(token, test_keys().keyset())
    assert principal.role == "coordinator" and principal.sites == {site["id"]}
    assert intake.call("get", "/v1/sites", token, expect=200).json["total"] == 1
    intake.call("post", "/v1/staff", json={"first_name": "X", "email": bodies.email(), "site_ids": ["nope"]},
                expect=422)
    # moving the coordinator to another site announces it; their contact change too
    other = intake.site("Other")
    etag = intake.call("get", f"/v1/staff/{staff['id']}", expect=200).headers["ETag"]
    intake.call("patch", f"/v1/staff/{staff['id']}", json={"site_ids": [other["id"]]}, expect=428)
    moved = intake.call("patch", f"/v1/staff/{staff['id']}", json={"site_ids": [other["id"]], "phone": bodies.phone()},
                        headers={"If-Match": etag}, expect=200).json
    assert moved["site_ids"] == [other["id"]]
    tap.wait_for(lambda e: e.type == CoordinatorAssigned.type and e.data["staff_id"] == staff["id"]
                 and e.data["site_ids"] == [other["id"]])
    tap.wait_for(lambda e: e.type == ContactChanged.type and e.key == staff["id"] and e.data["phone"] == moved["phone"])
    # operators issue an organization's first admin token
    operator = intake.make_token(None, "operator")
    admin = intake.call("post", f"/v1/organizations/{intake.org}/admin-tokens", operator, json={}, expect=201).json
    assert verify_token(admin["token"], test_keys().keyset()).organization_id == intake.org
    intake.call("post", "/v1/organizations/org-nope/admin-tokens", operator, json={}, expect=404)


def test_audit_log_records_reads_and_changes_for_admins_only(intake):
    site = intake.site()
    mid = intake.member(site["id"]).json["id"]
    coord = intake.coordinator(site["id"])
    intake.call("get", f"/v1/members/{mid}", coord, expect=200)
    intake.call("post", f"/v1/members/{mid}/consents", coord, json={"purpose": "matching"}, expect=201)
    entries = intake.call("get", f"/v1/audit-log?resource_id={mid}", expect=200).json["items"]
    assert [e["action"] for e in entries] == ["create", "read", "grant"]
    assert entries[1]["actor_role"] == "coordinator"
    intake.call("get", "/v1/audit-log", coord, expect=403)


def test_a_leader_goes_on_leave_and_comes_back_themself_but_never_retires_or_touches_another(intake):
    """Issue 17: a peer leader says they are on leave (their members are re-matched as when staff do it)."""
    site = intake.site()
    mine, other = intake.leader([site["id"]]).json, intake.leader([site["id"]]).json
    token = intake.make_token(intake.org, "leader", leader_id=mine["id"], sites=[site["id"]])
    away = intake.call("post", f"/v1/leaders/{mine['id']}/status", token,
                       json={"to_status": "on_leave", "reason": "rest"}, expect=200).json
    assert away["status"] == "on_leave"
    intake.call("post", f"/v1/leaders/{mine['id']}/status", token, json={"to_status": "active"}, expect=200)
    intake.call("post", f"/v1/leaders/{mine['id']}/status", token, json={"to_status": "retired"}, expect=403)
    intake.call("post", f"/v1/leaders/{other['id']}/status", token, json={"to_status": "on_leave"}, expect=404)
    assert intake.call("get", f"/v1/leaders/{other['id']}", expect=200).json["status"] == "active"
