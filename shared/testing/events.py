"""Reading what was published: a tap on topics that sees every record from the moment it opens.

    with EventTap(bootstrap, [MATCHES]) as tap:
        ... do something ...
        proposed = tap.wait_for(lambda e: e.type == MatchProposed.type and e.data["member_id"] == m)

No consumer group (partitions are assigned directly), so opening a tap costs no group join.
"""
from __future__ import annotations

import threading
from typing import Callable

from kafka import KafkaConsumer, TopicPartition

from shared.messaging.envelope import Event, MalformedEvent, decode_record
from shared.testing.polling import eventually


class EventTap:
    def __init__(self, bootstrap_servers: str, topics: list[str], *, from_beginning: bool = False):
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers.split(","), group_id=None,
                                      enable_auto_commit=False)
        partitions = [TopicPartition(topic, p) for topic in topics for p in self._partitions_of(topic)]
        self.consumer.assign(partitions)
        if from_beginning:
            self.consumer.seek_to_beginning(*partitions)
        else:
            self.consumer.seek_to_end(*partitions)
            for tp in partitions:  # resolve the end offsets now, before anything is produced
                self.consumer.position(tp)
        self.records: list = []
        self.events: list[Event] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _partitions_of(self, topic: str) -> list[int]:
        # A fresh client may not have the topic's metadata yet: ask until the broker names its partitions.
        def known():
            self.consumer.topics()  # forces a metadata refresh
            return sorted(self.consumer.partitions_for_topic(topic) or [])
        return eventually(known, timeout=20, message=f"topic {topic} has no partitions")

    def __enter__(self) -> "EventTap":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            for records in self.consumer.poll(timeout_ms=200).values():
                with self._lock:
                    for record in records:
                        self.records.append(record)
                        try:
                            self.events.append(decode_record(record.topic, record.key, record.value, record.headers,
                                                             partition=record.partition, offset=record.offset))
                        except MalformedEvent:
                            pass

    def matching(self, predicate: Callable[[Event], bool]) -> list[Event]:
        with self._lock:
            return [e for e in self.events if predicate(e)]

    def wait_for(self, predicate: Callable[[Event], bool], *, count: int = 1, timeout: float = 30.0) -> list[Event]:
        return eventually(lambda: (found := self.matching(predicate)) and len(found) >= count and found,
                          timeout=timeout, message=f"expected {count} matching event(s)")

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.consumer.close()


def publish(bootstrap_servers: str, declaration, data: dict, *, source: str = "/recoverynet/test") -> Event:
    """Publish one event as its producing service would (same envelope), for service tests that
    stand in for another service. Returns the Event (its ``id`` is the ce_id)."""
    from kafka import KafkaProducer

    from shared.messaging.envelope import encode_value, new_event, record_headers
    from shared.messaging.kafka import close_producer

    evt = new_event(declaration, data, source=source)
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers.split(","))
    try:
        producer.send(evt.topic, key=evt.key.encode(), value=encode_value(evt), headers=record_headers(evt))
        producer.flush(timeout=30)
    finally:
        close_producer(producer, timeout=5)
    return evt
