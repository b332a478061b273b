"""Several members (or peer leaders) in one call, ``GET /v1/members?ids=a&ids=b`` (issue 16, "Fast": the console
names the people a page shows with one call instead of one per person): scoped exactly as the list is,
bounded, audited as reads (one entry per lookup, naming every member it answered), documented."""
from urllib.parse import urlencode

import pytest

pytestmark = pytest.mark.timeout(180)


def _ids(*ids, **extra):
    return urlencode([("ids", i) for i in ids] + list(extra.items()))


def test_members_by_ids_are_scoped_like_the_list_and_each_answer_is_an_audited_read(intake, intake_factory):
    a, b = intake.site("A"), intake.site("B")
    at_a = intake.member(a["id"], first_name="Ana").json
    at_b = intake.member(b["id"], first_name="Bo").json
    gone = intake.member(a["id"], first_name="Cy").json
    intake.call("post", f"/v1/members/{gone['id']}/erasure", json={"reason": "asked to be forgotten"}, expect=200)
    other = intake_factory()
    elsewhere = other.member(other.site()["id"]).json
    asked = [at_a["id"], at_b["id"], gone["id"], elsewhere["id"], "mem_nobody"]

    # the admin: every member of the organization asked for, none of another organization, no erased one
    found = intake.call("get", f"/v1/members?{_ids(*asked, limit=100)}", expect=200).json
    assert sorted(m["id"] for m in found["items"]) == sorted([at_a["id"], at_b["id"]]) and found["total"] == 2
    # the same record as reading it alone
    alone = intake.call("get", f"/v1/members/{at_a['id']}", expect=200).json
    assert next(m for m in found["items"] if m["id"] == at_a["id"]) == alone

    # a coordinator of A: only A's member, as the list and GET /v1/members/{id} would say
    coord_a = intake.coordinator(a["id"])
    mine = intake.call("get", f"/v1/members?{_ids(*asked)}", coord_a, expect=200).json
    assert [m["id"] for m in mine["items"]] == [at_a["id"]] and mine["total"] == 1
    # combined with the list's filters (and then nothing outside them)
    assert intake.call("get", f"/v1/members?{_ids(*asked, site_id=b['id'])}", coord_a, expect=200).json["items"] == []
    assert intake.call("get", f"/v1/members?{_ids(*asked, status='discharged')}", expect=200).json["total"] == 0
    # another organization's admin asking for the same ids: only their own member
    assert [m["id"] for m in other.call("get", f"/v1/members?{_ids(*asked)}", expect=200).json["items"]] == [elsewhere["id"]]
    # a peer leader may not read member records, by ids or otherwise
    leader = intake.make_token(intake.org, "leader", leader_id="ldr_x")
    intake.call("get", f"/v1/members?{_ids(at_a['id'])}", leader, expect=403)

    # each member answered was read: the coordinator's lookup is in A's member's audit trail, not in B's
    def reads(member_id):
        entries = intake.call("get", f"/v1/audit-log?resource_id={member_id}&action=read&limit=200", expect=200).json
        return [e for e in entries["items"] if (e.get("details") or {}).get("via") == "ids"]
    assert any(e["actor_role"] == "coordinator" for e in reads(at_a["id"]))
    assert not any(e["actor_role"] == "coordinator" for e in reads(at_b["id"]))
    assert len([e for e in reads(at_b["id"]) if e["actor_role"] == "admin"]) == 1
    # one entry per lookup, naming every member it answered (found by any of them)
    [by_admin] = [e for e in reads(at_a["id"]) if e["actor_role"] == "admin"]
    assert by_admin["resource_id"] is None and sorted(by_admin["resource_ids"]) == sorted([at_a["id"], at_b["id"]])
    assert by_admin in reads(at_b["id"])
    [by_coordinator] = [e for e in reads(at_a["id"]) if e["actor_role"] == "coordinator"]
    assert by_coordinator["resource_ids"] == [at_a["id"]]


def test_at_most_100_ids_at_a_time_and_each_a_short_id(intake):
    site = intake.site()
    member = intake.member(site["id"]).json
    hundred = [member["id"]] + [f"mem_{n:020d}" for n in range(99)]
    ok = intake.call("get", f"/v1/members?{_ids(*hundred, limit=100)}", expect=200).json
    assert [m["id"] for m in ok["items"]] == [member["id"]]
    too_many = intake.call("get", f"/v1/members?{_ids(*hundred, 'mem_one_more')}", expect=422)
    assert too_many.headers["Content-Type"] == "application/problem+json"
    assert set(too_many.json["errors"]) == {"ids"} and "100" in str(too_many.json["errors"]["ids"])
    assert "ids" in intake.call("get", f"/v1/members?{_ids('x' * 65)}", expect=422).json["errors"]
    assert "ids" in intake.call("get", f"/v1/leaders?{_ids(*hundred, 'ldr_one_more')}", expect=422).json["errors"]


def test_leaders_by_ids_are_scoped_like_the_list(intake, intake_factory):
    a, b = intake.site("A"), intake.site("B")
    at_a = intake.leader([a["id"]], first_name="Lena").json
    at_b = intake.leader([b["id"]], first_name="Omar").json
    other = intake_factory()
    elsewhere = other.leader([other.site()["id"]]).json
    asked = [at_a["id"], at_b["id"], elsewhere["id"], "ldr_nobody"]
    found = intake.call("get", f"/v1/leaders?{_ids(*asked)}", expect=200).json
    assert sorted(l["id"] for l in found["items"]) == sorted([at_a["id"], at_b["id"]])
    assert next(l for l in found["items"] if l["id"] == at_b["id"]) == intake.call(
        "get", f"/v1/leaders/{at_b['id']}", expect=200).json
    coord_a = intake.coordinator(a["id"])
    assert [l["id"] for l in intake.call("get", f"/v1/leaders?{_ids(*asked)}", coord_a, expect=200).json["items"]] == [at_a["id"]]
    # a peer leader sees only themself, and only when they are among the ids
    lena = intake.make_token(intake.org, "leader", leader_id=at_a["id"], sites=[a["id"]])
    assert [l["id"] for l in intake.call("get", f"/v1/leaders?{_ids(*asked)}", lena, expect=200).json["items"]] == [at_a["id"]]
    assert intake.call("get", f"/v1/leaders?{_ids(at_b['id'])}", lena, expect=200).json == {
        "items": [], "total": 0, "limit": 50, "offset": 0}


def test_the_openapi_documents_ids_with_its_bound(intake):
    spec = intake.http.get("/openapi.json").json
    for path in ("/v1/members", "/v1/leaders"):
        ids = next(p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "ids")
        assert ids["in"] == "query" and ids["schema"]["type"] == "array" and ids["schema"]["maxItems"] == 100
        assert ids["schema"]["items"]["maxLength"] == 64 and ids.get("explode", True) is True
        assert "outside the caller's scope" in ids["description"]
