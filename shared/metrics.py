"""Prometheus metrics. Process-local counters, plus gauges read from MongoDB at scrape time so the
web process's ``/metrics`` shows the outbox backlog and each worker's consumer lag (which live in the
worker process) without a second scrape target. Imports nothing of ours: what the backlog is comes
from the outbox (``shared.messaging.outbox.outbox_backlog``), handed in by the web app."""
from __future__ import annotations

from typing import Callable

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

HTTP_REQUESTS = Counter("recoverynet_http_requests_total", "HTTP requests answered", ["service", "method", "status"])
HTTP_LATENCY = Histogram("recoverynet_http_request_seconds", "HTTP request latency", ["service", "method"])
OUTBOX_PUBLISHED = Counter("recoverynet_outbox_published_total", "Outbox entries published", ["service"])
OUTBOX_PUBLISH_FAILURES = Counter("recoverynet_outbox_publish_failures_total", "Relay batches that failed", ["service"])
EVENTS_HANDLED = Counter("recoverynet_events_handled_total", "Events handled by a consumer", ["service", "type", "outcome"])


class DatabaseGauges:
    """A collector that reads the outbox backlog and the workers' reported lag from the database."""

    def __init__(self, service: str, db, outbox_backlog: Callable[[object], int]):
        self.service, self.db, self.outbox_backlog = service, db, outbox_backlog

    def collect(self):
        backlog = GaugeMetricFamily("recoverynet_outbox_backlog", "Outbox entries not yet published", labels=["service"])
        lag = GaugeMetricFamily("recoverynet_consumer_lag", "Records behind the end of the subscribed topics",
                                labels=["service", "worker"])
        dead = GaugeMetricFamily("recoverynet_dead_lettered", "Events this service dead-lettered", labels=["service"])
        try:
            backlog.add_metric([self.service], self.outbox_backlog(self.db))
            for status in self.db.worker_status.find({}, {"lag": 1, "dead_lettered": 1}):
                lag.add_metric([self.service, str(status["_id"])], status.get("lag") or 0)
            dead.add_metric([self.service], sum(s.get("dead_lettered") or 0 for s in self.db.worker_status.find({})))
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
            return
        yield backlog
        yield lag
        yield dead
