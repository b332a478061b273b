"""Self-service (/v1/me) through the real API, database and broker: a member's own world, a leader's
minimum-necessary view of the members matched with them (fed by matching's events, published into the
broker as matching would), staff's own record."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared.events.intake import MemberConsentChanged
from shared.events.matching import MatchAccepted, MatchActivated, MatchEnded, MatchProposed
from shared.testing import eventually
from shared.testing.events import publish

pytestmark = pytest.mark.timeout(180)


def _match_event(kafka_bootstrap, declaration, org, match_id, member_id, leader_id, site_id, **extra):
    base = {"organization_id": org, "match_id": match_id, "member_id": member_id, "leader_id": leader_id,
            "site_id": site_id}
    extras = {
        MatchProposed: {"score": 80.0, "breakdown": [], "rules_passed": [], "origin": "new",
                        "expires_at": (datetime.now(timezone.utc) + timedelta(days=3)).isoformat()},
        MatchAccepted: {"accepted_by_role": "member"},
        MatchEnded: {"ended_by_role": "coordinator", "reason_code": "coordinator", "reason": None,
                     "re_proposal_follows": False},
    }.get(declaration, {})
    return publish(kafka_bootstrap, declaration, {**base, **extras, **extra})


@pytest.fixture
def world(intake):
    """An organization with a site, a member (matching, notify:email given), a second member and a leader."""
    site = intake.site()
    member = intake.member(site["id"], consents=[{"purpose": "matching"}, {"purpose": "notify:email"}],
                           phone="+16175550123").json
    other = intake.member(site["id"], first_name="Bea", preferred_name="B").json
    leader = intake.leader([site["id"]], bio=None).json
    me = intake.make_token(intake.org, "member", member_id=member["id"])
    return {"site": site, "member": member, "other": other, "leader": leader, "me": me,
            "leader_token": intake.make_token(intake.org, "leader", leader_id=leader["id"], sites=[site["id"]])}


def test_a_member_sees_and_changes_their_own_profile_only(intake, world):
    me, member = world["me"], world["member"]
    got = intake.call("get", "/v1/me", me, expect=200).json
    assert got["role"] == "member" and got["organization_id"] == intake.org
    mine = got["member"]
    assert mine["id"] == member["id"] and mine["preferred_name"] == "Al" and mine["email"] == member["email"]
    assert mine["site_id"] == world["site"]["id"] and mine["status"] == "active"
    assert {c["purpose"] for c in mine["consents"]} == {"matching", "notify:email"}
    for hidden in ("flags", "substances", "pathways", "plan", "external_id", "created_by"):
        assert hidden not in mine
    assert all("note" not in c and "recorded_by" not in c for c in mine["consents"])
    # what a member may change; status, site and flags are not theirs
    changed = intake.call("patch", "/v1/me", me, json={"preferred_name": "Alo", "pronouns": "she/her",
                                                       "languages": ["es", "en"], "contact_channels": ["sms"]},
                          expect=200).json["member"]
    assert changed["preferred_name"] == "Alo" and changed["languages"] == ["es", "en"]
    assert changed["contact_channels"] == ["sms"]
    for refused in ({"status": "paused"}, {"site_id": "x"}, {"flags": []}, {"email": "new@example.org"}):
        intake.call("patch", "/v1/me", me, json=refused, expect=422)
    intake.call("patch", "/v1/me", me, json={"bio": "me"}, expect=403)
    # the staff's road to a record stays closed to a member, their own included
    intake.call("get", f"/v1/members/{member['id']}", me, expect=403)
    intake.call("get", f"/v1/members/{world['other']['id']}", me, expect=403)
    intake.call("get", "/v1/members", me, expect=403)
    intake.call("get", f"/v1/me/members/{world['other']['id']}", me, expect=403)
    # a member token naming a member of no record here reads nothing
    stranger = intake.make_token(intake.org, "member", member_id="mem_nobody")
    intake.call("get", "/v1/me", stranger, expect=404)
    # the member's reads are audited
    audit = intake.call("get", "/v1/audit-log", query_string={"resource_id": member["id"], "action": "read"},
                        expect=200).json["items"]
    assert any(a["actor_role"] == "member" for a in audit)


def test_a_member_gives_and_revokes_consents_announced_platform_wide(intake, intake_worker, tap, world):
    me, mid = world["me"], world["member"]["id"]
    given = intake.call("post", "/v1/me/consents", me, json={"purpose": "share:leader"}, expect=201).json
    assert "share:leader" in {c["purpose"] for c in given}
    event = tap.wait_for(lambda e: e.type == MemberConsentChanged.type and e.key == mid and e.data["granted"]
                         and e.data["purpose"] == "share:leader")[0]
    assert "share:leader" in {c["purpose"] for c in event.data["consents"]}
    intake.call("post", "/v1/me/consents", me, json={"purpose": "notify:webhook"}, expect=422)
    left = intake.call("delete", "/v1/me/consents/matching", me, expect=200).json
    assert "matching" not in {c["purpose"] for c in left}
    tap.wait_for(lambda e: e.type == MemberConsentChanged.type and e.key == mid and not e.data["granted"]
                 and e.data["purpose"] == "matching")
    intake.call("delete", "/v1/me/consents/matching", me, expect=404)
    assert {c["purpose"] for c in intake.call("get", "/v1/me/consents", me, expect=200).json} == {
        "notify:email", "share:leader"}
    # recorded as given and revoked by the member themselves, in the same history staff read
    history = intake.call("get", f"/v1/members/{mid}/consent-history", expect=200).json
    assert [(h["purpose"], h["action"], h["by"]) for h in history[-2:]] == [
        ("share:leader", "granted", f"member:{mid}"), ("matching", "revoked", f"member:{mid}")]


def test_plan_shared_and_scores_not_by_default_and_the_organization_flips_them(intake, world):
    me, mid = world["me"], world["member"]["id"]
    assert intake.call("get", "/v1/me/plan", me, expect=404).json["detail"]  # no plan yet, said plainly
    intake.call("put", f"/v1/members/{mid}/plan", json={"goal": "Sleep well", "next_steps": ["walk"]}, expect=200)
    intake.call("post", f"/v1/members/{mid}/screenings", json={"instrument": "PHQ-2", "answers": [1, 1]}, expect=201)
    plan = intake.call("get", "/v1/me/plan", me, expect=200).json
    assert plan["goal"] == "Sleep well" and plan["shared_with_leader"] is False
    refused = intake.call("get", "/v1/me/screenings", me, expect=403).json
    assert "scores" in refused["detail"]
    org = intake.call("get", f"/v1/organizations/{intake.org}", expect=200)
    assert org.json["self_service"] == {"share_plan": True, "share_scores": False}
    flipped = intake.call("patch", f"/v1/organizations/{intake.org}", json={"self_service": {"share_scores": True}},
                          headers={"If-Match": org.headers["ETag"]}, expect=200)
    assert flipped.json["self_service"] == {"share_plan": True, "share_scores": True}
    scores = intake.call("get", "/v1/me/screenings", me, expect=200).json
    assert scores["total"] == 1 and scores["items"][0]["total"] == 2 and scores["items"][0]["band"]
    assert "answers" not in scores["items"][0] and "flagged" not in scores["items"][0]
    intake.call("patch", f"/v1/organizations/{intake.org}", json={"self_service": {"share_plan": False}},
                headers={"If-Match": flipped.headers["ETag"]}, expect=200)
    assert "plan" in intake.call("get", "/v1/me/plan", me, expect=403).json["detail"]


def test_a_leader_sees_their_matched_member_minimum_necessary_and_nothing_after_the_match(
        intake, intake_worker, kafka_bootstrap, world):
    org, site_id = intake.org, world["site"]["id"]
    member, leader, me, lt = world["member"], world["leader"], world["me"], world["leader_token"]
    mid, lid, match_id = member["id"], leader["id"], f"mat_{uuid.uuid4().hex[:12]}"
    # the leader's own profile and bio
    mine = intake.call("get", "/v1/me", lt, expect=200).json
    assert mine["role"] == "leader" and mine["leader"]["id"] == lid
    intake.call("patch", "/v1/me", lt, json={"bio": "Ten years in recovery; I like long walks."}, expect=200)
    intake.call("patch", "/v1/me", lt, json={"capacity": 9}, expect=422)
    intake.call("patch", "/v1/me", lt, json={"contact_channels": ["sms"]}, expect=403)
    # not matched: the member waits, the leader sees no one
    waiting = intake.call("get", "/v1/me/leader", me, expect=200).json
    assert waiting["waiting"] is True and waiting["reason"] and waiting["leader"] is None
    assert intake.call("get", "/v1/me/members", lt, expect=200).json == []
    intake.call("get", f"/v1/me/members/{mid}", lt, expect=404)
    # matching proposes the leader: the member sees them, the leader sees the member, no contact details
    _match_event(kafka_bootstrap, MatchProposed, org, match_id, mid, lid, site_id)
    seen = eventually(lambda: (r := intake.call("get", f"/v1/me/members/{mid}", lt)).status_code == 200 and r.json,
                      message="the leader sees the proposed member")
    assert seen["name"] == "Al" and seen["languages"] == ["en", "es"] and seen["availability"]
    assert seen["contact"] is None and seen["contact_shared"] is False and seen["shared_goals"] == []
    for hidden in ("email", "phone", "flags", "screenings", "last_name", "date_of_birth", "substances"):
        assert hidden not in seen
    my_leader = intake.call("get", "/v1/me/leader", me, expect=200).json
    assert my_leader["waiting"] is False and my_leader["status"] == "proposed"
    assert my_leader["leader"] == {"first_name": "Sam", "languages": ["en"],
                                   "bio": "Ten years in recovery; I like long walks."}
    # other members stay out of sight, and the staff road stays closed to the leader
    intake.call("get", f"/v1/me/members/{world['other']['id']}", lt, expect=404)
    intake.call("get", f"/v1/members/{mid}", lt, expect=403)
    # the member shares contact details and the plan's goal
    intake.call("post", "/v1/me/consents", me, json={"purpose": "share:leader"}, expect=201)
    intake.call("put", f"/v1/members/{mid}/plan", json={"goal": "Rebuild trust", "next_steps": ["call mom"]},
                expect=200)
    intake.call("patch", "/v1/me/plan", me, json={"shared_with_leader": True}, expect=200)
    _match_event(kafka_bootstrap, MatchAccepted, org, match_id, mid, lid, site_id)
    _match_event(kafka_bootstrap, MatchActivated, org, match_id, mid, lid, site_id)
    seen = eventually(lambda: (r := intake.call("get", "/v1/me/members", lt, expect=200).json) and
                      r[0]["match_status"] == "active" and r, message="the match is active")
    assert [m["member_id"] for m in seen] == [mid]
    assert seen[0]["contact"]["email"] == member["email"] and seen[0]["contact"]["phone"] == "+16175550123"
    assert seen[0]["shared_goals"] == [{"goal": "Rebuild trust", "next_steps": ["call mom"]}]
    # revoking share:leader hides the contact again
    intake.call("delete", "/v1/me/consents/share:leader", me, expect=200)
    assert intake.call("get", f"/v1/me/members/{mid}", lt, expect=200).json["contact"] is None
    # the leader's reads are audited
    audit = intake.call("get", "/v1/audit-log", query_string={"resource_id": mid, "action": "read"},
                        expect=200).json["items"]
    assert any(a["actor_role"] == "leader" and a["details"].get("view") == "leader" for a in audit)
    # the match ends: the leader sees nothing more, the member waits again
    _match_event(kafka_bootstrap, MatchEnded, org, match_id, mid, lid, site_id)
    eventually(lambda: intake.call("get", f"/v1/me/members/{mid}", lt).status_code == 404,
               message="the ended match hides the member")
    assert intake.call("get", "/v1/me/members", lt, expect=200).json == []
    assert intake.call("get", "/v1/me/leader", me, expect=200).json["waiting"] is True
    # a late, redelivered proposal of the ended match does not reopen it
    _match_event(kafka_bootstrap, MatchProposed, org, match_id, mid, lid, site_id)
    other_match = f"mat_{uuid.uuid4().hex[:12]}"
    _match_event(kafka_bootstrap, MatchProposed, org, other_match, world["other"]["id"], lid, site_id)
    eventually(lambda: intake.call("get", f"/v1/me/members/{world['other']['id']}", lt).status_code == 200,
               message="the later event was handled")
    intake.call("get", f"/v1/me/members/{mid}", lt, expect=404)


def test_the_export_holds_the_members_data_and_nothing_of_another(intake, intake_worker, kafka_bootstrap, world):
    me, mid, other = world["me"], world["member"]["id"], world["other"]
    intake.call("put", f"/v1/members/{mid}/plan", json={"goal": "Work again"}, expect=200)
    intake.call("put", f"/v1/members/{mid}/plan", json={"goal": "Work part time"}, expect=200)
    intake.call("post", f"/v1/members/{mid}/screenings", json={"instrument": "PHQ-2", "answers": [0, 1]}, expect=201)
    intake.call("put", f"/v1/members/{other['id']}/plan", json={"goal": "Other's secret goal"}, expect=200)
    intake.call("post", f"/v1/members/{other['id']}/screenings", json={"instrument": "AUDIT-C", "answers": [1, 1, 1]},
                expect=201)
    intake.call("get", f"/v1/members/{mid}", expect=200)  # a coordinator's read, which the member may see
    # a lookup of both members at once: one audit entry about both, which the export shows about this member only
    intake.call("get", f"/v1/members?ids={mid}&ids={other['id']}", expect=200)
    match_id = f"mat_{uuid.uuid4().hex[:12]}"
    _match_event(kafka_bootstrap, MatchProposed, intake.org, match_id, mid, world["leader"]["id"], world["site"]["id"])
    eventually(lambda: intake.call("get", "/v1/me/leader", me, expect=200).json["waiting"] is False,
               message="the match is known")
    export = intake.call("get", "/v1/me/export", me, expect=200).json
    assert export["member"]["id"] == mid and export["member"]["email"] == world["member"]["email"]
    assert {c["purpose"] for c in export["member"]["consents"]} == {"matching", "notify:email"}
    assert [h["purpose"] for h in export["consent_history"]] == ["matching", "notify:email"]
    assert [s["instrument"] for s in export["screenings"]] == ["PHQ-2"]
    assert export["plan"]["goal"] == "Work part time"
    assert [p["revision"] for p in export["plan_history"]] == [2, 1]
    assert [(m["match_id"], m["status"], m["open"]) for m in export["matches"]] == [(match_id, "proposed", True)]
    assert any(a["actor_role"] == "admin" and a["action"] == "read" for a in export["audit"])
    assert all(a["resource_id"] == mid and a["resource_ids"] == [mid] for a in export["audit"])
    assert any(a["details"].get("via") == "ids" for a in export["audit"])
    text = str(export)
    assert other["id"] not in text and "Other's secret goal" not in text and other["email"] not in text
    assert "AUDIT-C" not in text
    # the export itself is audited
    audit = intake.call("get", "/v1/audit-log", query_string={"resource_id": mid, "action": "export"},
                        expect=200).json["items"]
    assert audit and audit[0]["actor"] == f"member:{mid}"
    # other roles have no export of their own here
    intake.call("get", "/v1/me/export", world["leader_token"], expect=403)
    intake.call("get", "/v1/me/export", expect=403)


def test_staff_and_operators_see_their_own_record(intake, world):
    staff = intake.call("post", "/v1/staff", json={"first_name": "Cora", "email": intake_email(), "site_ids": [
        world["site"]["id"]]}, expect=201).json
    coordinator = intake.make_token(intake.org, "coordinator", sites=[world["site"]["id"]],
                                    subject=f"staff:{staff['id']}")
    got = intake.call("get", "/v1/me", coordinator, expect=200).json
    assert got["role"] == "coordinator" and got["staff"]["id"] == staff["id"] and got["staff"]["first_name"] == "Cora"
    assert got["site_ids"] == [world["site"]["id"]] and got["member"] is None
    intake.call("patch", "/v1/me", coordinator, json={"preferred_name": "C"}, expect=403)
    admin = intake.call("get", "/v1/me", expect=200).json
    assert admin["role"] == "admin" and admin["staff"] is None
    operator = intake.call("get", "/v1/me", intake.make_token(None, "operator"), expect=200).json
    assert operator["role"] == "operator" and operator["organization_id"] is None


def intake_email():
    return f"cora.{uuid.uuid4().hex[:8]}@example.org"
