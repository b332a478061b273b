"""The consumers' fetch wait (issue 20, end to end at 10 registrations a second).

A consumer's fetch request waits at the broker up to ``fetch_max_wait_ms`` for new records. The embedded
broker (Tansu) does not answer a waiting fetch when a record arrives: the record is seen when the wait
ends, so every consumer hop of the platform (intake -> matching -> notifications) waited about half of
kafka-python's default 500 ms (bench/README.md, "Faults at load, memory and 10 registrations a second",
has the measurement). make_consumer waits FETCH_MAX_WAIT_MS instead, and a service's consumer runner waits
longer once nothing has come for a while (FetchPacing: an idle consumer then asks the broker a third as often).
How long a hop takes is measured by ./deploy/bench, not here; this proves that every consumer the services make
carries the setting, that the pacing moves between the two waits as records stop and come, and that a record
produced while the consumer waits (the short wait or the long one) is received."""
from __future__ import annotations

import threading
import uuid

from shared.messaging.kafka import (FETCH_MAX_WAIT_MS, QUIET_FETCH_MAX_WAIT_MS, FetchPacing, close_producer,
                                    ensure_topics, make_consumer, make_producer)
from shared.messaging.consumer import JOIN_POLL_TIMEOUT_MS
from shared.testing import eventually


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


def test_a_quiet_consumer_waits_longer_and_still_gets_the_next_record_then_waits_briefly_again(kafka_connection):
    assert FETCH_MAX_WAIT_MS < QUIET_FETCH_MAX_WAIT_MS < 1000
    topic = f"test.fetchpacing.{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_connection, {topic: {}}, partitions=1)
    consumer = make_consumer(kafka_connection, f"test-fetchpacing-{uuid.uuid4().hex[:8]}", [topic])
    producer = make_producer(kafka_connection)
    now = [0.0]
    pacing = FetchPacing(consumer, quiet_after_seconds=2.0, clock=lambda: now[0])
    try:
        # joining: a poll longer than the broker's join delay (kafka-python discards a join completing outside poll())
        eventually(lambda: consumer.poll(timeout_ms=JOIN_POLL_TIMEOUT_MS) == {} and consumer.assignment(), timeout=60,
                   message="the consumer did not join its group")
        pacing.polled(0)
        assert pacing.wait_ms == FETCH_MAX_WAIT_MS      # not quiet yet
        now[0] = 2.5
        pacing.polled(0)
        assert pacing.wait_ms == QUIET_FETCH_MAX_WAIT_MS  # nothing for 2.5 s: the next fetches wait longer
        consumer.poll(timeout_ms=100)  # a fetch with the long wait is now at the broker
        marker = uuid.uuid4().hex.encode()
        producer.send(topic, key=b"k", value=marker).get(timeout=30)
        received: list[bytes] = []

        def receive() -> bool:
            batches = consumer.poll(timeout_ms=200)
            pacing.polled(sum(len(records) for records in batches.values()))
            received.extend(r.value for records in batches.values() for r in records)
            return marker in received
        eventually(receive, timeout=30, message="the record produced while the consumer was quiet never came")
        assert pacing.wait_ms == FETCH_MAX_WAIT_MS      # records came: back to the short wait
    finally:
        close_producer(producer)
        consumer.close()
