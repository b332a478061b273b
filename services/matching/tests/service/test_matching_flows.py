"""The issue's "Done when" flows through the real broker and database: intake's events in (published
here as intake would), matching's events out (read from the topic)."""
import uuid

import pytest

from shared.events.intake import (LeaderCapacityChanged, LeaderDeactivated, MemberConsentChanged, MemberErased,
                                  MemberRegistered, SiteUpdated)
from shared.events.matching import MatchEnded, MatchProposed, MemberWaitlisted
from shared.messaging.envelope import new_event
from shared.mongo import connect
from shared.repository import Repository
from shared.testing import eventually
from shared.testing.commands import SentCommands

from matching.handlers import events
from matching.repository import Store
from matching.subscriptions import SUBSCRIPTIONS

pytestmark = pytest.mark.timeout(240)


def test_registration_event_leads_to_a_proposal_with_its_reasons(worker, intake, tap, expect, db):
    leader = intake.leader()
    member = intake.member()
    [proposal] = tap.wait_for(expect.of(MatchProposed, member_id=member["member_id"]), timeout=60)
    data = proposal.data
    assert data["leader_id"] == leader["leader_id"] and data["organization_id"] == intake.org
    assert 0 < data["score"] <= 100
    assert {p["part"] for p in data["breakdown"]} >= {"substances_pathway", "availability", "leader_load"}
    assert any("language" in rule for rule in data["rules_passed"])
    # 17:00-20:00 Chicago (UTC-6) vs 18:00-21:00 New York (UTC-5) = 17:00-20:00 Chicago: 3 hours a day, 15 a week.
    assert any("15 hours" in rule for rule in data["rules_passed"])
    assert db.matches.find_one({"_id": data["match_id"]})["status"] == "proposed"


def test_leader_deactivated_means_their_members_are_proposed_again(worker, intake, tap, expect, client, headers):
    best = intake.leader(substances=["alcohol", "opioids"], lived_experience_areas=["parenting", "grief"])
    member = intake.member(substances=["alcohol", "opioids"], lived_experience_topics=["parenting", "grief"])
    first = tap.wait_for(expect.of(MatchProposed, member_id=member["member_id"]), timeout=60)[0]
    assert first.data["leader_id"] == best["leader_id"]
    second = intake.leader(substances=["cannabis"], pathways=["smart"], lived_experience_areas=[])
    accepted = client.post(f"/v1/matches/{first.data['match_id']}/accept",
                           headers=headers("leader", leader_id=best["leader_id"]))
    assert accepted.status_code == 200, accepted.json
    intake.publish(LeaderDeactivated, leader_id=best["leader_id"], to_status="on_leave", reason="leave")
    ended = tap.wait_for(expect.of(MatchEnded, match_id=first.data["match_id"]), timeout=60)[0]
    assert ended.data["reason_code"] == "leader_left" and ended.data["re_proposal_follows"] is True
    again = tap.wait_for(expect.of(MatchProposed, member_id=member["member_id"], leader_id=second["leader_id"]),
                         timeout=60)[0]
    assert again.data["origin"] == "re_proposal"


def test_consent_revoked_ends_the_match_without_a_new_proposal(worker, intake, tap, expect, db):
    intake.leader()
    member = intake.member()
    proposal = tap.wait_for(expect.of(MatchProposed, member_id=member["member_id"]), timeout=60)[0]
    intake.publish(MemberConsentChanged, member_id=member["member_id"], site_id="site-1", purpose="matching",
                   granted=False, consents=[])
    ended = tap.wait_for(expect.of(MatchEnded, match_id=proposal.data["match_id"]), timeout=60)[0]
    assert ended.data["reason_code"] == "consent_revoked" and ended.data["re_proposal_follows"] is False
    assert db.matches.find_one({"_id": proposal.data["match_id"]})["status"] == "ended"
    assert len(tap.matching(expect.of(MatchProposed, member_id=member["member_id"]))) == 1


def test_waitlisted_member_is_matched_when_the_leader_gets_more_capacity(worker, intake, tap, expect, client, headers):
    leader = intake.leader(capacity=1)
    first = intake.member()
    tap.wait_for(expect.of(MatchProposed, member_id=first["member_id"]), timeout=60)
    second = intake.member()
    waiting = tap.wait_for(expect.of(MemberWaitlisted, member_id=second["member_id"]), timeout=60)[0]
    assert waiting.data["reason_codes"] == ["no_capacity"]
    assert "room for another member" in waiting.data["reason"]
    listed = client.get("/v1/waitlist", headers=headers("coordinator", sites=["site-1"]))
    assert listed.status_code == 200
    assert [w["member_id"] for w in listed.json["items"]] == [second["member_id"]]
    assert listed.json["items"][0]["reason"] == waiting.data["reason"]
    assert client.get("/v1/waitlist", headers=headers("coordinator", sites=["site-9"])).json["total"] == 0
    assert client.get("/v1/waitlist", headers=headers("leader", leader_id=leader["leader_id"])).status_code == 403
    intake.publish(LeaderCapacityChanged, leader_id=leader["leader_id"], capacity=2)
    proposal = tap.wait_for(expect.of(MatchProposed, member_id=second["member_id"]), timeout=60)[0]
    assert proposal.data["leader_id"] == leader["leader_id"] and proposal.data["origin"] == "waitlist"
    eventually(lambda: client.get("/v1/waitlist", headers=headers()).json["total"] == 0, timeout=10)


def test_waitlist_reason_names_the_missing_language(worker, intake, tap, expect):
    intake.leader(languages=["en"])
    member = intake.member(languages=["es"])
    waiting = tap.wait_for(expect.of(MemberWaitlisted, member_id=member["member_id"]), timeout=60)[0]
    assert waiting.data["reason_codes"] == ["no_shared_language"]
    assert "who speaks Spanish (es)" in waiting.data["reason"]



def registered(org_id: str, **data) -> object:
    return new_event(MemberRegistered, {
        "organization_id": org_id, "member_id": f"member-{uuid.uuid4().hex[:8]}", "site_id": "site-1",
        "status": "active", "time_zone": "America/Chicago", "languages": ["en"], "leader_gender_preference": None,
        "meeting_mode": "either", "availability": [{"day": 1, "start": "17:00", "end": "20:00"}],
        "substances": ["alcohol"], "pathways": ["12-step"], "co_occurring_mental_health": "no",
        "lived_experience_topics": [], "contact_channels": ["email"],
        "consents": [{"purpose": "matching", "expires_at": None}], **data}, source="/recoverynet/test")


HANDLERS = {declaration.type: handler for declaration, handler in SUBSCRIPTIONS.items()}


def applied_as_one_batch(settings, db, evts: list, handler=None) -> SentCommands:
    """The events applied in one transaction, as the consumer applies a batch; the reads it sent."""
    reads = SentCommands("find")
    client = connect(settings.platform.mongo_uri, event_listeners=[reads])
    try:
        def batch(uow):
            for evt in evts:
                (handler or HANDLERS[evt.type])(evt, uow)
        Repository(client, client[db.name], source="/recoverynet/matching", store=Store).transaction(batch)
    finally:
        client.close()
    return reads


def test_a_registration_reads_the_member_and_their_overrides_once(settings, db, org_id):
    """Each read is a round trip in the consumer's path: the member saved from MemberRegistered is read back
    once, and its recheck and proposal (here the waitlist: no leader yet) use that, not reads of their own;
    the member's pins and blocks are one read."""
    evt = registered(org_id)
    reads = applied_as_one_batch(settings, db, [evt], events.on_member_registered)
    assert (reads.collections.count("members"), reads.collections.count("overrides")) == (1, 1)
    assert db.waitlist.find_one({"organization_id": org_id, "member_id": evt.data["member_id"]})


def test_a_batch_of_registrations_reads_the_settings_and_sites_once_until_a_site_changes(settings, db, org_id):
    """The organization's settings and sites are read once per consumer batch, not per registration; a site
    event in the batch makes the next registration read the sites again (and see the change)."""
    site = {"organization_id": org_id, "site_id": "site-1", "name": "Main", "time_zone": "America/Chicago",
            "virtual_only": False}
    moved = new_event(SiteUpdated, {**site, "name": "Main Street"}, source="/recoverynet/test")
    reads = applied_as_one_batch(settings, db, [registered(org_id) for _ in range(3)])
    assert (reads.collections.count("org_settings"), reads.collections.count("sites")) == (1, 1)
    reads = applied_as_one_batch(settings, db, [registered(org_id), moved, registered(org_id)])
    assert (reads.collections.count("org_settings"), reads.collections.count("sites")) == (1, 2)


def test_a_registrations_consent_events_in_its_batch_read_the_member_it_saved(settings, db, org_id):
    """MemberRegistered and the consent events that repeat its consents, in one batch: the member is read once (the
    read-back of the save), and the consent events change nothing; a member erased in the batch is gone for the rest."""
    evt = registered(org_id)
    member_id = evt.data["member_id"]
    again = new_event(MemberConsentChanged, {"organization_id": org_id, "member_id": member_id, "site_id": "site-1",
                                             "purpose": "matching", "granted": True, "consents": evt.data["consents"]},
                      source="/recoverynet/test")
    reads = applied_as_one_batch(settings, db, [evt, again, again])
    assert reads.collections.count("members") == 1
    erased = new_event(MemberErased, {"organization_id": org_id, "member_id": member_id, "site_id": "site-1"},
                       source="/recoverynet/test")
    applied_as_one_batch(settings, db, [erased, again])
    assert db.members.find_one({"member_id": member_id}) is None
