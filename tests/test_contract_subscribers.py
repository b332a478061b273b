"""The example subscribers in docs/ work: each receives an event once although it was published twice,
with the CloudEvents headers the contract promises."""
import importlib.util
import uuid
from pathlib import Path

import pytest

from shared.events.intake import MemberStatusChanged
from shared.messaging.envelope import encode_value, new_event, record_headers
from shared.messaging.kafka import make_producer

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(120)
@pytest.mark.parametrize("example", ["subscriber_kafka_python", "subscriber_confluent"])
def test_example_subscriber_receives_each_event_once(example, kafka_bootstrap, kafka_connection, org_id):
    evt = new_event(MemberStatusChanged, {"organization_id": org_id, "member_id": f"m-{uuid.uuid4().hex[:6]}",
                                          "site_id": "s1", "from_status": "active", "to_status": "paused"},
                    source="/recoverynet/intake")
    producer = make_producer(kafka_connection)
    for _ in range(2):  # as a retrying producer might
        producer.send(evt.topic, key=evt.key.encode(), value=encode_value(evt), headers=record_headers(evt))
    producer.flush()
    producer.close()

    received = []

    def handle(ce_type, headers, data):
        if isinstance(data, dict) and data.get("organization_id") == org_id:
            received.append((ce_type, headers, data))

    load(example).subscribe(kafka_bootstrap, f"example-{uuid.uuid4().hex[:8]}", handle, max_idle_ms=15000)
    assert len(received) == 1
    ce_type, headers, data = received[0]
    assert ce_type == MemberStatusChanged.type and headers["ce_id"] == evt.id
    assert headers["ce_subject"] == evt.key and data["to_status"] == "paused"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("example", ["subscriber_kafka_python", "subscriber_confluent"])
def test_example_subscriber_sets_aside_records_it_cannot_read(example, kafka_bootstrap, kafka_connection, org_id):
    evt = new_event(MemberStatusChanged, {"organization_id": org_id, "member_id": f"m-{uuid.uuid4().hex[:6]}",
                                          "site_id": "s1", "from_status": "active", "to_status": "paused"},
                    source="/recoverynet/intake")
    producer = make_producer(kafka_connection)
    other = [record_headers(new_event(MemberStatusChanged, dict(evt.data), source="/elsewhere")) for _ in range(2)]
    unreadable = [(b"{}", []), (b"not json", other[0]), (b"[1, 2]", other[1])]
    for value, headers in unreadable:  # the same key as the good event: it waits behind them
        producer.send(evt.topic, key=evt.key.encode(), value=value, headers=headers)
    producer.send(evt.topic, key=evt.key.encode(), value=encode_value(evt), headers=record_headers(evt))
    producer.flush()
    producer.close()
    received = []

    def handle(ce_type, headers, data):
        if isinstance(data, dict) and data.get("organization_id") == org_id:
            received.append(data)

    load(example).subscribe(kafka_bootstrap, f"example-{uuid.uuid4().hex[:8]}", handle, max_idle_ms=15000)
    assert received == [evt.data]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("example", ["subscriber_kafka_python", "subscriber_confluent"])
def test_example_subscriber_started_again_resumes_from_its_groups_committed_offsets(example, kafka_bootstrap,
                                                                                    kafka_connection, org_id):
    """What docs/subscribing.md says of the examples: a second run with the same group id gets only what
    was published since the first run, none of what the first run processed."""
    producer = make_producer(kafka_connection)

    def published(status):
        evt = new_event(MemberStatusChanged, {"organization_id": org_id, "member_id": f"m-{uuid.uuid4().hex[:6]}",
                                              "site_id": "s1", "from_status": "active", "to_status": status},
                        source="/recoverynet/intake")
        producer.send(evt.topic, key=evt.key.encode(), value=encode_value(evt), headers=record_headers(evt))
        producer.flush()
        return evt

    group = f"example-{uuid.uuid4().hex[:8]}"
    runs: list[list[str]] = []
    try:
        for status in ("paused", "active"):
            evt = published(status)
            received = []
            load(example).subscribe(kafka_bootstrap, group, lambda ce_type, headers, data: received.append(
                headers["ce_id"]) if isinstance(data, dict) and data.get("organization_id") == org_id else None,
                max_idle_ms=10000)
            runs.append(received)
            assert received == [evt.id], (status, runs)
    finally:
        producer.close()


def test_the_guide_gives_a_command_for_every_example_and_says_how_they_run():
    guide = (EXAMPLES.parent / "subscribing.md").read_text()
    examples = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert examples == ["subscriber_confluent.py", "subscriber_kafka_python.py"]
    for name in examples:
        assert f"python docs/examples/{name} 127.0.0.1:29092 " in guide, name
    assert "runs until stopped" in guide and "resumes from the offsets its group committed" in guide
