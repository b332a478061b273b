"""The member role in matching: their own match and proposal, answering it, their export; nothing else."""
import pytest

from shared.events.matching import MatchAccepted, MatchDeclined, MatchProposed

pytestmark = pytest.mark.timeout(240)


def proposed(tap, expect, member_id, **more):
    return tap.wait_for(expect.of(MatchProposed, member_id=member_id, **more), timeout=60)[-1].data


def test_member_sees_and_accepts_their_own_proposal_and_nobody_elses(worker, intake, tap, expect, client, headers):
    leader = intake.leader()
    me, other = intake.member(), intake.member()
    mine = proposed(tap, expect, me["member_id"])
    theirs = proposed(tap, expect, other["member_id"])
    member = headers("member", member_id=me["member_id"])

    state = client.get("/v1/me/match", headers=member)
    assert state.status_code == 200, state.json
    assert state.json["member_id"] == me["member_id"]
    assert state.json["match"]["id"] == mine["match_id"] and state.json["match"]["status"] == "proposed"
    assert state.json["match"]["leader_id"] == leader["leader_id"] and state.json["match"]["expires_at"]
    assert any("Shared substances" in r for r in state.json["match"]["reasons"])

    # Another member's proposal: as if it did not exist.
    assert client.get(f"/v1/matches/{theirs['match_id']}", headers=member).status_code == 404
    assert client.post(f"/v1/matches/{theirs['match_id']}/accept", headers=member).status_code == 404
    assert client.post(f"/v1/matches/{theirs['match_id']}/decline", json={"reason": "no"},
                       headers=member).status_code == 404
    listed = client.get("/v1/matches", headers=member).json
    assert [m["id"] for m in listed["items"]] == [mine["match_id"]]
    assert client.get(f"/v1/matches?member_id={other['member_id']}", headers=member).json["total"] == 0
    # Staff routes and ending a match are not the member's.
    for path in ("/v1/waitlist", "/v1/overrides", "/v1/settings", "/v1/batch-runs",
                 f"/v1/members/{me['member_id']}/proposals"):
        assert client.get(path, headers=member).status_code == 403, path
    assert client.post(f"/v1/matches/{mine['match_id']}/end", json={"reason_code": "member_choice"},
                       headers=member).status_code == 403

    accepted = client.post(f"/v1/matches/{mine['match_id']}/accept", headers=member)
    assert accepted.status_code == 200 and accepted.json["status"] == "active"
    tap.wait_for(expect.of(MatchAccepted, match_id=mine["match_id"], accepted_by_role="member"))
    assert client.get("/v1/me/match", headers=member).json["match"]["status"] == "active"
    # The other member's proposal is untouched.
    assert client.get(f"/v1/matches/{theirs['match_id']}", headers=headers()).json["status"] == "proposed"


def test_member_declines_and_the_next_best_leader_is_proposed(worker, intake, tap, expect, client, headers):
    best = intake.leader()
    next_best = intake.leader(lived_experience_areas=[])
    me = intake.member()
    first = proposed(tap, expect, me["member_id"])
    assert first["leader_id"] == best["leader_id"]
    member = headers("member", member_id=me["member_id"])
    declined = client.post(f"/v1/matches/{first['match_id']}/decline", json={"reason": "I'd like someone else"},
                           headers=member)
    assert declined.status_code == 200 and declined.json["status"] == "declined"
    tap.wait_for(expect.of(MatchDeclined, match_id=first["match_id"], declined_by_role="member"))
    second = proposed(tap, expect, me["member_id"], origin="after_decline")
    assert second["leader_id"] == next_best["leader_id"]
    assert client.get("/v1/me/match", headers=member).json["match"]["id"] == second["match_id"]


def test_member_export_holds_their_data_and_nothing_of_another_member(
        worker, intake, tap, expect, client, headers, make_token):
    intake.leader()
    me, other = intake.member(), intake.member()
    mine = proposed(tap, expect, me["member_id"])
    theirs = proposed(tap, expect, other["member_id"])
    client.post(f"/v1/matches/{mine['match_id']}/decline", json={"reason": "not now"},
                headers=headers("member", member_id=me["member_id"]))

    got = client.get("/v1/me/export", headers=headers("member", member_id=me["member_id"]))
    assert got.status_code == 200, got.json
    export = got.json
    assert export["service"] == "matching" and export["member_id"] == me["member_id"]
    assert export["member"]["id"] == me["member_id"] and export["member"]["languages"] == ["en"]
    assert mine["match_id"] in {m["id"] for m in export["matches"]}
    assert {m["member_id"] for m in export["matches"]} == {me["member_id"]}
    assert [o["kind"] for o in export["overrides"]] == ["declined"]
    assert other["member_id"] not in str(export) and theirs["match_id"] not in str(export)
    # Staff and leaders have no /me routes; another organization's member token finds nothing of this one.
    assert client.get("/v1/me/export", headers=headers()).status_code == 403
    stranger = {"Authorization": f"Bearer {make_token('org-elsewhere', 'member', member_id=me['member_id'])}"}
    assert client.get("/v1/me/export", headers=stranger).json["member"] is None
    assert client.get(f"/v1/matches/{mine['match_id']}", headers=stranger).status_code == 404
