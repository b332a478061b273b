"""The consumer runner applies one poll's records of a partition in one transaction (bench item 6), and
falls back to one record per transaction when a handler fails, so retries and dead letters stay per event;
a batch that runs out of time is halved, and a poll's work is bounded in time (the rest is fetched again).
Real broker and database; the shared UnitOfWork of a batch is what shows that records were batched."""
import time
import uuid

import pytest
from kafka import KafkaProducer

import shared.mongo
from shared.events.intake import MemberStatusChanged
from shared.messaging.consumer import ConsumerRunner, RetryPolicy
from shared.messaging.envelope import encode_value, new_event, record_headers
from shared.messaging.kafka import dead_letter_topic, ensure_topics
from shared.mongo import connect, ensure_platform_indexes
from shared.testing import eventually
from shared.testing.events import EventTap

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def service(mongo_uri, kafka_connection):
    name = f"batch{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_connection, {dead_letter_topic(f"recoverynet.{name}"): {}})
    client = connect(mongo_uri)
    db = client[f"test_batching_{name}"]
    ensure_platform_indexes(db)
    yield name, client, db
    client.drop_database(db.name)
    client.close()


def _events(org, members):
    return [new_event(MemberStatusChanged, {"organization_id": org, "member_id": m, "site_id": "s1",
                                            "from_status": "active", "to_status": "paused"}, source="/test")
            for m in members]


def _publish(bootstrap, events):
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    for evt in events:
        producer.send(evt.topic, key=b"same-key", value=encode_value(evt), headers=record_headers(evt))
    producer.flush()
    producer.close()


def _runner(kafka, client, db, name, handler):
    return ConsumerRunner(kafka=kafka, client=client, db=db, subscriptions={MemberStatusChanged: handler},
                          service=name, retry=RetryPolicy(attempts=3, first_delay_seconds=0.01))


def _counting_handler(*, slow_for: str, seconds: float):
    """Counts each member's effects; takes ``seconds`` for the members of this test (``slow_for`` prefix)
    only, as the topic holds other tests' records too."""
    def handler(evt, uow):
        if evt.data["member_id"].startswith(slow_for):
            time.sleep(seconds)
        uow.db.effects.update_one({"_id": evt.data["member_id"]}, {"$inc": {"n": 1}}, upsert=True, session=uow.session)
    return handler


def test_records_of_one_poll_share_one_transaction_and_each_applies_once(service, kafka_bootstrap, kafka_connection,
                                                                         org_id):
    name, client, db = service
    units: dict[str, set] = {}

    def handler(evt, uow):
        units.setdefault(evt.id, set()).add(id(uow))
        uow.db.effects.update_one({"_id": evt.data["member_id"]}, {"$inc": {"n": 1}}, upsert=True, session=uow.session)

    # The topic may hold other tests' records (a new group starts from the beginning): count only ours.
    tag = uuid.uuid4().hex[:8]
    events = _events(org_id, [f"{tag}-m{i}" for i in range(20)])
    ids = [e.id for e in events]
    _publish(kafka_bootstrap, events + events[:3])  # three redelivered (same ce_id)
    runner = _runner(kafka_connection, client, db, name, handler)
    try:
        eventually(lambda: runner.poll_once(200) is not None
                   and db.inbox.count_documents({"_id": {"$in": ids}}) == 20, timeout=60)
        runner.poll_once(500)  # anything left over changes nothing
    finally:
        runner.close()
    assert sorted(d["n"] for d in db.effects.find({"_id": {"$regex": f"^{tag}-"}})) == [1] * 20
    together = {}
    for evt_id, uows in units.items():
        for u in uows:
            together.setdefault(u, set()).add(evt_id)
    assert max(len(ids) for ids in together.values()) > 1, "no two records were applied in one transaction"


def test_a_failing_handler_in_a_batch_dead_letters_that_event_only(service, kafka_bootstrap, kafka_connection, org_id):
    name, client, db = service

    tag = uuid.uuid4().hex[:8]

    def handler(evt, uow):
        if evt.data["member_id"] == f"{tag}-poison":  # this test's only: the topic holds other tests' events too
            raise ValueError("this handler rejects the data")
        uow.db.effects.update_one({"_id": evt.data["member_id"]}, {"$inc": {"n": 1}}, upsert=True, session=uow.session)

    members = [f"{tag}-m{i}" for i in range(5)] + [f"{tag}-poison"] + [f"{tag}-m{i}" for i in range(5, 10)]
    events = _events(org_id, members)
    ids = [e.id for e in events]
    poison = events[5]
    runner = _runner(kafka_connection, client, db, name, handler)
    try:
        with EventTap(kafka_bootstrap, [dead_letter_topic(f"recoverynet.{name}")]) as tap:
            _publish(kafka_bootstrap, events)
            eventually(lambda: runner.poll_once(200) is not None
                       and db.inbox.count_documents({"_id": {"$in": ids}}) == 10, timeout=60)
            # A new group reads the topic from the start: other tests' malformed records land here too,
            # so wait for ours, not for any dead letter.
            def our_dead_letters():
                return [r for r in tap.records if dict(r.headers).get("ce_id", b"").decode() in ids]
            eventually(our_dead_letters, timeout=30)
            runner.poll_once(500)
            ours = our_dead_letters()
            assert len(ours) == 1
            headers = dict(ours[0].headers)
            assert headers["ce_id"].decode() == poison.id and headers["x-dlq-attempts"] == b"3"
    finally:
        runner.close()
    mine = list(db.effects.find({"_id": {"$regex": f"^{tag}-"}}))
    assert sorted(d["_id"] for d in mine) == sorted(m for m in members if m != f"{tag}-poison")
    assert {d["n"] for d in mine} == {1}
    assert db.inbox.find_one({"_id": poison.id}) is None


def test_a_batch_that_runs_out_of_time_is_applied_again_in_smaller_batches(service, kafka_bootstrap, kafka_connection,
                                                                            org_id, monkeypatch):
    name, client, db = service
    # A transaction may take 2 s here (10 s in production): our events take 0.1 s each, so 20 or more of
    # them in one transaction run out of time, as a slow database makes a 50-event batch do.
    monkeypatch.setattr(shared.mongo, "transaction_time_limit", lambda _client: 2.0)
    tag = uuid.uuid4().hex[:8]

    handler = _counting_handler(slow_for=tag, seconds=0.1)

    events = _events(org_id, [f"{tag}-m{i}" for i in range(40)])
    ids = [e.id for e in events]
    _publish(kafka_bootstrap, events)
    runner = _runner(kafka_connection, client, db, name, handler)
    try:
        eventually(lambda: runner.poll_once(200) is not None
                   and db.inbox.count_documents({"_id": {"$in": ids}}) == 40, timeout=120)
    finally:
        runner.close()
    assert runner._batch_now < runner.batch_size  # it shrank (and grows back after good batches)
    assert sorted(d["n"] for d in db.effects.find({"_id": {"$regex": f"^{tag}-"}})) == [1] * 40


def test_a_poll_whose_time_is_up_leaves_the_rest_to_the_next_poll_and_nothing_is_lost_or_doubled(
        service, kafka_bootstrap, kafka_connection, org_id):
    name, client, db = service
    tag = uuid.uuid4().hex[:8]

    handler = _counting_handler(slow_for=tag, seconds=0.05)

    events = _events(org_id, [f"{tag}-m{i}" for i in range(30)])
    ids = [e.id for e in events]
    _publish(kafka_bootstrap, events)
    runner = ConsumerRunner(kafka=kafka_connection, client=client, db=db,
                            subscriptions={MemberStatusChanged: handler}, service=name, batch_size=5,
                            poll_budget_seconds=0.2)
    polled, real_poll = [], runner.consumer.poll

    def counting_poll(*args, **kwargs):  # the real consumer's poll; we count what it returned
        batches = real_poll(*args, **kwargs)
        polled.append(sum(len(records) for records in batches.values()))
        return batches

    runner.consumer.poll = counting_poll
    handled = []
    try:
        eventually(lambda: handled.append(runner.poll_once(200)) is None
                   and db.inbox.count_documents({"_id": {"$in": ids}}) == 30, timeout=120)
    finally:
        runner.close()
    assert any(done < got for done, got in zip(handled, polled)), "no poll was cut short"
    assert sorted(d["n"] for d in db.effects.find({"_id": {"$regex": f"^{tag}-"}})) == [1] * 30


def test_a_handlers_prepare_reads_for_the_whole_batch_in_its_transaction(service, kafka_bootstrap, kafka_connection,
                                                                         org_id):
    """issue 20: a handler's ``prepare(events, uow)`` runs once per batch, before its events, in the same
    transaction, with the events not handled before; a record applied alone (no batch) needs no prepare."""
    name, client, db = service
    tag = uuid.uuid4().hex[:8]
    prepared: list[tuple[int, list[str]]] = []
    applied: dict[str, tuple[int, bool]] = {}

    def prepare(events, uow):
        prepared.append((id(uow), [e.id for e in events]))
        uow.ready = {e.data["member_id"] for e in events}

    def handler(evt, uow):
        applied[evt.id] = (id(uow), evt.data["member_id"] in getattr(uow, "ready", ()))
        uow.db.effects.update_one({"_id": evt.data["member_id"]}, {"$inc": {"n": 1}}, upsert=True, session=uow.session)
    handler.prepare = prepare

    events = _events(org_id, [f"{tag}-m{i}" for i in range(20)])
    ids = [e.id for e in events]
    _publish(kafka_bootstrap, events + events[:3])  # three redelivered (same ce_id)
    runner = _runner(kafka_connection, client, db, name, handler)
    try:
        eventually(lambda: runner.poll_once(200) is not None
                   and db.inbox.count_documents({"_id": {"$in": ids}}) == 20, timeout=60)
        runner.poll_once(500)
    finally:
        runner.close()
    assert sorted(d["n"] for d in db.effects.find({"_id": {"$regex": f"^{tag}-"}})) == [1] * 20
    ours = set(ids)
    batches = [(u, [i for i in evt_ids if i in ours]) for u, evt_ids in prepared]
    batches = [(u, evt_ids) for u, evt_ids in batches if evt_ids]
    assert batches, "no batch was prepared"
    assert max(len(evt_ids) for _, evt_ids in batches) > 1  # one prepare for several events
    in_batches = {i for _, evt_ids in batches for i in evt_ids}
    assert all(applied[i][1] for i in in_batches)  # their handler found what prepare read, in its transaction
