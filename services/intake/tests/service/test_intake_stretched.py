"""A peer leader says they are stretched (issue 17): a private signal to their coordinator that pauses new
proposals to them until lifted. Through the real API, database and broker."""
import pytest

from shared.events.intake import LeaderStretched, LeaderStretchLifted, LeaderUpdated

pytestmark = pytest.mark.timeout(180)


def test_a_leader_says_they_are_stretched_and_staff_of_their_site_lift_it(intake, intake_worker, tap):
    a, b = intake.site("A"), intake.site("B")
    leader = intake.leader([a["id"]]).json
    lid = leader["id"]
    assert leader["stretched"] is None
    own = intake.make_token(intake.org, "leader", leader_id=lid, sites=[a["id"]])

    said = intake.call("put", "/v1/me/stretched", own, json={"note": "My father is in hospital this month."},
                       expect=200).json
    assert said["stretched"]["note"] == "My father is in hospital this month." and said["stretched"]["since"]
    since = said["stretched"]["since"]
    told = tap.wait_for(lambda e: e.type == LeaderStretched.type and e.key == lid)[0]
    assert told.data["site_ids"] == [a["id"]] and told.data["since"]
    snapshot = tap.wait_for(lambda e: e.type == LeaderUpdated.type and e.key == lid and e.data["stretched"])[0]
    assert snapshot.data["stretched_since"]
    # the note never leaves intake: in no event, whichever
    for event in tap.matching(lambda e: True):
        assert "hospital" not in str(event.data)

    # saying it again changes only the note (same since, no second signal)
    again = intake.call("put", "/v1/me/stretched", own, json={}, expect=200).json
    assert again["stretched"]["since"] == since and again["stretched"]["note"] is None
    # the leader reads it in /v1/me; staff of the site in the leader's record; a program (service) never the note
    intake.call("put", "/v1/me/stretched", own, json={"note": "back soon"}, expect=200)
    assert intake.call("get", "/v1/me", own, expect=200).json["leader"]["stretched"]["note"] == "back soon"
    assert intake.call("get", f"/v1/leaders/{lid}", expect=200).json["stretched"]["note"] == "back soon"
    service = intake.make_token(intake.org, "service")
    listed = intake.call("get", "/v1/leaders", service, expect=200).json["items"]
    assert [l["stretched"]["note"] for l in listed if l["id"] == lid] == [None]

    # nobody else sets it; a coordinator of another site cannot lift it; members cannot either
    intake.call("put", "/v1/me/stretched", intake.coordinator(a["id"]), json={}, expect=403)
    intake.call("delete", f"/v1/leaders/{lid}/stretched", intake.coordinator(b["id"]), expect=404)
    assert intake.call("get", f"/v1/leaders/{lid}", expect=200).json["stretched"] is not None

    # the coordinator of the leader's site lifts it: announced, audited
    lifted = intake.call("delete", f"/v1/leaders/{lid}/stretched", intake.coordinator(a["id"]), expect=200).json
    assert lifted["stretched"] is None
    done = tap.wait_for(lambda e: e.type == LeaderStretchLifted.type and e.key == lid)[0]
    assert done.data["lifted_by_role"] == "coordinator" and done.data["site_ids"] == [a["id"]]
    tap.wait_for(lambda e: e.type == LeaderUpdated.type and e.key == lid and not e.data["stretched"]
                 and e.data["stretched_since"] is None)
    # lifting what is not set changes nothing; the leader may say it again and lift it themself
    intake.call("delete", f"/v1/leaders/{lid}/stretched", intake.coordinator(a["id"]), expect=200)
    intake.call("put", "/v1/me/stretched", own, json={}, expect=200)
    assert intake.call("delete", "/v1/me/stretched", own, expect=200).json["stretched"] is None
    tap.wait_for(lambda e: e.type == LeaderStretchLifted.type and e.key == lid and e.data["lifted_by_role"] == "leader")

    audit = intake.call("get", f"/v1/audit-log?resource_id={lid}&limit=100", expect=200).json["items"]
    changes = [e.get("details", e).get("change") for e in audit if e["action"] == "update"]
    assert {"stretched", "stretched_note", "stretch_lifted"} <= set(filter(None, changes)), audit


def test_a_retired_leader_cannot_pause_and_the_note_is_bounded(intake):
    a = intake.site("A")
    leader = intake.leader([a["id"]]).json
    own = intake.make_token(intake.org, "leader", leader_id=leader["id"], sites=[a["id"]])
    intake.call("put", "/v1/me/stretched", own, json={"note": "x" * 501}, expect=422)
    intake.call("post", f"/v1/leaders/{leader['id']}/status", json={"to_status": "retired"}, expect=200)
    intake.call("put", "/v1/me/stretched", own, json={}, expect=409)
