"""The consumer runner against the real broker and database: inbox, retries, dead letters, re-drive."""
import subprocess
import sys
import uuid

import pytest
from kafka import KafkaProducer

from shared.events.intake import MEMBERS, MemberStatusChanged
from shared.messaging.consumer import ConsumerRunner, RetryPolicy, redrive_dead_letters
from shared.messaging.envelope import encode_value, new_event, record_headers
from shared.messaging.kafka import consumer_group, dead_letter_topic, ensure_topics
from shared.mongo import connect, ensure_platform_indexes
from shared.testing import eventually
from shared.testing.events import EventTap
from shared.testing.services import group_at_the_end

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def service(mongo_uri, kafka_connection):
    name = f"svc{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_connection, {dead_letter_topic(f"recoverynet.{name}"): {}})
    client = connect(mongo_uri)
    db = client[f"test_consumer_{name}"]
    ensure_platform_indexes(db)
    yield name, client, db
    client.drop_database(db.name)
    client.close()


def publish(bootstrap, evt, *, raw_value=None, headers=None):
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(evt.topic, key=evt.key.encode(), value=raw_value if raw_value is not None else encode_value(evt),
                  headers=headers if headers is not None else record_headers(evt))
    producer.flush()
    producer.close()


def status_event(org, member, to_status="paused"):
    return new_event(MemberStatusChanged, {"organization_id": org, "member_id": member, "site_id": "s1",
                                           "from_status": "active", "to_status": to_status}, source="/test")


def run_until(runner, condition, timeout=60):
    return eventually(lambda: runner.poll_once(200) is not None and condition(), timeout=timeout)


def test_a_redelivered_event_has_no_second_effect(service, kafka_bootstrap, kafka_connection, org_id):
    name, client, db = service

    def count_it(evt, uow):
        uow.db.effects.update_one({"_id": evt.data["member_id"]}, {"$inc": {"n": 1}}, upsert=True, session=uow.session)

    runner = ConsumerRunner(kafka=kafka_connection, client=client, db=db,
                            subscriptions={MemberStatusChanged: count_it}, service=name)
    try:
        evt = status_event(org_id, "m-redelivered")
        publish(kafka_bootstrap, evt)
        publish(kafka_bootstrap, evt)  # the same event again (same ce_id), as a retrying producer would
        run_until(runner, lambda: db.inbox.count_documents({"_id": evt.id}) == 1)
        follow_up = status_event(org_id, "m-after")
        publish(kafka_bootstrap, follow_up)
        run_until(runner, lambda: db.inbox.count_documents({"_id": follow_up.id}) == 1)
        assert db.effects.find_one({"_id": "m-redelivered"})["n"] == 1
    finally:
        runner.close()


def test_failing_event_is_dead_lettered_and_the_consumer_moves_on_then_redrive_applies_it_once(
        service, kafka_bootstrap, kafka_connection, org_id):
    name, client, db = service
    broken = {"on": True}
    # A new group reads the topic from the start, other tests' events too: only this test's poison is refused.
    poison_id, behind_id = f"m-poison-{uuid.uuid4().hex[:8]}", f"m-behind-{uuid.uuid4().hex[:8]}"

    def handler(evt, uow):
        if evt.data["member_id"] == poison_id and broken["on"]:
            raise ValueError("this handler rejects the data")
        uow.db.effects.update_one({"_id": evt.data["member_id"]}, {"$inc": {"n": 1}}, upsert=True, session=uow.session)

    dlq = dead_letter_topic(f"recoverynet.{name}")
    fast = RetryPolicy(attempts=3, first_delay_seconds=0.01)
    # only what this test publishes: other tests' records on the topic (malformed ones too) would be dead-lettered
    # here as well, and re-driven with ours
    group_at_the_end(kafka_connection, consumer_group(name), {MEMBERS})
    runner = ConsumerRunner(kafka=kafka_connection, client=client, db=db,
                            subscriptions={MemberStatusChanged: handler}, service=name, retry=fast)
    try:
        with EventTap(kafka_bootstrap, [dlq]) as tap:
            poison, behind = status_event(org_id, poison_id), status_event(org_id, behind_id)
            publish(kafka_bootstrap, poison)
            publish(kafka_bootstrap, behind)
            run_until(runner, lambda: db.effects.find_one({"_id": behind_id}))
            eventually(lambda: tap.records, timeout=30)
            headers = dict(tap.records[0].headers)
            assert headers["ce_id"].decode() == poison.id
            assert b"rejects the data" in headers["x-dlq-reason"] and headers["x-dlq-attempts"] == b"3"
            assert headers["x-dlq-original-topic"].decode() == MEMBERS
        assert db.effects.find_one({"_id": poison_id}) is None

        broken["on"] = False  # the fix is deployed
        redriven = subprocess.run([sys.executable, "-m", "shared.messaging.consumer", "redrive", "--service", name,
                                   "--bootstrap", kafka_bootstrap], capture_output=True, text=True, check=True)
        assert "re-drove 1 dead letter" in redriven.stdout
        run_until(runner, lambda: db.effects.find_one({"_id": poison_id}))
        assert redrive_dead_letters(kafka_connection, name, idle_timeout_ms=2000) == 0  # re-driven once only
        assert db.effects.find_one({"_id": poison_id})["n"] == 1
    finally:
        runner.close()


@pytest.mark.parametrize("value,headers,reason", [
    (b"not json", None, b"not JSON"),
    (b"{}", [], b"missing CloudEvents headers"),
    (b"{}", [("ce_specversion", b"1.0"), ("ce_id", b"x1"), ("ce_source", b"s"), ("ce_type", b"org.example.nope.v9"),
             ("ce_time", b"2026-01-01T00:00:00Z")], b"unknown event type"),
])
def test_malformed_records_are_dead_lettered_with_a_reason(service, kafka_bootstrap, kafka_connection, org_id, value,
                                                           headers, reason):
    name, client, db = service
    runner = ConsumerRunner(kafka=kafka_connection, client=client, db=db,
                            subscriptions={MemberStatusChanged: lambda e, u: None}, service=name)
    try:
        with EventTap(kafka_bootstrap, [dead_letter_topic(f"recoverynet.{name}")]) as tap:
            evt = status_event(org_id, f"m-malformed-{uuid.uuid4().hex[:6]}")
            publish(kafka_bootstrap, evt, raw_value=value, headers=headers)
            # A new group reads the topic from the start, so it may dead-letter other tests' records too.
            ours = eventually(lambda: runner.poll_once(200) is not None
                              and [r for r in tap.records if r.key == evt.key.encode()], timeout=60)
            assert reason in dict(ours[0].headers)["x-dlq-reason"]
    finally:
        runner.close()
