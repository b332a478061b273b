"""Consents and screenings through the real API, database and broker."""
from datetime import datetime, timedelta, timezone

import pytest

from shared.events.intake import MemberConsentChanged, MemberRiskFlagged, MemberRiskResolved, ScreeningRecorded
from shared.testing import eventually

pytestmark = pytest.mark.timeout(180)


def test_revoked_consent_produces_the_event_and_the_state(intake, intake_worker, tap):
    site = intake.site()
    member = intake.member(site["id"], consents=[{"purpose": "matching"}, {"purpose": "notify:sms"}]).json
    mid = member["id"]
    r = intake.call("delete", f"/v1/members/{mid}/consents/matching", expect=200)
    consents = {c["purpose"]: c for c in r.json["consents"]}
    assert consents["matching"]["in_force"] is False and consents["matching"]["revoked_at"]
    assert consents["matching"]["revoked_by"] and consents["notify:sms"]["in_force"] is True
    revoked = tap.wait_for(lambda e: e.type == MemberConsentChanged.type and e.key == mid and not e.data["granted"])[0]
    assert revoked.data["purpose"] == "matching" and revoked.data["site_id"] == site["id"]
    assert [c["purpose"] for c in revoked.data["consents"]] == ["notify:sms"]
    # the state: not in force any more, and the history says who did what when
    listed = intake.call("get", f"/v1/members/{mid}/consents", expect=200).json
    assert {c["purpose"]: c["in_force"] for c in listed} == {"matching": False, "notify:sms": True}
    history = intake.call("get", f"/v1/members/{mid}/consent-history", expect=200).json
    assert [(h["purpose"], h["action"]) for h in history] == [
        ("matching", "granted"), ("notify:sms", "granted"), ("matching", "revoked")]
    assert all(h["by"] for h in history)
    # revoking what is not in force is a 404; a bad purpose names the field
    intake.call("delete", f"/v1/members/{mid}/consents/matching", expect=404)
    bad = intake.call("post", f"/v1/members/{mid}/consents", json={"purpose": "sell-data"}, expect=422)
    assert "purpose" in bad.json["errors"]
    past = intake.call("post", f"/v1/members/{mid}/consents",
                       json={"purpose": "notify:email", "expires_at": "2001-01-01T00:00:00Z"}, expect=422)
    assert "expires_at" in past.json["errors"]
    # consents per channel and for named programs, recorded by whom
    shared = intake.call("post", f"/v1/members/{mid}/consents",
                         json={"purpose": "share:county-drug-court", "note": "signed form"}, expect=201).json
    sharing = [c for c in shared["consents"] if c["purpose"] == "share:county-drug-court"][0]
    assert sharing["in_force"] and sharing["recorded_by"] and sharing["note"] == "signed form"
    inapp = intake.call("post", f"/v1/members/{mid}/consents", json={"purpose": "notify:in_app"}, expect=201).json
    assert "notify:inapp" in {c["purpose"] for c in inapp["consents"]}


def test_a_consent_that_expires_is_announced_as_revoked(intake, intake_worker, tap):
    site = intake.site()
    member = intake.member(site["id"]).json
    soon = (datetime.now(timezone.utc) + timedelta(seconds=2)).isoformat()
    intake.call("post", f"/v1/members/{member['id']}/consents", json={"purpose": "notify:email", "expires_at": soon},
                expect=201)
    expired = tap.wait_for(lambda e: e.type == MemberConsentChanged.type and e.key == member["id"]
                           and not e.data["granted"], timeout=30)
    assert expired[0].data["purpose"] == "notify:email" and expired[0].data["consents"] == []
    history = eventually(lambda: [h for h in intake.call("get", f"/v1/members/{member['id']}/consent-history").json
                                  if h["action"] == "expired"])
    assert history[0]["purpose"] == "notify:email"


KNOWN = [
    # instrument, answers, total, band, flagged
    ("BARC-10", [6] * 10, 60, "strong", False),
    ("BARC-10", [5, 5, 5, 5, 5, 5, 4, 4, 4, 4], 46, "moderate", False),
    ("BARC-10", [1] * 10, 10, "low", False),
    ("AUDIT-C", [0, 1, 2], 3, "low", False),
    ("AUDIT-C", [2, 2, 1], 5, "moderate", False),
    ("AUDIT-C", [4, 4, 4], 12, "severe", True),
    ("DAST-10", [0, 0, 1, 0, 0, 0, 0, 0, 0, 0], 0, "none", False),   # item 3 "yes, can stop" scores 0
    ("DAST-10", [1, 1, 0, 1, 1, 1, 1, 1, 1, 1], 10, "severe", True),
    ("DAST-10", [1, 1, 1, 1, 0, 0, 0, 0, 0, 0], 3, "moderate", False),
    ("PHQ-2", [1, 1], 2, "negative", False),
    ("PHQ-2", [2, 1], 3, "positive", True),
]


def test_screening_scores_and_bands_for_known_answer_sets_and_risk_flags(intake, intake_worker, tap):
    site = intake.site()
    mid = intake.member(site["id"]).json["id"]
    ids = []
    for instrument, answers, total, band, flagged in KNOWN:
        r = intake.call("post", f"/v1/members/{mid}/screenings", json={"instrument": instrument, "answers": answers},
                        expect=201).json
        assert (r["total"], r["band"], r["flagged"]) == (total, band, flagged), (instrument, answers, r)
        ids.append(r["id"])
    recorded = tap.wait_for(lambda e: e.type == ScreeningRecorded.type and e.key == mid, count=len(KNOWN))
    assert sorted(e.data["screening_id"] for e in recorded) == sorted(ids)
    flags = tap.wait_for(lambda e: e.type == MemberRiskFlagged.type and e.key == mid, count=3)
    reasons = sorted(e.data["reason"] for e in flags)
    assert reasons == ["AUDIT-C severe band", "DAST-10 severe band", "PHQ-2 positive screen"]
    assert all(e.data["site_id"] == site["id"] for e in flags)
    member = intake.call("get", f"/v1/members/{mid}", expect=200).json
    assert member["flags"] == ["risk"]
    flagged = intake.call("get", "/v1/members?flagged=true", expect=200).json
    assert [m["id"] for m in flagged["items"]] == [mid]
    at_site = intake.call("get", f"/v1/members?flagged=true&site_id={site['id']}&status={member['status']}", expect=200).json
    assert [m["id"] for m in at_site["items"]] == [mid]
    assert mid not in [m["id"] for m in intake.call("get", "/v1/members?flagged=false", expect=200).json["items"]]
    listed = intake.call("get", f"/v1/members/{mid}/screenings?instrument=PHQ-2", expect=200).json
    assert listed["total"] == 2
    intake.call("delete", f"/v1/members/{mid}/flags/risk", expect=200)
    assert intake.call("get", "/v1/members?flagged=true", expect=200).json["total"] == 0
    assert mid in [m["id"] for m in intake.call("get", "/v1/members?flagged=false", expect=200).json["items"]]
    resolved = tap.wait_for(lambda e: e.type == MemberRiskResolved.type and e.key == mid)[0]
    assert (resolved.data["flag"], resolved.data["site_id"]) == ("risk", site["id"])


def test_scores_come_from_answers_never_from_the_client(intake):
    site = intake.site()
    mid = intake.member(site["id"]).json["id"]
    r = intake.call("post", f"/v1/members/{mid}/screenings",
                    json={"instrument": "PHQ-2", "answers": [0, 0], "total": 6}, expect=422)
    assert "total" in r.json["errors"]
    r = intake.call("post", f"/v1/members/{mid}/screenings", json={"instrument": "BARC-10", "answers": [7] * 10},
                    expect=422)
    assert "answers" in r.json["errors"]
    r = intake.call("post", f"/v1/members/{mid}/screenings", json={"instrument": "AUDIT-C", "answers": [1, 1]},
                    expect=422)
    assert "answers" in r.json["errors"]
    r = intake.call("post", f"/v1/members/{mid}/screenings", json={"instrument": "GAD-7", "answers": [1]}, expect=422)
    assert "instrument" in r.json["errors"]


def test_plan_is_revised_with_history(intake):
    site = intake.site()
    mid = intake.member(site["id"]).json["id"]
    intake.call("get", f"/v1/members/{mid}/plan", expect=404)
    intake.call("put", f"/v1/members/{mid}/plan", json={"goal": "Sleep better", "next_steps": ["walk daily"]},
                expect=200)
    second = intake.call("put", f"/v1/members/{mid}/plan",
                         json={"goal": "Sleep and work", "next_steps": ["walk daily", "call the job centre"]},
                         expect=200).json
    assert second["revision"] == 2
    assert intake.call("get", f"/v1/members/{mid}/plan", expect=200).json["goal"] == "Sleep and work"
    history = intake.call("get", f"/v1/members/{mid}/plan/history", expect=200).json
    assert [h["revision"] for h in history] == [2, 1] and history[1]["goal"] == "Sleep better"
    assert "goal" in intake.call("put", f"/v1/members/{mid}/plan", json={"goal": ""}, expect=422).json["errors"]
