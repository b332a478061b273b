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
        def read_it():  # a batch per call: the topic holds what every earlier test published to it
            for msg in consumer.consume(num_messages=500, timeout=1.0):
                if not msg.error() and msg.key() == member.encode():
                    return msg
            return None
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


# -- lanes (issue 20): order per key without one counter for every writer ---------------------------------

def write_numbered(client, db, org, members):
    """One transaction: each member's change counter goes up by one, and an event carries the number it
    reached. The member documents conflict per key, so per key the numbers are commit order."""
    def work(uow):
        for member in members:
            doc = uow.db.members.find_one_and_update({"_id": member}, {"$inc": {"n": 1}}, upsert=True,
                                                     return_document=True, session=uow.session)
            uow.emit(MemberStatusChanged, {"organization_id": org, "member_id": member, "site_id": "s1",
                                           "from_status": "active", "to_status": "paused", "reason": f"n={doc['n']}"})
    run_in_transaction(client, db, work, source="/recoverynet/test")


def test_concurrent_writers_of_different_and_same_keys_are_relayed_in_order_per_key_none_lost_none_doubled(
        db, kafka_bootstrap, kafka_connection, org_id):
    from concurrent.futures import ThreadPoolExecutor

    from shared.messaging.outbox import lane_of, lane_heads

    client, database = db
    shared_keys = [f"shared-{i}" for i in range(3)]          # every writer writes these: the same keys
    # Each writer: its own key alone, then its own key with a shared one (two lanes in one transaction).
    plans = [[f"own-{w}"] if r % 2 else [f"own-{w}", shared_keys[(w + r) % 3]] for w in range(6) for r in range(8)]
    relay = OutboxRelay(database, lambda: make_producer(kafka_connection), service=f"lanes-{org_id}", batch_size=7,
                        read_chunk=3)  # batches of several lanes, each read in pieces ahead of the producer
    with EventTap(kafka_bootstrap, [MEMBERS]) as tap:
        with ThreadPoolExecutor(6) as pool:
            writes = [pool.submit(write_numbered, client, database, org_id, plan) for plan in plans]
            while not all(w.done() for w in writes):   # the relay publishes while the writers write
                relay.publish_pending()
            for w in writes:
                w.result()
        eventually(lambda: relay.publish_pending() == 0 and outbox_backlog(database) == 0, timeout=60)
        relay.close()
        expected = sum(len(plan) for plan in plans)
        events = tap.wait_for(lambda e: e.organization_id == org_id, count=expected, timeout=60)
    assert len(events) == expected and len({e.id for e in events}) == expected  # none lost, none doubled
    keys = {e.key for e in events}
    assert len({lane_of(k) for k in keys}) > 1   # the keys spread over several lanes
    for key in keys:
        numbers = [int(e.data["reason"].split("=")[1]) for e in events if e.key == key]
        assert numbers == list(range(1, len(numbers) + 1)), key   # commit order, per key
    entries = list(database.outbox.find({}, {"lane": 1, "seq": 1}))
    for lane, head in lane_heads(database).items():  # numbers per lane: no gap, none twice
        assert sorted(e["seq"] for e in entries if e["lane"] == lane) == list(range(1, head + 1)), lane
    assert database.counters.find_one({"_id": "outbox"}) is None   # no counter shared by every writer


def test_entries_of_before_the_lanes_are_relayed_first_in_their_old_order(db, kafka_bootstrap, kafka_connection,
                                                                          org_id):
    """An outbox written by the old version (one counter for every entry, no lane) still holds entries
    when the new relay starts: they go first, in their old order, then the new ones."""
    from shared.messaging.envelope import encode_value, new_event, record_headers

    client, database = db
    member = f"m-{uuid.uuid4().hex[:8]}"
    old = [new_event(MemberStatusChanged, {"organization_id": org_id, "member_id": member, "site_id": "s1",
                                           "from_status": "active", "to_status": "paused", "reason": f"n={n}"},
                     source="/recoverynet/test") for n in (1, 2, 3)]
    database.outbox.insert_many([  # as the old append_to_outbox wrote them; entry 1 was published already
        {"_id": evt.id, "seq": 10 + n, "topic": evt.topic, "key": evt.key, "type": evt.type,
         "value": encode_value(evt), "headers": [[k, v] for k, v in record_headers(evt)], "created_at": evt.time}
        for n, evt in enumerate(old)])
    database.counters.insert_many([{"_id": "outbox", "seq": 12}, {"_id": "outbox.published", "seq": 10}])
    database.members.insert_one({"_id": member, "n": 3})
    write_numbered(client, database, org_id, [member])  # n=4, in the member's lane
    assert outbox_backlog(database) == 3
    relay = OutboxRelay(database, lambda: make_producer(kafka_connection), service=f"legacy-{org_id}")
    with EventTap(kafka_bootstrap, [MEMBERS]) as tap:
        eventually(lambda: relay.publish_pending() == 0 and outbox_backlog(database) == 0, timeout=60)
        relay.close()
        events = tap.wait_for(lambda e: e.key == member, count=3, timeout=60)
    assert [e.data["reason"] for e in events] == ["n=2", "n=3", "n=4"]
