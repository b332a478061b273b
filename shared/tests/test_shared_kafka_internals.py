"""The private parts of kafka-python we use: ``shared.messaging.kafka.group_rejoin_pending`` reads the
consumer's group coordinator (for the runner's join wait), and ``FetchPacing`` sets the fetch wait in the
consumer's fetcher. If this fails after a kafka-python upgrade, re-check ``ConsumerRunner.poll_once``'s join
wait and ``FetchPacing`` against the new version before changing the pin."""
import inspect
import uuid

import kafka
import pytest

from shared.messaging.kafka import ensure_topics, group_rejoin_pending, make_consumer
from shared.testing import eventually

pytestmark = pytest.mark.timeout(120)


def test_kafka_python_is_the_version_whose_internals_we_read():
    assert kafka.__version__ == "3.0.12", "kafka-python changed: see this module's docstring"


def test_the_fetcher_reads_the_wait_from_its_config_for_every_fetch_it_builds(kafka_connection):
    from kafka.consumer.fetcher import Fetcher
    assert "max_wait_ms=self.config['fetch_max_wait_ms']" in inspect.getsource(Fetcher._create_fetch_requests)
    consumer = make_consumer(kafka_connection, f"test-internals-{uuid.uuid4().hex[:8]}", ["test.internals.none"])
    try:
        assert consumer._fetcher.config["fetch_max_wait_ms"] == consumer.config["fetch_max_wait_ms"]  # noqa: SLF001
    finally:
        consumer.close(autocommit=False)


def test_the_coordinator_says_when_the_group_must_be_joined(kafka_connection):
    topic = f"test.internals.{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_connection, {topic: {}}, partitions=1)
    consumer = make_consumer(kafka_connection, f"test-internals-{uuid.uuid4().hex[:8]}", [topic])
    try:
        need_rejoin = consumer._coordinator.need_rejoin  # noqa: SLF001 - the private API this test guards
        assert need_rejoin() is True and group_rejoin_pending(consumer)  # not joined yet

        def joined():
            consumer.poll(timeout_ms=1000)
            return consumer.assignment()

        eventually(joined, timeout=60, message="the consumer never joined its group")
        assert need_rejoin() is False and not group_rejoin_pending(consumer)
    finally:
        consumer.close(autocommit=False)
