"""A minimal Recovery Network subscriber with kafka-python (pip install kafka-python crc32c).

    python subscriber_kafka_python.py 127.0.0.1:29092 my-reporting-system

Reads member lifecycle and match events, deduplicates by ce_id (delivery is at least once), and commits
offsets only after it has processed a record.
"""
import json
import sys

from kafka import KafkaConsumer

TOPICS = ["recoverynet.intake.members", "recoverynet.matching.matches"]


def subscribe(bootstrap: str, group_id: str, handle, *, topics=TOPICS, max_idle_ms: int | None = None) -> None:
    consumer = KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,                 # your own group: you get every event, independently of others
        enable_auto_commit=False,          # commit after processing: nothing is skipped on a crash
        auto_offset_reset="earliest",
        session_timeout_ms=6000,           # joins the group in seconds rather than ~20 s
        heartbeat_interval_ms=2000,
        consumer_timeout_ms=max_idle_ms or float("inf"),
    )
    seen: set[str] = set()                 # keep this in your own database in real use
    try:
        for record in consumer:
            headers = {name: value.decode() for name, value in record.headers}
            # Skip tombstones, records that are not CloudEvents, and repeats.
            if record.value is None or "ce_type" not in headers or headers.get("ce_id") in seen:
                consumer.commit()
                continue
            try:
                data = json.loads(record.value)
            except ValueError:  # not an event we can read: set it aside (log it), never stop on it
                consumer.commit()
                continue
            handle(headers["ce_type"], headers, data)
            seen.add(headers["ce_id"])
            consumer.commit()
    finally:
        consumer.close()


if __name__ == "__main__":
    subscribe(sys.argv[1], sys.argv[2], lambda ce_type, headers, data: print(ce_type, headers["ce_subject"], data))
