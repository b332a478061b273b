"""The reporting benchmark's generators on tiny inputs (no timing: speed is measured by ./deploy/bench):
its events are valid declarations of the platform's contract, and its facts are what reporting's model reads."""
from datetime import date, datetime, timezone

from bench import bench_reporting


def test_the_generated_year_is_valid_events_and_facts_the_model_reports_on():
    events = bench_reporting.events_of("org-smoke", 5)
    assert len(events) > 5 * 5 and {e.topic for e in events} >= {"recoverynet.intake.members", "recoverynet.matching.matches"}
    docs, messages, represented = bench_reporting.facts("org-smoke", 5)
    assert len(docs) == 5 and represented > 5 * 5 and messages

    from reporting import model
    figures = model.outcomes(docs, [], messages, {}, model.Period.of(date(2025, 11, 1), date(2026, 10, 31)),
                             datetime(2026, 11, 1, tzinfo=timezone.utc))
    assert figures["reach"]["onboarded"] == 5
    assert figures["access"]["days_to_accepted_match"]["n"] == 5
