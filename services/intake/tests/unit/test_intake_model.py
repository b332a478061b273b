"""Intake's domain rules without servers."""
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from intake import model
from shared.errors import Conflict, Invalid, NotFound

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("instrument,answers,total,band,flagged", [
    ("BARC-10", [6] * 10, 60, "strong", False),
    ("BARC-10", [5] * 9 + [2], 47, "strong", False),
    ("BARC-10", [4] * 10, 40, "moderate", False),
    ("BARC-10", [2] * 10, 20, "low", False),
    ("AUDIT-C", [0, 0, 0], 0, "low", False),
    ("AUDIT-C", [2, 1, 1], 4, "moderate", False),
    ("AUDIT-C", [3, 2, 2], 7, "high", False),
    ("AUDIT-C", [4, 2, 2], 8, "severe", True),
    ("DAST-10", [0] * 10, 1, "low", False),           # "no, I cannot always stop" scores 1 on item 3
    ("DAST-10", [0, 0, 1] + [0] * 7, 0, "none", False),
    ("DAST-10", [1, 1, 0, 1, 1, 1, 0, 0, 0, 0], 6, "substantial", False),
    ("DAST-10", [1, 1, 0, 1, 1, 1, 1, 1, 1, 0], 9, "severe", True),
    ("PHQ-2", [0, 2], 2, "negative", False),
    ("PHQ-2", [3, 0], 3, "positive", True),
    ("PHQ-2", [3, 3], 6, "positive", True),
])
def test_screening_scores_and_bands(instrument, answers, total, band, flagged):
    scored = model.score_screening(instrument, answers)
    assert (scored["total"], scored["band"], scored["flagged"]) == (total, band, flagged)
    assert (scored["reason"] is not None) == flagged


@pytest.mark.parametrize("instrument,answers", [
    ("BARC-10", [0] * 10), ("BARC-10", [3] * 9), ("AUDIT-C", [5, 0, 0]), ("DAST-10", [2] + [0] * 9),
    ("PHQ-2", [1]), ("PHQ-2", ["a", 1]), ("PHQ-2", None), ("K-6", [1]),
])
def test_bad_screening_answers_are_refused_naming_the_field(instrument, answers):
    with pytest.raises(Invalid) as exc:
        model.score_screening(instrument, answers)
    assert set(exc.value.errors) <= {"answers", "instrument"}


def test_person_normalization():
    out = model.normalize_person({"email": "Ana.Silva@Example.ORG", "phone": "+44 7911 123456",
                                  "languages": ["pt-BR", "en", "en"], "contact_channels": ["in_app", "email"],
                                  "availability": [{"day": 3, "start": "09:00", "end": "24:00"},
                                                   {"day": 1, "start": "18:00", "end": "19:30"}],
                                  "time_zone": "Asia/Kolkata", "date_of_birth": date(2000, 1, 1)},
                                 today=date(2026, 1, 1), allows_youth=False)
    assert out["email"] == "Ana.Silva@example.org" and model.email_key(out["email"]) == "ana.silva@example.org"
    assert out["phone"] == "+447911123456"
    assert out["languages"] == ["pt-BR", "en"] and out["contact_channels"] == ["inapp", "email"]
    assert [w["day"] for w in out["availability"]] == [1, 3]


def test_person_validation_collects_every_field():
    with pytest.raises(Invalid) as exc:
        model.normalize_person({"email": "a@b", "phone": "0123", "time_zone": "Europe/Atlantis",
                                "date_of_birth": date(2010, 1, 1), "languages": ["???"],
                                "availability": [{"day": 1, "start": "10:00", "end": "09:00"}],
                                "contact_channels": ["pigeon"], "pathways": ["x"], "preferred_language": "klingon!"},
                               today=date(2026, 1, 1), allows_youth=False)
    assert set(exc.value.errors) == {"email", "phone", "time_zone", "date_of_birth", "languages", "availability",
                                     "contact_channels", "pathways", "preferred_language"}
    with pytest.raises(Invalid) as exc:
        model.normalize_person({"first_name": "A"}, today=date(2026, 1, 1), allows_youth=False)
    assert "email" in exc.value.errors


def test_adults_only_unless_youth_allowed():
    today = date(2026, 6, 1)
    model.check_date_of_birth(date(2008, 6, 1), today, allows_youth=False)  # 18 today
    with pytest.raises(Invalid):
        model.check_date_of_birth(date(2008, 6, 2), today, allows_youth=False)
    model.check_date_of_birth(date(2014, 1, 1), today, allows_youth=True)
    with pytest.raises(Invalid):
        model.check_date_of_birth(date(2027, 1, 1), today, allows_youth=True)


def test_consents_grant_revoke_expire():
    consents = model.grant_consent({}, "matching", by="admin:1", at=NOW, expires_at=None)
    consents = model.grant_consent(consents, "notify:sms", by="admin:1", at=NOW, expires_at=NOW + timedelta(days=1))
    assert [c["purpose"] for c in model.consents_in_force(consents, NOW)] == ["matching", "notify:sms"]
    assert [c["purpose"] for c in model.consents_in_force(consents, NOW + timedelta(days=2))] == ["matching"]
    assert model.consents_expired_between(consents, NOW, NOW + timedelta(days=2)) == ["notify:sms"]
    revoked = model.revoke_consent(consents, "matching", by="coordinator:2", at=NOW)
    assert revoked["matching"]["revoked_by"] == "coordinator:2"
    assert [c["purpose"] for c in model.consents_in_force(revoked, NOW)] == ["notify:sms"]
    with pytest.raises(NotFound):
        model.revoke_consent(revoked, "matching", by="x", at=NOW)
    for bad in ("marketing", "notify:fax", "share:", "share:Has Spaces", "share:a.b"):
        with pytest.raises(Invalid):
            model.check_consent_purpose(bad)
    assert model.check_consent_purpose("notify:in_app") == "notify:inapp"
    with pytest.raises(Invalid):
        model.grant_consent({}, "matching", by="x", at=NOW, expires_at=NOW - timedelta(seconds=1))


def test_member_lifecycle():
    some = [{"purpose": "matching", "expires_at": None}]
    assert model.initial_member_status([]) == "pending_consent"
    assert model.initial_member_status(some) == "active"
    model.check_member_transition("pending_consent", "active", some)
    with pytest.raises(Conflict):
        model.check_member_transition("pending_consent", "active", [])
    model.check_member_transition("active", "graduated", some)
    model.check_member_transition("discharged", "active", some)
    with pytest.raises(Conflict):
        model.check_member_transition("graduated", "paused", some)
    with pytest.raises(Invalid):
        model.check_member_transition("active", "erased", some)
    model.check_leader_transition("active", "on_leave")
    with pytest.raises(Conflict):
        model.check_leader_transition("retired", "on_leave")


def test_snapshots_carry_no_direct_identifiers():
    member = {"_id": "m1", "organization_id": "o", "site_id": "s", "status": "active", "time_zone": "UTC",
              "first_name": "Ana", "last_name": "Silva", "email": "a@x.org", "phone": "+447911123456",
              "date_of_birth": date(1990, 1, 1), "languages": ["en"], "consents": {}}
    snap = model.member_snapshot(member, NOW)
    assert not {"first_name", "last_name", "email", "phone", "date_of_birth"} & set(snap)
    contact = model.contact_snapshot({**member, "preferred_name": "Annie"}, "member", ["s"])
    assert contact["display_name"] == "Annie" and contact["email"] == "a@x.org"
    erased = model.erased_member(member, NOW)
    assert not set(model.MEMBER_IDENTIFYING_FIELDS) & set(erased)


def test_certifications_and_plan():
    assert model.certifications_current([{"name": "x", "expires_on": date(2026, 6, 1)}], date(2026, 6, 1))
    assert not model.certifications_current([{"name": "x", "expires_on": date(2026, 5, 31)}], date(2026, 6, 1))
    plan = model.revise_plan(None, " Work ", ["a", " ", "b"], by="x", at=NOW)
    assert plan["revision"] == 1 and plan["goal"] == "Work" and plan["next_steps"] == ["a", "b"]
    assert model.revise_plan(plan, "More", [], by="x", at=NOW)["revision"] == 2

RANGES = {"BARC-10": (10, 1, 6), "AUDIT-C": (3, 0, 4), "DAST-10": (10, 0, 1), "PHQ-2": (2, 0, 3)}
BAND_ORDER = {"BARC-10": ["low", "moderate", "strong"], "AUDIT-C": ["low", "moderate", "high", "severe"],
              "DAST-10": ["none", "low", "moderate", "substantial", "severe"], "PHQ-2": ["negative", "positive"]}


@given(st.sampled_from(sorted(RANGES)), st.data())
def test_any_valid_answers_score_within_range_and_bands_rise_with_the_total(instrument, data):
    count, low, high = RANGES[instrument]
    answers = data.draw(st.lists(st.integers(low, high), min_size=count, max_size=count))
    scored = model.score_screening(instrument, answers)
    assert count * low <= scored["total"] <= count * high if instrument != "DAST-10" else 0 <= scored["total"] <= 10
    # one more point on the first item (never reverse scored) never lowers the band
    if answers[0] < high:
        more = model.score_screening(instrument, [answers[0] + 1] + answers[1:])
        order = BAND_ORDER[instrument]
        assert order.index(more["band"]) >= order.index(scored["band"])
    assert scored["flagged"] == (scored["band"] == "severe" or (instrument == "PHQ-2" and scored["total"] >= 3))
