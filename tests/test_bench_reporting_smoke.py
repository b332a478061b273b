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


def test_the_aggregates_of_the_generated_year_give_the_reference_figures():
    from collections import Counter

    from reporting import aggregates, model
    docs, messages, _ = bench_reporting.facts("org-smoke", 40)
    total = Counter()
    for doc in docs:
        total.update(aggregates.contribution(doc))
    monthly: dict = {}
    timelines: dict = {}
    for (site, month, key), n in total.items():
        (timelines if month is None else monthly).setdefault((site, month), {"c": {}})["c"][key] = n
    period = model.Period.of(date(2025, 11, 1), date(2026, 10, 31))
    now = datetime(2026, 11, 1, tzinfo=timezone.utc)
    nested = lambda docs: [{"c": aggregates.nest(d["c"])} for d in docs.values()]  # noqa: E731
    assert aggregates.figures(nested(monthly), nested(timelines), [], {}, period, now) == \
        model.outcomes(docs, [], messages, {}, period, now)
