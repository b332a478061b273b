"""The figures and the suppression of small numbers, as pure functions (no I/O)."""
from datetime import date, datetime, timedelta, timezone

import pytest

from reporting import model
from reporting.config import Settings

T0 = datetime(2025, 1, 10, tzinfo=timezone.utc)
PERIOD = model.Period.of(date(2025, 1, 1), date(2025, 6, 30))
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def member(at=T0, language="en", pathways=("smart",), site="s1"):
    return model.registered(model.new_member("org"), {"site_id": site, "status": "active", "languages": [language],
                                                      "pathways": list(pathways)}, at)


def test_events_applied_twice_or_out_of_order_change_nothing():
    a = model.add(member(), "proposals", {"id": "m1", "at": T0 + timedelta(days=3)}, "id")
    a = model.add(a, "proposals", {"id": "m0", "at": T0 + timedelta(days=1)}, "id")
    b = model.add(model.add(a, "proposals", {"id": "m1", "at": T0 + timedelta(days=3)}, "id"),
                  "proposals", {"id": "m0", "at": T0 + timedelta(days=1)}, "id")
    assert a == b and [p["id"] for p in a["proposals"]] == ["m0", "m1"]
    # A profile snapshot older than the one kept does not overwrite it.
    newer = model.profile(a, {"languages": ["es"], "pathways": []}, T0 + timedelta(days=5))
    assert model.profile(newer, {"languages": ["fr"]}, T0 + timedelta(days=4))["language"] == "es"


def test_percentile_is_nearest_rank_and_spread_counts_people():
    assert model.percentile(list(range(1, 11)), 90) == 9
    assert model.percentile([5.0], 90) == 5.0
    assert model.spread([1, 2, 3, 10]) == {"n": 4, "median": 2.5, "p90": 10}


def test_retention_engaged_means_activity_in_the_30_days_up_to_day_n():
    m = member()
    m = model.add(m, "sessions", {"id": "s", "at": T0 + timedelta(days=20)}, "id")
    m = model.attend(m, {"id": "o1", "meeting_id": "mt", "at": T0 + timedelta(days=85), "present": True,
                         "recorded_at": T0})
    retention = model.engagement([m], {}, PERIOD, NOW)["retention"]
    assert [retention[f"day_{n}"]["engaged"] for n in (30, 90, 180)] == [1, 1, 0]


def test_attendance_corrected_later_replaces_the_earlier_record_whatever_the_order():
    first = {"id": "o1", "meeting_id": "mt", "at": T0, "present": False, "recorded_at": T0}
    fixed = {**first, "present": True, "recorded_at": T0 + timedelta(hours=1)}
    assert model.attend(model.attend(member(), first), fixed)["attendance"] == [fixed]
    assert model.attend(model.attend(member(), fixed), first)["attendance"] == [fixed]


def test_flag_episodes_and_hours_to_resolve():
    m = model.add(member(), "flags", {"id": "a", "at": T0}, "id")
    m = model.add(m, "flags", {"id": "b", "at": T0 + timedelta(hours=1)}, "id")  # joins the open one
    m = model.add(m, "resolved", {"at": T0 + timedelta(hours=5)}, "at")
    m = model.add(m, "flags", {"id": "c", "at": T0 + timedelta(days=2)}, "id")
    assert model.flag_episodes(m) == [(T0, T0 + timedelta(hours=5)), (T0 + timedelta(days=2), None)]
    s = model.safety([m], PERIOD)
    assert (s["flags_raised"], s["resolved"], s["hours_to_resolve"]["median"], s["members_open_at_end"]) == (3, 1, 5.0, 1)


def test_waiting_ends_with_a_proposal():
    m = model.add(member(), "waitlisted", {"at": T0 + timedelta(days=1)}, "at")
    assert model.waiting_since(m, T0 + timedelta(days=10)) == T0 + timedelta(days=1)
    m = model.add(m, "proposals", {"id": "x", "at": T0 + timedelta(days=5)}, "id")
    assert model.waiting_since(m, T0 + timedelta(days=10)) is None


def test_recovery_capital_signs_change_so_positive_is_better():
    def screened(first, latest, instrument):
        m = model.add(member(), "screenings", {"id": "1", "at": T0, "instrument": instrument, "total": first}, "id")
        return model.add(m, "screenings", {"id": "2", "at": T0 + timedelta(days=60), "instrument": instrument,
                                           "total": latest}, "id")
    rc = model.recovery_capital([screened(30, 40, "BARC-10"), screened(30, 30, "BARC-10"), screened(5, 2, "PHQ-2")],
                                PERIOD)
    assert (rc["BARC-10"]["members"], rc["BARC-10"]["mean_change"], rc["BARC-10"]["improved"],
            rc["BARC-10"]["unchanged"]) == (2, 5.0, 1, 1)
    assert rc["PHQ-2"]["improved"] == 1 and rc["PHQ-2"]["mean_change"] == 3.0


def _report(members):
    return model.outcomes(members, [], [], {}, PERIOD, NOW)


def test_small_cells_are_hidden_and_cannot_be_recovered_from_totals():
    members = [member(language="en") for _ in range(30)] + [member(language="es") for _ in range(4)]
    shown = model.suppress(_report(members), 11)
    label = "fewer than 11"
    assert shown["reach"]["onboarded"] == 34
    # es (4) is hidden; en would give it away (34 - 30), so en is hidden too (complementary).
    assert shown["reach"]["by_language"] == {"en": label, "es": label}


def test_a_single_small_month_hides_another_month_and_zero_stays_shown():
    members = [member(at=T0) for _ in range(20)] + [member(at=T0 + timedelta(days=31)) for _ in range(3)]
    months = model.suppress(_report(members), 11)["reach"]["monthly"]
    onboarded = [row["onboarded"] for row in months]
    assert onboarded[1] == "fewer than 11" and onboarded[0] == "fewer than 11"  # 3 hidden; 20 hidden so 23-20 fails
    assert onboarded[2:] == [0, 0, 0, 0]


def test_a_hidden_total_hides_a_part_and_statistics_of_few_people_are_hidden():
    members = [member() for _ in range(5)]
    shown = model.suppress(_report(members), 11)
    assert shown["reach"]["onboarded"] == "fewer than 11"
    assert shown["reach"]["by_language"]["en"] == "fewer than 11"
    members = [model.add(m, "proposals", {"id": "p", "at": T0 + timedelta(days=2)}, "id") for m in members]
    stat = model.suppress(_report(members), 11)["access"]["days_to_first_proposal"]
    assert stat == {"n": "fewer than 11", "median": "fewer than 11", "p90": "fewer than 11"}


def test_the_threshold_is_a_setting_never_below_11():
    with pytest.raises(ValueError):
        Settings(platform=None, min_cell=10)
    members = [member() for _ in range(15)]
    assert model.suppress(_report(members), 20)["reach"]["onboarded"] == "fewer than 20"


def test_pseudonyms_are_keyed_and_the_erasure_marker_is_unrelated():
    p = model.pseudonym("k" * 32, "org", "mem-1")
    assert p != model.pseudonym("j" * 32, "org", "mem-1") and "mem-1" not in p
    assert model.erasure_marker("k" * 32, "org", "mem-1") != p


def test_a_report_range_is_checked_as_it_will_be_covered():
    """A 'from' alone runs to today and a 'to' alone starts 11 months before its month: the five-year limit
    and the order of the two apply to that range, and the error names the field the caller sent."""
    from reporting.schemas import OutcomesQuery
    today = date(2026, 11, 30)
    assert model.report_range(None, None, today) == (date(2025, 12, 1), today)
    assert model.report_range(None, date(2024, 3, 15), today) == (date(2023, 4, 1), date(2024, 3, 15))
    assert model.report_range(date(2026, 2, 1), None, today) == (date(2026, 2, 1), today)
    schema = OutcomesQuery()
    assert schema.validate({"from": "0001-01-01"}) == {"from": [f"a range of at most {model.MAX_RANGE_DAYS} days"]}
    assert "from" in schema.validate({"from": "9999-01-01"})
    assert "to" in schema.validate({"from": "2026-01-01", "to": "2025-12-31"})
    assert "to" in schema.validate({"from": "2001-01-01", "to": "2026-01-01"})
    assert schema.validate({"to": "2000-01-31"}) == {} and schema.validate({}) == {}
