"""More of the read model and lifecycle through the broker: status, transfer, erasure, certification,
new leaders for waiting members, and long waits."""
from datetime import timedelta

import pytest

from shared.events.intake import LeaderUpdated, MemberErased, MemberStatusChanged, MemberTransferred, MemberUpdated
from shared.events.matching import MatchEnded, MatchProposed, MemberWaitingTooLong, MemberWaitlisted
from shared.mongo import utcnow
from shared.repository import read_model_key
from shared.testing import eventually

pytestmark = pytest.mark.timeout(240)


def test_member_paused_ends_the_match_without_a_new_proposal(worker, intake, tap, expect):
    intake.leader()
    member = intake.member()
    proposal = tap.wait_for(expect.of(MatchProposed, member_id=member["member_id"]))[0]
    intake.publish(MemberStatusChanged, member_id=member["member_id"], site_id="site-1", from_status="active",
                   to_status="paused", reason="in treatment")
    ended = tap.wait_for(expect.of(MatchEnded, match_id=proposal.data["match_id"]))[0]
    assert ended.data["reason_code"] == "member_inactive" and ended.data["re_proposal_follows"] is False


def test_leader_losing_certification_gives_up_members_who_get_new_proposals(worker, intake, tap, expect):
    first = intake.leader()
    member = intake.member()
    proposal = tap.wait_for(expect.of(MatchProposed, member_id=member["member_id"]))[0]
    assert proposal.data["leader_id"] == first["leader_id"]
    second = intake.leader(lived_experience_areas=[])
    lapsed = {k: v for k, v in first.items()}
    lapsed["certifications"] = [{"name": "CPRS", "issuer": None, "expires_on": "2020-01-01"}]
    intake.publish(LeaderUpdated, **{k: v for k, v in lapsed.items() if k != "organization_id"})
    ended = tap.wait_for(expect.of(MatchEnded, match_id=proposal.data["match_id"]))[0]
    assert ended.data["reason_code"] == "certification_lapsed"
    again = tap.wait_for(expect.of(MatchProposed, member_id=member["member_id"], origin="re_proposal"))[0]
    assert again.data["leader_id"] == second["leader_id"]


def test_transfer_to_a_site_the_leader_cannot_serve_ends_and_re_proposes(worker, intake, tap, expect):
    intake.leader(meets_virtually=False, site_ids=["site-1"])
    there = intake.leader(meets_virtually=False, site_ids=["site-2"])
    member = intake.member(meeting_mode="in_person")
    proposal = tap.wait_for(expect.of(MatchProposed, member_id=member["member_id"]))[0]
    intake.publish(MemberTransferred, member_id=member["member_id"], from_site_id="site-1", to_site_id="site-2",
                   time_zone="America/Chicago")
    ended = tap.wait_for(expect.of(MatchEnded, match_id=proposal.data["match_id"]))[0]
    assert ended.data["reason_code"] == "member_inactive" and ended.data["re_proposal_follows"] is True
    again = tap.wait_for(expect.of(MatchProposed, member_id=member["member_id"], site_id="site-2"))[0]
    assert again.data["leader_id"] == there["leader_id"]


def test_erasure_ends_the_match_and_forgets_the_member(worker, intake, tap, expect, db):
    intake.leader()
    member = intake.member()
    proposal = tap.wait_for(expect.of(MatchProposed, member_id=member["member_id"]))[0]
    intake.publish(MemberErased, member_id=member["member_id"], site_id="site-1")
    ended = tap.wait_for(expect.of(MatchEnded, match_id=proposal.data["match_id"]))[0]
    assert ended.data["reason_code"] == "member_erased"
    eventually(lambda: db.members.find_one({"_id": read_model_key(intake.org, member["member_id"])}) is None, timeout=30)
    assert db.matches.find_one({"_id": proposal.data["match_id"]})["member_erased"] is True


def test_a_new_leader_takes_a_waiting_member_and_an_updated_profile_is_rechecked(worker, intake, tap, expect):
    member = intake.member(languages=["es"])
    tap.wait_for(expect.of(MemberWaitlisted, member_id=member["member_id"]))
    intake.leader(languages=["en"])
    # Still nobody: the member now speaks English too (a full snapshot update) and is proposed.
    data = {k: v for k, v in member.items() if k != "organization_id"}
    data["languages"] = ["es", "en"]
    intake.publish(MemberUpdated, **data)
    tap.wait_for(expect.of(MatchProposed, member_id=member["member_id"], origin="new"))
    other = intake.member(languages=["pt"])
    tap.wait_for(expect.of(MemberWaitlisted, member_id=other["member_id"]))
    portuguese = intake.leader(languages=["pt"], wait=False)
    proposal = tap.wait_for(expect.of(MatchProposed, member_id=other["member_id"]))[0]
    assert proposal.data["leader_id"] == portuguese["leader_id"] and proposal.data["origin"] == "waitlist"


def test_a_long_wait_is_reported_once(worker, intake, tap, expect, db):
    member = intake.member(languages=["fr"])
    tap.wait_for(expect.of(MemberWaitlisted, member_id=member["member_id"]))
    db.waitlist.update_one({"_id": read_model_key(intake.org, member["member_id"])},
                           {"$set": {"since": utcnow() - timedelta(days=20)}})
    alert = tap.wait_for(expect.of(MemberWaitingTooLong, member_id=member["member_id"]), timeout=30)[0]
    assert alert.data["days_waiting"] >= 20 and alert.data["reason"] == "No active leader."
    eventually(lambda: db.waitlist.find_one({"_id": read_model_key(intake.org, member["member_id"])})["alerted_at"], timeout=10)
    assert len(tap.matching(expect.of(MemberWaitingTooLong, member_id=member["member_id"]))) == 1


def test_matching_consent_running_out_ends_the_match(worker, intake, tap, expect):
    intake.leader()
    expires = (utcnow() + timedelta(seconds=6)).isoformat()
    member = intake.member(consents=[{"purpose": "matching", "expires_at": expires}])
    proposal = tap.wait_for(expect.of(MatchProposed, member_id=member["member_id"]))[0]
    ended = tap.wait_for(expect.of(MatchEnded, match_id=proposal.data["match_id"]), timeout=40)[0]
    assert ended.data["reason_code"] == "consent_revoked" and ended.data["re_proposal_follows"] is False


def test_a_certification_expiring_with_time_ends_the_leaders_matches(worker, intake, tap, expect, db):
    from datetime import datetime, timezone

    from matching.handlers import jobs as handlers

    expiring = intake.leader(certifications=[{"name": "CPRS", "issuer": None, "expires_on": "2029-06-01"}])
    member = intake.member()
    proposal = tap.wait_for(expect.of(MatchProposed, member_id=member["member_id"]))[0]
    assert proposal.data["leader_id"] == expiring["leader_id"]
    handlers.end_lapsed(db.client, db, now=datetime(2029, 6, 2, 12, tzinfo=timezone.utc))
    ended = tap.wait_for(expect.of(MatchEnded, match_id=proposal.data["match_id"]))[0]
    assert ended.data["reason_code"] == "certification_lapsed" and ended.data["re_proposal_follows"] is True
