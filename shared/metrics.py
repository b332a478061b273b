"""Prometheus metrics. Process-local counters, plus gauges read from MongoDB at scrape time so the
web process's ``/metrics`` shows the outbox backlog and each worker's consumer lag (which live in the
worker process) without a second scrape target."""
from __future__ import annotations

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

HTTP_REQUESTS = Counter("recoverynet_http_requests_total", "HTTP requests answered", ["service", "method", "status"])
HTTP_LATENCY = Histogram("recoverynet_http_request_seconds", "HTTP request latency", ["service", "method"])
OUTBOX_PUBLISHED = Counter("recoverynet_outbox_published_total", "Outbox entries published", ["service"])
OUTBOX_PUBLISH_FAILURES = Counter("recoverynet_outbox_publish_failures_total", "Relay batches that failed", ["service"])
EVENTS_HANDLED = Counter("recoverynet_events_handled_total", "Events handled by a consumer", ["service", "type", "outcome"])


class DatabaseGauges:
    """A collector that reads the outbox backlog and the workers' reported lag from the database."""

    def __init__(self, service: str, db):
        self.service, self.db = service, db

    def collect(self):
        backlog = GaugeMetricFamily("recoverynet_outbox_backlog", "Outbox entries not yet published", labels=["service"])
        lag = GaugeMetricFamily("recoverynet_consumer_lag", "Records behind the end of the subscribed topics",
                                labels=["service", "worker"])
        dead = GaugeMetricFamily("recoverynet_dead_lettered", "Events this service dead-lettered", labels=["service"])
        try:
            from shared.outbox import outbox_backlog  # late: outbox imports these metrics

            backlog.add_metric([self.service], outbox_backlog(self.db))
            for status in self.db.worker_status.find({}, {"lag": 1, "dead_lettered": 1}):
                lag.add_metric([self.service, str(status["_id"])], status.get("lag") or 0)
            dead.add_metric([self.service], sum(s.get("dead_lettered") or 0 for s in self.db.worker_status.find({})))
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
            return
        yield backlog
        yield lag
        yield dead
