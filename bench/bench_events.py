"""Event throughput on the same broker and database:
- the consumer runner (decode, inbox + effects + the events they emit of up to 50 records of a partition
  in one transaction, offsets committed after) against a bare kafka-python consumer reading the same
  records; and the same runner with one record per transaction (batch_size=1), as it worked before;
- (issue 20) the same runner against the raw cost of what it must do: the bare read plus the same inbox,
  effect and outbox writes, 50 records' worth in one transaction;
- the outbox relay (read outbox, publish with the idempotent producer, mark sent) against a bare
  kafka-python producer sending the same records, and against reading its entries alone (the most a relay
  can do on this database, however well it overlaps reading and sending)."""
from __future__ import annotations

import time
import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pymongo import ASCENDING

from bench.common import Figure, rate, repeat
from shared.config import KafkaConnection
from shared.events.intake import MEMBERS, MemberStatusChanged
from shared.messaging.consumer import ConsumerRunner
from shared.messaging.envelope import encode_value, new_event, record_headers
from shared.messaging.kafka import ensure_topics, make_producer
from shared.messaging.outbox import OutboxRelay, lane_heads, outbox_backlog
from shared.mongo import connect, ensure_platform_indexes, utcnow
from shared.unit_of_work import run_in_transaction


def _events(n: int, org: str):
    return [new_event(MemberStatusChanged, {"organization_id": org, "member_id": f"m{i % 500}", "site_id": "s1",
                                            "from_status": "active", "to_status": "paused"}, source="/bench")
            for i in range(n)]


def _fill_topic(bootstrap: str, topic: str, events) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for evt in events:
        producer.send(topic, key=evt.key.encode(), value=encode_value(evt), headers=record_headers(evt))
    producer.flush()
    producer.close()


def _bare_consume(bootstrap: str, topic: str, n: int) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [0])]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    seen = 0
    while seen < n:
        for records in consumer.poll(timeout_ms=500).values():
            seen += len(records)
    consumer.close()


def _consume_rate(kafka: KafkaConnection, client, topic: str, n: int, batch_size: int) -> float:
    db = client[f"bench_consumer_{uuid.uuid4().hex[:6]}"]
    ensure_platform_indexes(db)

    def effect(evt, uow):  # one state write and one event, as matching's consumer does for a registration
        uow.db.effects.update_one({"_id": evt.data["member_id"]}, {"$inc": {"n": 1}}, upsert=True,
                                  session=uow.session)
        uow.emit(MemberStatusChanged, {**evt.data, "reason": evt.id})

    runner = ConsumerRunner(kafka=kafka, client=client, db=db, subscriptions={MemberStatusChanged: effect},
                            service=f"bench{uuid.uuid4().hex[:6]}", batch_size=batch_size)
    runner.topics = [topic]
    runner.consumer.subscribe([topic])
    while not runner.consumer.assignment():  # join first: the group join is not throughput
        runner.poll_once(100)
        if db.inbox.estimated_document_count():
            break
    already = db.inbox.count_documents({})

    def consume_all():
        while db.inbox.count_documents({}) < n:
            runner.poll_once(200)

    result = rate(n - already, consume_all)
    runner.close()
    client.drop_database(db.name)
    return result


def _transactional_writes(client, events, batch: int) -> float:
    """Seconds to write what the runner writes for ``events`` (inbox entry, the effect's update, the emitted
    event's outbox entry), ``batch`` records per transaction, with the platform's indexes."""
    db = client[f"bench_consumer_raw_{uuid.uuid4().hex[:6]}"]
    ensure_platform_indexes(db)
    db.create_collection("effects")
    now = utcnow()
    emitted = [new_event(MemberStatusChanged, {**evt.data, "reason": evt.id}, source="/bench") for evt in events]
    outbox = [{"_id": e.id, "topic": e.topic, "key": e.key, "type": e.type, "value": encode_value(e),
               "headers": [[k, v] for k, v in record_headers(e)], "created_at": now, "lane": None, "seq": i}
              for i, e in enumerate(emitted)]  # numbered as a lane would be (unique per (lane, seq))

    def write(chunk, entries):
        def work(session):
            for evt in chunk:
                db.effects.update_one({"_id": evt.data["member_id"]}, {"$inc": {"n": 1}}, upsert=True, session=session)
            db.inbox.insert_many([{"_id": evt.id, "type": evt.type, "handled_at": now} for evt in chunk],
                                 ordered=True, session=session)
            db.outbox.insert_many(entries, ordered=True, session=session)
        with client.start_session() as session:
            session.with_transaction(work)

    started = time.perf_counter()
    for i in range(0, len(events), batch):
        write(events[i:i + batch], outbox[i:i + batch])
    elapsed = time.perf_counter() - started
    client.drop_database(db.name)
    return elapsed


def run(runs: int, quick: bool, bootstrap: str, mongo_uri: str) -> list[Figure]:
    n = 1000 if quick else 5000
    client = connect(mongo_uri)
    kafka = KafkaConnection(bootstrap)  # ours; the bare baselines take the address as any client would
    figures = []

    # -- consumer runner vs bare consumer ---------------------------------------------------------
    # batch_size 50 is the runner as the services run it (one transaction per up to 50 records of a
    # partition); batch_size 1 is one transaction per record (how it worked before: bench/README.md).
    for batch_size, label in ((50, "events.consume+apply"), (1, "events.consume+apply, 1 record/transaction")):
        ours, bare = [], []
        for _ in range(runs):
            topic = f"bench.events.{uuid.uuid4().hex[:8]}"
            ensure_topics(kafka, {topic: {}})
            events = _events(n, "bench")
            _fill_topic(bootstrap, topic, events)
            bare.append(rate(n, lambda: _bare_consume(bootstrap, topic, n)))
            ours.append(_consume_rate(kafka, client, topic, n, batch_size))
        figures.append(Figure(label, "throughput", "events/s", ours, "bare kafka-python consumer", bare,
                              notes={"records": n, "batch_size": batch_size}))
        if batch_size > 1:
            # The raw cost of what the runner must do: read the records, write the same documents per batch
            # in a transaction. Measured after each run, on the same servers.
            transactional = [n / (n / read + _transactional_writes(client, _events(n, "bench"), batch_size))
                             for read in bare]
            figures.append(Figure(f"{label} vs transaction", "throughput", "events/s", ours,
                                  "bare read + same writes, 1 transaction/50", transactional,
                                  notes={"records": n, "batch_size": batch_size,
                                         "writes_per_record": "inbox entry, effect update, outbox entry"}))

    # -- outbox relay vs bare producer -----------------------------------------------------------
    ours, bare, bare_reads = [], [], []
    for _ in range(runs):
        # Pre-encoded, as the relay's entries are (encoding happened when the outbox was written).
        records = [(evt.key.encode(), encode_value(evt), record_headers(evt)) for evt in _events(n, "bench")]
        producer = make_producer(kafka)

        def bare_send():
            for key, value, headers in records:
                producer.send(MEMBERS, key=key, value=value, headers=headers)
            producer.flush()

        bare.append(rate(n, bare_send))
        producer.close()

        db = client[f"bench_relay_{uuid.uuid4().hex[:6]}"]
        ensure_platform_indexes(db)
        batch = _events(n, "bench")

        def write(uow, chunk):
            uow.events.extend(chunk)

        for i in range(0, n, 250):
            chunk = batch[i:i + 250]
            run_in_transaction(client, db, lambda uow, c=chunk: write(uow, c), source="/bench")
        # The database's part alone: every entry read, lane by lane in order, and nothing sent.
        bare_reads.append(rate(n, lambda: [list(db.outbox.find({"lane": lane}).sort("seq", ASCENDING))
                                           for lane in sorted(lane_heads(db))]))
        relay = OutboxRelay(db, lambda: make_producer(kafka), service=f"bench{uuid.uuid4().hex[:6]}")
        relay._producer_or_new()  # connect first: connecting is not throughput

        def drain():
            while outbox_backlog(db):
                relay.publish_pending()

        ours.append(rate(n, drain))
        relay.close()
        client.drop_database(db.name)
    figures.append(Figure("events.outbox relay", "throughput", "events/s", ours, "bare kafka-python producer", bare))
    figures.append(Figure("events.outbox relay vs reading its entries", "throughput", "events/s", ours,
                          "bare read of the same entries", bare_reads,
                          notes={"why": "the relay cannot beat reading its entries from the database"}))
    client.close()
    return figures
