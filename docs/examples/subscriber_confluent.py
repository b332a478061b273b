"""A minimal Recovery Network subscriber with confluent-kafka (pip install confluent-kafka).

    python subscriber_confluent.py 127.0.0.1:29092 my-reporting-system
"""
import json
import sys
import time

from confluent_kafka import Consumer

TOPICS = ["recoverynet.intake.members", "recoverynet.matching.matches"]


def subscribe(bootstrap: str, group_id: str, handle, *, topics=TOPICS, max_idle_ms: int | None = None) -> None:
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
    })
    consumer.subscribe(topics)
    seen: set[str] = set()                 # keep this in your own database in real use
    idle_since = time.monotonic()
    try:
        while max_idle_ms is None or (time.monotonic() - idle_since) * 1000 < max_idle_ms:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            idle_since = time.monotonic()
            headers = {name: value.decode() for name, value in (msg.headers() or [])}
            # Skip tombstones, records that are not CloudEvents, and repeats.
            if msg.value() is not None and "ce_type" in headers and headers.get("ce_id") not in seen:
                try:
                    data = json.loads(msg.value())
                except ValueError:  # not an event we can read: set it aside (log it), never stop on it
                    data = None
                if data is not None:
                    handle(headers["ce_type"], headers, data)
                    seen.add(headers["ce_id"])
            consumer.commit(message=msg, asynchronous=False)
    finally:
        consumer.close()


if __name__ == "__main__":
    subscribe(sys.argv[1], sys.argv[2], lambda ce_type, headers, data: print(ce_type, headers["ce_subject"], data))
