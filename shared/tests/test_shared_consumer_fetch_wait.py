"""The consumers' fetch wait (issue 20, end to end at 10 registrations a second).

A consumer's fetch request waits at the broker up to ``fetch_max_wait_ms`` for new records. The embedded
broker (Tansu) does not answer a waiting fetch when a record arrives: the record is seen when the wait
ends, so every consumer hop of the platform (intake -> matching -> notifications) waited about half of
kafka-python's default 500 ms (bench/README.md, "Faults at load, memory and 10 registrations a second",
has the measurement). make_consumer waits FETCH_MAX_WAIT_MS instead. How long a hop takes is measured by
./deploy/bench, not here; this proves that every consumer the services make carries the setting and still
receives what is produced while its fetch waits."""
from __future__ import annotations

import threading
import uuid

from shared.messaging.kafka import FETCH_MAX_WAIT_MS, close_producer, ensure_topics, make_consumer, make_producer


def test_service_consumers_wait_at_most_fetch_max_wait_ms_and_get_what_is_produced_meanwhile(kafka_connection):
    assert 0 < FETCH_MAX_WAIT_MS <= 100
    topic = f"test.fetchwait.{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_connection, {topic: {}}, partitions=1)
    consumer = make_consumer(kafka_connection, f"test-fetchwait-{uuid.uuid4().hex[:8]}", [topic])
    producer = make_producer(kafka_connection)
    try:
        assert consumer.config["fetch_max_wait_ms"] == FETCH_MAX_WAIT_MS
        other = make_consumer(kafka_connection, "test-fetchwait-override", [topic], fetch_max_wait_ms=500)
        assert other.config["fetch_max_wait_ms"] == 500  # an override still wins
        other.close()
        received: list[bytes] = []
        joined = threading.Event()

        def poll_until(marker: bytes, polls: int = 200) -> None:
            for _ in range(polls):  # bounded: a few seconds of group join, then the record
                for records in consumer.poll(timeout_ms=200).values():
                    received.extend(r.value for r in records)
                if consumer.assignment():
                    joined.set()
                if marker in received:
                    return

        marker = uuid.uuid4().hex.encode()
        polling = threading.Thread(target=poll_until, args=(marker,))
        polling.start()
        assert joined.wait(60), "the consumer did not join its group"
        producer.send(topic, key=b"k", value=marker).get(timeout=30)  # while the consumer's fetch waits
        polling.join(60)
        assert marker in received
    finally:
        close_producer(producer)
        consumer.close()
