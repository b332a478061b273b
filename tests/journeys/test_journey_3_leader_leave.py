"""Journey 3: a leader goes on leave: their members are re-proposed to others, and told."""
import pytest


@pytest.mark.timeout(180)
def test_journey_3_leader_on_leave_members_re_proposed_and_told(new_org, helpers):
    org = new_org("journey 3 leader leave")
    site = org.site("Hillcrest", "America/Denver")
    lou = org.leader("Lou", [site["id"]], capacity=3)
    members = [org.member(name, site["id"]) for name in ("Quinn", "Rosa")]

    matches = {}
    for member in members:
        proposed = org.wait_event("match.proposed", member_id=member["id"])[0]
        assert proposed.data["leader_id"] == lou["id"]
        matches[member["id"]] = proposed.data["match_id"]
        org.leader_client("matching", lou["id"]).post(f"/v1/matches/{proposed.data['match_id']}/accept").expect(200)
    for member in members:
        org.wait_event("match.activated", member_id=member["id"])

    # two colleagues join while Lou's members are in good hands
    kim = org.leader("Kim", [site["id"]], capacity=1)
    raj = org.leader("Raj", [site["id"]], capacity=1)
    # (matching learns of them from intake's events: wait until it weighs them for Lou's members)
    def matching_knows_them():
        seen = org.matching.get(f"/v1/members/{members[0]['id']}/proposals", params={"limit": 50}).expect(200)
        known = {c["leader_id"] for c in seen["candidates"]} | {x["leader_id"] for x in seen["excluded"]}
        assert {kim["id"], raj["id"]} <= known, seen
        return True
    helpers.eventually(matching_knows_them, timeout=30)

    org.intake.post(f"/v1/leaders/{lou['id']}/status", json={"to_status": "on_leave", "reason": "family leave"}).expect(200)

    # each member's match ends because the leader left, and a new leader is proposed
    new_leaders = set()
    for member in members:
        ended = org.wait_event("match.ended", member_id=member["id"])[0].data
        assert ended["match_id"] == matches[member["id"]]
        assert ended["reason_code"] == "leader_left" and ended["re_proposal_follows"] is True
        again = org.wait_event("match.proposed", member_id=member["id"], count=2)[-1].data
        assert again["origin"] == "re_proposal" and again["leader_id"] in (kim["id"], raj["id"])
        new_leaders.add(again["leader_id"])
        current = org.matching.get("/v1/matches", params={"member_id": member["id"], "status": "proposed"}).expect(200)
        assert [m["leader_id"] for m in current["items"]] == [again["leader_id"]]
    assert new_leaders == {kim["id"], raj["id"]}, "one place each: both colleagues take one member"

    # ... and told: the member that the match ended and who is proposed; Lou that it ended; the new leader
    for member in members:
        org.wait_mail(member["email"], lambda m: m["subject"] == "Your peer support match has ended")
        org.wait_mail(member["email"], lambda m: m["subject"] == "We found a peer leader for you", count=2)
    org.wait_mail(lou["email"], lambda m: m["subject"] == "Your peer support match has ended", count=2)
    for leader in (kim, raj):
        org.wait_mail(leader["email"], lambda m: m["subject"] == "A new member was proposed to you")
    # a leader on leave gets no new proposals
    assert not org.matching.get("/v1/matches", params={"leader_id": lou["id"], "status": "proposed"}).expect(200)["items"]
