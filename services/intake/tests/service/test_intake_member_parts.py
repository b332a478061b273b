"""A member's page in one call, and lists cut to what a page shows (issue 16, "Fast"): ``GET
/v1/members/{id}?include=...`` answers the member with the parts that have their own lists (screenings, consent
history, plan history), exactly as those lists answer, in one read audited once; ``GET /v1/members?fields=...``
answers only the fields named (and the id). Both through the real API and database."""
from urllib.parse import urlencode

import pytest

pytestmark = pytest.mark.timeout(180)

PARTS = ("screenings", "consent_history", "plan_history")


def _reads_of(intake, member_id):
    return intake.call("get", f"/v1/audit-log?resource_id={member_id}&action=read&limit=200", expect=200).json["items"]


def test_a_member_with_its_parts_is_what_the_parts_answer_alone_in_one_audited_read(intake):
    site = intake.site()
    mid = intake.member(site["id"], consents=[{"purpose": "matching"}, {"purpose": "notify:email"}]).json["id"]
    intake.call("post", f"/v1/members/{mid}/screenings", json={"instrument": "BARC-10", "answers": [4] * 10}, expect=201)
    intake.call("post", f"/v1/members/{mid}/screenings", json={"instrument": "PHQ-2", "answers": [0, 1]}, expect=201)
    intake.call("put", f"/v1/members/{mid}/plan", json={"goal": "Sleep better", "next_steps": ["walk daily"]}, expect=200)
    intake.call("put", f"/v1/members/{mid}/plan", json={"goal": "Sleep and work"}, expect=200)
    intake.call("delete", f"/v1/members/{mid}/consents/matching", expect=200)

    plain = intake.call("get", f"/v1/members/{mid}", expect=200)
    before = len(_reads_of(intake, mid))
    whole = intake.call("get", f"/v1/members/{mid}?{urlencode([('include', p) for p in PARTS])}", expect=200)
    # one read, audited once, naming what it included
    reads = _reads_of(intake, mid)
    assert len(reads) == before + 1
    newest = max(reads, key=lambda e: e["at"])
    assert newest["resource_type"] == "member" and newest["details"]["included"] == sorted(PARTS)

    member = dict(whole.json)
    included = member.pop("included")
    assert member == plain.json and whole.headers["ETag"] == plain.headers["ETag"]
    assert included["screenings"] == intake.call("get", f"/v1/members/{mid}/screenings?limit=200", expect=200).json
    assert [s["instrument"] for s in included["screenings"]["items"]] == ["PHQ-2", "BARC-10"]   # newest first
    assert included["consent_history"] == intake.call("get", f"/v1/members/{mid}/consent-history", expect=200).json
    assert [e["action"] for e in included["consent_history"] if e["purpose"] == "matching"] == ["granted", "revoked"]
    assert included["plan_history"] == intake.call("get", f"/v1/members/{mid}/plan/history", expect=200).json
    assert [p["revision"] for p in included["plan_history"]] == [2, 1]

    # only what was asked for; without include, no "included" at all
    one = intake.call("get", f"/v1/members/{mid}?include=plan_history", expect=200).json
    assert set(one["included"]) == {"plan_history"} and "included" not in plain.json
    # a member's ETag still answers 304 without include, never with it (its parts may have changed)
    etag = plain.headers["ETag"]
    intake.call("get", f"/v1/members/{mid}", headers={"If-None-Match": etag}, expect=304)
    intake.call("get", f"/v1/members/{mid}?include=screenings", headers={"If-None-Match": etag}, expect=200)


def test_include_is_scoped_and_checked_as_the_member_is(intake):
    a, b = intake.site("A"), intake.site("B")
    at_b = intake.member(b["id"]).json["id"]
    coord_a = intake.coordinator(a["id"])
    intake.call("get", f"/v1/members/{at_b}?include=screenings", coord_a, expect=404)
    bad = intake.call("get", f"/v1/members/{at_b}?include=screenings&include=everything", expect=422)
    assert bad.headers["Content-Type"] == "application/problem+json" and set(bad.json["errors"]) == {"include"}
    gone = intake.member(a["id"]).json["id"]
    intake.call("post", f"/v1/members/{gone}/erasure", json={"reason": "asked to be forgotten"}, expect=200)
    intake.call("get", f"/v1/members/{gone}?include=consent_history", expect=410)


def test_a_list_answers_only_the_fields_named_and_the_id(intake):
    a, b = intake.site("A"), intake.site("B")
    ana = intake.member(a["id"], first_name="Ana").json
    intake.member(b["id"], first_name="Bo")
    named = ("first_name", "last_name", "status", "site_id", "date_of_birth", "consents", "flags", "languages", "plan")
    cut = intake.call("get", f"/v1/members?{urlencode([('fields', f) for f in named])}", expect=200).json
    full = intake.call("get", "/v1/members", expect=200).json
    assert cut["total"] == full["total"] == 2
    assert [set(m) for m in cut["items"]] == [{"id", *named}] * 2
    assert [{k: m[k] for k in ("id", *named)} for m in full["items"]] == cut["items"]
    assert next(m for m in cut["items"] if m["id"] == ana["id"])["first_name"] == "Ana"
    # with the lookup by ids and a coordinator's scope, as the list is
    coord_a = intake.coordinator(a["id"])
    mine = intake.call("get", f"/v1/members?fields=first_name&ids={ana['id']}", coord_a, expect=200).json
    assert mine["items"] == [{"id": ana["id"], "first_name": "Ana"}]
    # a field a member does not have is refused, naming the parameter
    bad = intake.call("get", "/v1/members?fields=first_name&fields=password", expect=422)
    assert bad.headers["Content-Type"] == "application/problem+json" and set(bad.json["errors"]) == {"fields"}


def test_a_leaders_list_answers_only_the_fields_named_and_the_id(intake):
    a, b = intake.site("A"), intake.site("B")
    sam = intake.leader([a["id"]], first_name="Sam").json
    intake.leader([b["id"]], first_name="Kai")
    named = ("first_name", "last_name", "preferred_name", "site_ids", "certifications", "certifications_current")
    cut = intake.call("get", f"/v1/leaders?{urlencode([('fields', f) for f in named])}", expect=200).json
    full = intake.call("get", "/v1/leaders", expect=200).json
    assert cut["total"] == full["total"] == 2
    assert [set(m) for m in cut["items"]] == [{"id", *named}] * 2
    assert [{k: m[k] for k in ("id", *named)} for m in full["items"]] == cut["items"]
    # with the lookup by ids and a coordinator's scope, as the list is
    coord_a = intake.coordinator(a["id"])
    mine = intake.call("get", f"/v1/leaders?fields=first_name&ids={sam['id']}", coord_a, expect=200).json
    assert mine["items"] == [{"id": sam["id"], "first_name": "Sam"}]
    bad = intake.call("get", "/v1/leaders?fields=first_name&fields=password", expect=422)
    assert bad.headers["Content-Type"] == "application/problem+json" and set(bad.json["errors"]) == {"fields"}
