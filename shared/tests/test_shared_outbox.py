"""The outbox and relay against the real embedded broker and database."""
import uuid

import pytest
from confluent_kafka import Consumer as ConfluentConsumer

from shared.devstack.servers import EmbeddedBroker
from shared.events.intake import MEMBERS, MemberStatusChanged
from shared.messaging.kafka import close_producer, ensure_topics, make_producer
from shared.messaging.outbox import Lease, OutboxRelay, outbox_backlog
from shared.mongo import connect, ensure_platform_indexes
from shared.testing import eventually
from shared.testing.events import EventTap
from shared.unit_of_work import run_in_transaction

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def db(mongo_uri):
    client = connect(mongo_uri)
    database = client[f"test_outbox_{uuid.uuid4().hex[:8]}"]
    ensure_platform_indexes(database)
    yield client, database
    client.drop_database(database.name)
    client.close()


def write_status_change(client, db, org, member, to_status):
    def work(uow):
        uow.db.members.update_one({"_id": member}, {"$set": {"status": to_status}}, upsert=True, session=uow.session)
        uow.emit(MemberStatusChanged, {"organization_id": org, "member_id": member, "site_id": "s1",
                                       "from_status": "active", "to_status": to_status})
    run_in_transaction(client, db, work, source="/recoverynet/test")


def test_state_and_event_are_written_together_or_not_at_all(db, org_id):
    client, database = db

    def failing_work(uow):
        uow.db.members.insert_one({"_id": "m-x"}, session=uow.session)
        uow.emit(MemberStatusChanged, {"organization_id": org_id, "member_id": "m-x", "site_id": "s1",
                                       "from_status": "active", "to_status": "paused"})
        raise RuntimeError("the use case failed after writing")

    with pytest.raises(RuntimeError):
        run_in_transaction(client, database, failing_work, source="/test")
    assert database.members.count_documents({}) == 0 and database.outbox.count_documents({}) == 0


def test_relayed_event_reaches_consumers_with_all_cloudevents_headers(db, kafka_bootstrap, kafka_connection, org_id):
    client, database = db
    member = f"m-{uuid.uuid4().hex[:8]}"
    with EventTap(kafka_bootstrap, [MEMBERS]) as tap:
        write_status_change(client, database, org_id, member, "paused")
        relay = OutboxRelay(database, lambda: make_producer(kafka_connection), service="test")
        assert eventually(relay.publish_pending) == 1
        relay.close()
        (evt,) = tap.wait_for(lambda e: e.data.get("member_id") == member)
    assert evt.type == MemberStatusChanged.type and evt.key == member and evt.traceparent
    assert outbox_backlog(database) == 0

    # A second client library reads the same record and headers (CloudEvents binary mode).
    consumer = ConfluentConsumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"cf-{uuid.uuid4().hex}",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([MEMBERS])
    try:
        def read_it():
            msg = consumer.poll(1.0)
            if msg is None or msg.error() or msg.key() != member.encode():
                return None
            return msg
        msg = eventually(read_it, timeout=60)
        headers = dict(msg.headers())
        assert headers["ce_id"].decode() == evt.id
        assert headers["ce_type"].decode() == MemberStatusChanged.type
        assert {"ce_specversion", "ce_source", "ce_time", "ce_subject", "content-type", "traceparent"} <= set(headers)
    finally:
        consumer.close()


def test_only_one_relay_holds_the_lease(db):
    _, database = db
    first, second = Lease(database, "relay:x", ttl_seconds=30), Lease(database, "relay:x", ttl_seconds=30)
    assert first.acquire() and not second.acquire()
    assert first.acquire()  # renewal by the owner
    assert first.term == 1  # a renewal is the same term
    first.release()
    assert second.acquire() and second.term == 1
    assert not first.hold() and not first.hold()


def test_a_held_lease_is_renewed_a_third_of_its_time_after_the_last_renewal_not_every_cycle(db):
    _, database = db
    lease = Lease(database, f"relay:{uuid.uuid4().hex[:6]}", ttl_seconds=1.5)
    commands = []
    original = lease.acquire
    lease.acquire = lambda: commands.append(1) or original()
    assert all(lease.hold() for _ in range(50))
    assert len(commands) == 1  # fifty cycles, one round trip
    eventually(lambda: lease.hold() and len(commands) == 2, timeout=5)  # renewed after 0.5 s
    assert lease.term == 1


def test_a_relay_that_takes_the_lease_back_continues_from_where_the_other_left_off(db, kafka_bootstrap,
                                                                                 kafka_connection, org_id):
    """The relay keeps the published position in memory while it holds the lease; when another relay
    held it in between, it reads the position again and publishes nothing twice."""
    client, database = db
    first, second = (OutboxRelay(database, lambda: make_producer(kafka_connection), service=f"handover-{org_id}")
                     for _ in range(2))
    with EventTap(kafka_bootstrap, [MEMBERS]) as tap:
        write_status_change(client, database, org_id, "h", "paused")
        eventually(first.publish_pending)
        first.close()  # releases the lease
        write_status_change(client, database, org_id, "h", "active")
        eventually(second.publish_pending)
        second.close()
        write_status_change(client, database, org_id, "h", "graduated")
        eventually(first.publish_pending)
        first.close()
        # one key, one partition, in order: a stale position would publish "active" again before "graduated"
        tap.wait_for(lambda e: e.organization_id == org_id and e.data["to_status"] == "graduated", timeout=30)
        events = tap.matching(lambda e: e.organization_id == org_id)
    assert [e.data["to_status"] for e in events] == ["paused", "active", "graduated"]


def test_a_producer_dropped_while_the_broker_is_away_leaves_no_thread_behind(tmp_path):
    broker = EmbeddedBroker(behind_proxy=True, log_path=tmp_path / "tansu.log").start()
    try:
        ensure_topics(broker.connection, {MEMBERS: {}})
        producer = make_producer(broker.connection, max_block_ms=2000, request_timeout_ms=2000)
        producer.send(MEMBERS, key=b"k", value=b"{}").get(timeout=30)
        broker.proxy.cut()
        stranded = producer.send(MEMBERS, key=b"k", value=b"{}")
        close_producer(producer, timeout=0)
        assert not producer._sender.is_alive()  # kafka-python's own close() would leave it reconnecting
        assert stranded.is_done and stranded.exception is not None  # dropped, and said so (the outbox resends)
    finally:
        broker.stop()


def test_writes_during_a_broker_outage_are_published_in_order_after_it_returns(db, tmp_path, org_id):
    client, database = db
    broker = EmbeddedBroker(behind_proxy=True, log_path=tmp_path / "tansu.log").start()
    try:
        ensure_topics(broker.connection, {MEMBERS: {}})
        relay = OutboxRelay(database, lambda: make_producer(broker.connection, max_block_ms=2000,
                                                            request_timeout_ms=2000),
                            service="test", flush_timeout_seconds=3)
        members = [f"m-{i}" for i in range(3)]
        statuses = ["paused", "active", "graduated"]
        with EventTap(broker.bootstrap_servers, [MEMBERS]) as tap:
            write_status_change(client, database, org_id, members[0], "paused")
            eventually(relay.publish_pending)

            broker.proxy.cut()
            for status in statuses:  # the API keeps accepting writes while the broker is away
                for member in members:
                    write_status_change(client, database, org_id, member, status)
            assert relay.publish_pending() == 0  # nothing can be sent, nothing is marked sent
            assert outbox_backlog(database) == 9

            broker.proxy.restore()
            eventually(lambda: relay.publish_pending() == 0 and outbox_backlog(database) == 0,
                       timeout=60)
            relay.close()
            events = tap.wait_for(lambda e: e.organization_id == org_id, count=10, timeout=60)
        # At least once: a batch cut off mid-flight may be published again, with the same ce_id.
        first_seen = list({e.id: e for e in reversed(events)}.values())[::-1]
        first_seen = sorted(first_seen, key=lambda e: events.index(e))
        for member in members:
            seen = [e.data["to_status"] for e in first_seen if e.key == member and e.data["to_status"] in statuses]
            deduplicated = [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s]
            assert deduplicated == statuses, member  # m-0's first "paused" folds into the outage's
    finally:
        broker.stop()
