"""deploy/prometheus/alerts.yml, checked the way promtool's rule tests would, with what runs here (no promtool
binary; no promtool-compatible rule tester on PyPI): every expression parses (promql-parser), every metric it
selects is one our processes really export (collected from the real collectors against a real MongoDB,
plus Prometheus's own ``up``), and each alert is evaluated on sample series by tests/operations/promql.py:
it fires for its whole ``for`` window on a series that should page, and stays quiet on a healthy one."""
from __future__ import annotations

from pathlib import Path

import promql_parser
import pytest
import yaml
from prometheus_client import CollectorRegistry

from shared.messaging.outbox import outbox_backlog
from shared.metrics import DatabaseGauges
from shared.mongo import connect

from .promql import evaluate, metric_names

ROOT = Path(__file__).resolve().parents[2]
RULES = [rule for group in yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())["groups"]
         for rule in group["rules"]]
BY_NAME = {rule["alert"]: rule for rule in RULES}
STEP = 30.0  # the scrape interval of the sample series
PROMETHEUS_OWN = {"up"}


def duration(text: str | None) -> float:
    if not text:
        return 0.0
    return float(text[:-1]) * {"s": 1, "m": 60, "h": 3600}[text[-1]]


@pytest.fixture(scope="module")
def exported_metric_names(mongo_uri) -> set[str]:
    """What a web process's /metrics holds: the shared collectors (counters and histograms) and the gauges read
    from a real database at scrape time, for a service with a worker status, and notifications' delivery gauges."""
    import prometheus_client
    import shared.metrics  # noqa: F401 - registers the counters and histograms
    from notifications.app import _GAUGES

    client = connect(mongo_uri)
    db = client["recoverynet_alert_rules_test"]
    db.worker_status.replace_one({"_id": "w1"}, {"service": "matching", "lag": 3, "dead_lettered": 1}, upsert=True)
    registry = CollectorRegistry()
    registry.register(DatabaseGauges("matching", db, outbox_backlog))
    previous, _GAUGES.db = _GAUGES.db, db
    try:
        names = {sample.name for family in (*prometheus_client.REGISTRY.collect(), *registry.collect())
                 for sample in family.samples}
    finally:
        _GAUGES.db = previous
        client.drop_database(db.name)
        client.close()
    return names


def series(points: dict[tuple, callable], until: float = 3600.0) -> dict:
    """Sample series every STEP seconds up to ``until``: {(name, labels...): value_of(t)} -> the evaluator's shape."""
    out = {}
    for (name, *labels), value_of in points.items():
        key = frozenset({"__name__": name, **dict(labels)}.items())
        out[key] = [(t, float(value_of(t))) for t in (STEP * i for i in range(1, int(until / STEP) + 1))
                    if value_of(t) is not None]
    return out


def fires(alert: str, data: dict, at: float = 3600.0) -> bool:
    """Whether the alert is firing at ``at``: its expression returned something at every evaluation of its
    ``for`` window (every STEP), as Prometheus requires before pending becomes firing."""
    rule = BY_NAME[alert]
    expr = promql_parser.parse(rule["expr"])
    window = duration(rule.get("for"))
    times = [at - window + STEP * i for i in range(int(window / STEP) + 1)]
    return all(evaluate(expr, data, t) for t in times)


def test_every_rule_parses_and_selects_only_metrics_we_export(exported_metric_names):
    assert {"recoverynet_outbox_backlog", "recoverynet_consumer_lag", "recoverynet_dead_lettered",
            "recoverynet_notifications_deliveries"} <= exported_metric_names
    assert len(RULES) >= 6
    for rule in RULES:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("page", "warn") and rule["annotations"]["summary"]
        names = metric_names(promql_parser.parse(rule["expr"]))
        assert names and names <= exported_metric_names | PROMETHEUS_OWN, (rule["alert"], names - exported_metric_names)


def test_the_alerts_cover_what_operators_must_see():
    selected = set().union(*(metric_names(promql_parser.parse(rule["expr"])) for rule in RULES))
    assert {"up", "recoverynet_outbox_backlog", "recoverynet_consumer_lag", "recoverynet_dead_lettered",
            "recoverynet_notifications_deliveries"} <= selected


UP = {("up", ("job", "recoverynet-matching"), ("instance", "m1:8000")): lambda t: 1}


def test_service_down_and_not_ready():
    down = {("up", ("job", "recoverynet-matching"), ("instance", "m1:8000")): lambda t: 0 if t > 1800 else 1}
    assert fires("RecoveryNetServiceDown", series(down))
    assert not fires("RecoveryNetServiceDown", series(UP))
    healthy_backlog = {("recoverynet_outbox_backlog", ("job", "recoverynet-matching"), ("instance", "m1:8000"), ("service", "matching")): lambda t: 0}
    # the gauges vanish from the scrape when the database is unreachable (from t = 1800 on)
    gone = {("recoverynet_outbox_backlog", ("job", "recoverynet-matching"), ("instance", "m1:8000"), ("service", "matching")): lambda t: 0 if t <= 1800 else None}
    assert fires("RecoveryNetServiceNotReady", series({**UP, **gone}))
    assert not fires("RecoveryNetServiceNotReady", series({**UP, **healthy_backlog}))


def _backlog(value_of, instances=("m1:8000", "m2:8000")):
    return {("recoverynet_outbox_backlog", ("instance", i), ("service", "matching")): value_of for i in instances}


def test_outbox_backlog_growing():
    assert fires("RecoveryNetOutboxBacklogGrowing", series(_backlog(lambda t: t / 6)))            # +10 a minute, ~600
    assert not fires("RecoveryNetOutboxBacklogGrowing", series(_backlog(lambda t: 500)))          # large but draining-flat
    assert not fires("RecoveryNetOutboxBacklogGrowing", series(_backlog(lambda t: (t % 120) / 6)))  # small, relay keeps up
    assert not fires("RecoveryNetOutboxBacklogGrowing", series(_backlog(lambda t: max(0, 2000 - t))))  # catching up


def test_consumer_lag():
    lag = lambda f: {("recoverynet_consumer_lag", ("service", "notifications"), ("worker", "w1")): f}  # noqa: E731
    assert fires("RecoveryNetConsumerLag", series(lag(lambda t: 5000)))
    assert not fires("RecoveryNetConsumerLag", series(lag(lambda t: 20)))
    assert not fires("RecoveryNetConsumerLag", series(lag(lambda t: 5000 if t % 600 < 60 else 0)))  # a short burst


def test_dead_letters_appearing():
    dead = lambda f: {("recoverynet_dead_lettered", ("service", "scheduling"), ("instance", "s1:8000")): f}  # noqa: E731
    assert fires("RecoveryNetDeadLetters", series(dead(lambda t: 0 if t < 3000 else 1)))
    assert not fires("RecoveryNetDeadLetters", series(dead(lambda t: 0)))
    assert not fires("RecoveryNetDeadLetters", series(dead(lambda t: 3)))  # old ones, already alerted on


def test_delivery_failures_and_late_deliveries():
    failed = lambda f: {("recoverynet_notifications_deliveries", ("status", "failed"), ("instance", "n1:8000")): f}  # noqa: E731
    assert fires("RecoveryNetDeliveriesFailing", series(failed(lambda t: t // 600)))
    assert not fires("RecoveryNetDeliveriesFailing", series(failed(lambda t: 4)))
    pending = {("recoverynet_notifications_deliveries", ("status", "pending"), ("instance", "n1:8000")): lambda t: t // 60}
    assert not fires("RecoveryNetDeliveriesFailing", series(pending)), "only the failed status counts"
    late = lambda f: {("recoverynet_notifications_oldest_due_seconds", ("instance", "n1:8000")): f}  # noqa: E731
    assert fires("RecoveryNetDeliveriesLate", series(late(lambda t: max(0, t - 1200))))
    assert not fires("RecoveryNetDeliveriesLate", series(late(lambda t: 5)))
