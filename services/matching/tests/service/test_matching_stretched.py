"""A peer leader who says they are stretched (issue 17) through the real broker and database: no new
proposal to them, single or batch, while their match in force goes on; the member who waits is told why;
lifting it lets proposals resume."""
import pytest

from shared.events.intake import LeaderUpdated
from shared.events.matching import MatchEnded, MatchProposed, MemberWaitlisted
from shared.repository import read_model_key
from shared.testing import eventually

pytestmark = pytest.mark.timeout(240)


def test_a_stretched_leader_gets_nobody_new_until_it_is_lifted(worker, intake, tap, expect, client, headers, db):
    lena = intake.leader()
    first = intake.member()
    kept = tap.wait_for(expect.of(MatchProposed, member_id=first["member_id"]))[0]
    assert kept.data["leader_id"] == lena["leader_id"]

    def snapshot(stretched):
        data = {k: v for k, v in lena.items() if k != "organization_id"}
        data.update(stretched=stretched, stretched_since="2026-11-30T06:00:00+00:00" if stretched else None)
        intake.publish(LeaderUpdated, **data)
        key = read_model_key(intake.org, lena["leader_id"])
        eventually(lambda: (db.leaders.find_one({"_id": key}) or {}).get("stretched") is stretched, timeout=60)

    snapshot(True)
    second = intake.member()
    waiting = tap.wait_for(expect.of(MemberWaitlisted, member_id=second["member_id"]))[0]
    assert waiting.data["reason_codes"] == ["leaders_stretched"]
    assert "said they are stretched" in waiting.data["reason"]
    assert not tap.matching(expect.of(MatchProposed, member_id=second["member_id"]))
    # the match Lena already has goes on
    assert db.matches.find_one({"_id": kept.data["match_id"]})["status"] == "proposed"
    assert not tap.matching(expect.of(MatchEnded, match_id=kept.data["match_id"]))

    # a coordinator's candidates list says why Lena is out; a batch run does not place the member with her
    coord = headers("coordinator", sites=["site-1"])
    candidates = client.get(f"/v1/members/{second['member_id']}/proposals", headers=coord).json
    assert candidates["candidates"] == []
    assert candidates["excluded"][0]["rules_failed"] == ["the leader said they are stretched (new proposals paused)"]
    started = client.post("/v1/batch-runs", json={"site_id": "site-1"}, headers=coord)
    assert started.status_code == 202
    result = eventually(lambda: (r := client.get(started.headers["Location"], headers=coord).json)["status"] == "done"
                        and r, timeout=60)
    assert result["matched"] == 0
    assert [u["reason_codes"] for u in result["unmatched"] if u["member_id"] == second["member_id"]] == [["leaders_stretched"]]
    assert not tap.matching(expect.of(MatchProposed, member_id=second["member_id"]))

    # lifted: the waiting member is proposed to Lena
    snapshot(False)
    resumed = tap.wait_for(expect.of(MatchProposed, member_id=second["member_id"]))[0]
    assert resumed.data["leader_id"] == lena["leader_id"] and resumed.data["origin"] == "waitlist"
    assert "The leader is taking new members." in resumed.data["rules_passed"]
