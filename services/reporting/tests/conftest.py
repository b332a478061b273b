"""Fixtures of reporting's service tests: one worker and one web app per module on the real servers, and
a feed that publishes the other services' events (back-dated where a test needs history) through the
real broker, as their producers would."""
from __future__ import annotations

import pytest
from kafka import KafkaProducer

from shared.messaging.envelope import encode_value, new_event, record_headers
from shared.messaging.kafka import close_producer
from shared.testing import eventually
from shared.testing.service_fixtures import service_fixtures

settings, worker, app, client, db, tap, headers = service_fixtures("reporting", topics=[])


class Feed:
    """Events as intake, matching, scheduling and notifications publish them, with a chosen ``ce_time``."""

    def __init__(self, bootstrap: str, org: str):
        self.bootstrap, self.org = bootstrap, org
        self.pending: list = []
        self.sent: list = []

    def add(self, declaration, at=None, **data):
        evt = new_event(declaration, {"organization_id": self.org, **data}, source="/recoverynet/test", time=at)
        self.pending.append(evt)
        return evt

    def flush(self, again: list | None = None) -> list:
        """Publish what was added (and ``again``: records to publish a second time, same ids)."""
        producer = KafkaProducer(bootstrap_servers=self.bootstrap.split(","), linger_ms=5)
        try:
            for evt in self.pending + list(again or []):
                producer.send(evt.topic, key=evt.key.encode(), value=encode_value(evt), headers=record_headers(evt))
            producer.flush(timeout=60)
        finally:
            close_producer(producer, timeout=5)
        sent, self.pending = self.pending, []
        self.sent += sent
        return sent

    def wait_applied(self, db, timeout: float = 300.0) -> None:
        ids = list({e.id for e in self.sent})
        eventually(lambda: db.inbox.count_documents({"_id": {"$in": ids}}) == len(ids), timeout=timeout,
                   message="reporting applied every published event")


@pytest.fixture
def feed(kafka_bootstrap, org_id, worker):
    return Feed(kafka_bootstrap, org_id)


@pytest.fixture(scope="module")
def module_feed(kafka_bootstrap, worker):
    """A feed for one organization shared by a module's tests (its id random, like org_id's)."""
    import uuid
    return Feed(kafka_bootstrap, f"org-{uuid.uuid4().hex[:12]}")
