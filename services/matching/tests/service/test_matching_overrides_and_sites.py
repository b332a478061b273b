"""Issue 13 in matching: a batch run's site is validated and scoped; pins and blocks can be lifted (audited,
scoped) and cannot contradict each other; reasons name a site by its name, with the id in its own field."""
import uuid

import pytest

from shared.events.intake import SiteCreated
from shared.events.matching import MatchEnded, MatchProposed, MemberWaitlisted
from shared.repository import read_model_key
from shared.testing import eventually

pytestmark = pytest.mark.timeout(240)


def _site(intake, db, org=None, name=None, **kw):
    """Publish intake's SiteCreated and wait until matching's read model has the site."""
    site_id = f"site_{uuid.uuid4().hex[:20]}"
    org = org or intake.org
    data = {"organization_id": org, "site_id": site_id, "name": name or f"Riverside {uuid.uuid4().hex[:6]}",
            "time_zone": "America/New_York", "virtual_only": False, **kw}
    intake.publish(SiteCreated, **data)
    eventually(lambda: db.sites.find_one({"_id": read_model_key(org, site_id), "name": data["name"]}), timeout=60)
    return data


def _runs(db, org):
    return db.batch_runs.count_documents({"organization_id": org})


def test_a_batch_runs_site_must_be_an_id_of_the_callers_organization_and_sites(worker, intake, client, headers, db,
                                                                               make_token):
    site = _site(intake, db)["site_id"]
    elsewhere = _site(intake, db, org=f"org-elsewhere-{uuid.uuid4().hex[:8]}")["site_id"]
    admin = headers()
    for bad in ({"$gt": ""}, "../..", "site\u0000x", "", 42, ["site-1"], "site-1\n"):
        refused = client.post("/v1/batch-runs", json={"site_id": bad}, headers=admin)
        assert refused.status_code == 422, (bad, refused.json)
        assert refused.content_type == "application/problem+json" and "site_id" in refused.json["errors"]
    # another organization's real site, a made-up one: 404, as if unknown
    for unknown in (elsewhere, f"site_{uuid.uuid4().hex[:20]}"):
        refused = client.post("/v1/batch-runs", json={"site_id": unknown}, headers=admin)
        assert refused.status_code == 404 and refused.content_type == "application/problem+json", refused.json
    # a coordinator of another site of the same organization: 404 too (not one of theirs)
    other_coord = headers("coordinator", sites=["site-elsewhere"])
    assert client.post("/v1/batch-runs", json={"site_id": site}, headers=other_coord).status_code == 404
    # the organization's admin of the other organization, naming our site: 404
    stranger = {"Authorization": f"Bearer {make_token('org-elsewhere', 'admin')}"}
    assert client.post("/v1/batch-runs", json={"site_id": site}, headers=stranger).status_code == 404
    assert _runs(db, intake.org) == 0
    # the site's coordinator and the admin may
    coord = headers("coordinator", sites=[site])
    assert client.post("/v1/batch-runs", json={"site_id": site}, headers=coord).status_code == 202
    assert client.post("/v1/batch-runs", json={"site_id": site}, headers=admin).status_code == 202
    assert client.post("/v1/batch-runs", json={}, headers=admin).status_code == 202
    assert _runs(db, intake.org) == 3


def test_a_block_is_lifted_audited_scoped_and_pin_and_block_cannot_contradict(worker, intake, tap, expect, client,
                                                                                headers, db, make_token):
    best = intake.leader()
    other = intake.leader(lived_experience_areas=[])
    member = intake.member()
    mid = member["member_id"]
    first = tap.wait_for(expect.of(MatchProposed, member_id=mid))[-1].data
    assert first["leader_id"] == best["leader_id"]
    coord = headers("coordinator", sites=["site-1"])
    block = client.post("/v1/overrides", json={"member_id": mid, "leader_id": other["leader_id"], "kind": "block",
                                               "reason": "conflict of interest"}, headers=coord)
    assert block.status_code == 201, block.json
    block_id = block.json["id"]

    # pinning the leader the member has blocked: 409 naming the block
    pin = client.post("/v1/overrides", json={"member_id": mid, "leader_id": other["leader_id"], "kind": "pin",
                                             "reason": "knows the family"}, headers=coord)
    assert pin.status_code == 409 and pin.content_type == "application/problem+json", pin.json
    assert block_id in pin.json["detail"] and pin.json["existing"]["id"] == block_id
    assert pin.json["existing"]["kind"] == "block"

    # lifting: another organization's admin and a coordinator of another site get 404, as for an unknown id
    stranger = {"Authorization": f"Bearer {make_token('org-elsewhere', 'admin')}"}
    assert client.delete(f"/v1/overrides/{block_id}", headers=stranger).status_code == 404
    assert client.delete(f"/v1/overrides/{block_id}", headers=headers("coordinator", sites=["site-9"])).status_code == 404
    assert client.delete(f"/v1/overrides/{block_id}",
                         headers=headers("leader", leader_id=other["leader_id"])).status_code == 403
    assert client.delete(f"/v1/overrides/{uuid.uuid4()}", headers=coord).status_code == 404
    lifted = client.delete(f"/v1/overrides/{block_id}", headers=coord)
    assert lifted.status_code == 204, lifted.get_data(as_text=True)
    assert client.delete(f"/v1/overrides/{block_id}", headers=coord).status_code == 404   # already lifted
    listed = client.get(f"/v1/overrides?member_id={mid}", headers=coord).json["items"]
    assert block_id not in [o["id"] for o in listed]
    entry = db.audit_log.find_one({"organization_id": intake.org, "resource_id": mid,
                                   "details.override_id": block_id})
    assert entry and entry["action"] == "update" and entry["details"]["change"] == "lift_block"
    assert entry["actor_role"] == "coordinator"
    stored = db.overrides.find_one({"_id": block_id})
    assert stored["active"] is False and stored["lifted_by_role"] == "coordinator" and stored["lifted_at"]

    # now the pin goes through; blocking the pinned leader is the other contradiction
    pin = client.post("/v1/overrides", json={"member_id": mid, "leader_id": other["leader_id"], "kind": "pin",
                                             "reason": "knows the family"}, headers=coord)
    assert pin.status_code == 201, pin.json
    tap.wait_for(expect.of(MatchProposed, member_id=mid, leader_id=other["leader_id"], origin="pinned"))
    block = client.post("/v1/overrides", json={"member_id": mid, "leader_id": other["leader_id"], "kind": "block",
                                               "reason": "changed my mind"}, headers=coord)
    assert block.status_code == 409 and block.json["existing"]["id"] == pin.json["id"]
    assert pin.json["id"] in block.json["detail"] and block.json["existing"]["kind"] == "pin"
    assert client.delete(f"/v1/overrides/{pin.json['id']}", headers=headers()).status_code == 204
    assert db.audit_log.find_one({"organization_id": intake.org, "details.override_id": pin.json["id"],
                                  "details.change": "lift_pin", "actor_role": "admin"})


def test_lifting_a_block_makes_the_leader_eligible_again_for_a_waiting_member(worker, intake, tap, expect, client,
                                                                               headers, db):
    only = intake.leader()
    member = intake.member()
    mid = member["member_id"]
    first = tap.wait_for(expect.of(MatchProposed, member_id=mid))[-1].data
    assert first["leader_id"] == only["leader_id"]
    block = client.post("/v1/overrides", json={"member_id": mid, "leader_id": only["leader_id"], "kind": "block",
                                               "reason": "conflict of interest"}, headers=headers())
    assert block.status_code == 201
    tap.wait_for(expect.of(MatchEnded, match_id=first["match_id"]))
    waiting = tap.wait_for(expect.of(MemberWaitlisted, member_id=mid))[-1].data
    assert waiting["reason_codes"] == ["all_excluded"]
    assert client.delete(f"/v1/overrides/{block.json['id']}", headers=headers()).status_code == 204
    again = tap.wait_for(expect.of(MatchProposed, member_id=mid, origin="waitlist"))[-1].data
    assert again["leader_id"] == only["leader_id"]
    assert db.waitlist.find_one({"_id": read_model_key(intake.org, mid)}) is None


def test_waitlist_and_batch_run_reasons_name_the_site_by_its_name(worker, intake, tap, expect, client, headers, db):
    site = _site(intake, db, name=f"Riverside Hall {uuid.uuid4().hex[:4]}")
    intake.leader(site_ids=["somewhere-else"], meets_virtually=False)
    member = intake.member(site_id=site["site_id"], meeting_mode="in_person")
    mid = member["member_id"]
    event = tap.wait_for(expect.of(MemberWaitlisted, member_id=mid))[-1].data
    assert site["name"] in event["reason"] and site["site_id"] not in event["reason"]
    listed = client.get(f"/v1/waitlist?site_id={site['site_id']}", headers=headers()).json["items"]
    [entry] = [i for i in listed if i["member_id"] == mid]
    assert entry["reason_codes"] == ["no_leader_at_site"]
    assert f"at site {site['name']}" in entry["reason"] and site["site_id"] not in entry["reason"]
    assert entry["site_id"] == site["site_id"]
    started = client.post("/v1/batch-runs", json={"site_id": site["site_id"]}, headers=headers())
    assert started.status_code == 202, started.json
    run = eventually(lambda: (r := client.get(started.headers["Location"], headers=headers()).json)["status"] == "done"
                     and r, timeout=60)
    [unmatched] = run["unmatched"]
    assert unmatched["member_id"] == mid and unmatched["site_id"] == site["site_id"]
    assert site["name"] in unmatched["reason"] and site["site_id"] not in unmatched["reason"]
