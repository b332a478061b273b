"""The unit of work against the real database: a transaction that runs out of time is ended on the server,
so the documents it wrote are free at once for the next writer (before, its locks stayed until the
server's transaction lifetime ran out, and every writer of those documents timed out meanwhile)."""
import threading
import time
import uuid

import pytest
from pymongo.errors import ExecutionTimeout

from shared import mongo
from shared.events.intake import MemberStatusChanged
from shared.messaging.outbox import OUTBOX_COMMITTED
from shared.mongo import connect, ensure_platform_indexes
from shared.repository import Store
from shared.unit_of_work import run_in_transaction

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def db(mongo_uri):
    client = connect(mongo_uri)
    database = client[f"test_uow_{uuid.uuid4().hex[:8]}"]
    ensure_platform_indexes(database)
    database.counters.insert_one({"_id": "c", "n": 0})
    yield client, database
    client.drop_database(database.name)
    client.close()


def _add(n, *, pause=0.0):
    def work(uow):
        uow.db.counters.update_one({"_id": "c"}, {"$inc": {"n": n}}, session=uow.session)
        time.sleep(pause)
        uow.db.counters.find_one({"_id": "c"}, session=uow.session)  # after the pause: past the time limit
    return work


def test_a_transaction_out_of_time_is_aborted_on_the_server_and_frees_what_it_wrote(db, mongo_uri, monkeypatch):
    client, database = db
    monkeypatch.setattr(mongo, "transaction_time_limit", lambda _client: 1.0)
    with pytest.raises(ExecutionTimeout):
        run_in_transaction(client, database, _add(1, pause=1.5), source="/test")

    # Another client (another process's pool: the timed-out session is not reused by it) writes the same document.
    other = connect(mongo_uri)
    try:
        monkeypatch.setattr(mongo, "transaction_time_limit", lambda _client: 5.0)
        started = time.monotonic()
        run_in_transaction(other, other[database.name], _add(10), source="/test")
        waited = time.monotonic() - started
    finally:
        other.close()
    assert database.counters.find_one({"_id": "c"})["n"] == 10  # the timed-out write is not there
    assert waited < 3, f"the next writer waited {waited:.1f} s for the abandoned transaction"


def test_writers_of_one_document_conflict_and_are_retried_until_all_are_counted(db):
    client, database = db
    errors = []

    def writer():
        try:
            for _ in range(5):
                run_in_transaction(client, database, _add(1), source="/test")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and database.counters.find_one({"_id": "c"})["n"] == 20


def test_what_waits_for_the_commit_runs_once_per_key_inside_the_transaction(db):
    """``uow.before_commit``: run once per key after the work, in its transaction (undone with it)."""
    client, database = db
    database.create_collection("things")

    def fail_now():
        raise RuntimeError("undo")

    def work(uow, fail=False):
        for _ in range(3):
            uow.before_commit("gathered", lambda: database.things.insert_one({"_id": "gathered"}, session=uow.session))
        uow.before_commit("other", lambda: database.things.insert_one({"_id": "other"}, session=uow.session))
        assert database.things.count_documents({}, session=uow.session) == 0   # not yet: after the work
        if fail:   # after the inserts ran, in the transaction: they are undone with it
            uow.before_commit("fails", fail_now)

    with pytest.raises(RuntimeError):
        run_in_transaction(client, database, lambda uow: work(uow, fail=True), source="/test")
    assert database.things.count_documents({}) == 0
    run_in_transaction(client, database, work, source="/test")
    assert sorted(d["_id"] for d in database.things.find()) == ["gathered", "other"]


def test_a_commit_with_events_wakes_this_processs_relays_and_one_without_does_not(db):
    """A worker's relay waits on OUTBOX_COMMITTED as well as its poll: what the worker's own consumer and
    jobs commit goes out at once, while the relay polls slowly when nothing comes (shared.worker)."""
    client, database = db
    woken = OUTBOX_COMMITTED.listener()
    run_in_transaction(client, database, _add(1), source="/test")
    assert not woken.is_set()

    def emitting(uow):
        _add(1)(uow)
        uow.emit(MemberStatusChanged, {"organization_id": "org-uow", "member_id": "m-1", "site_id": "s1",
                                       "from_status": "active", "to_status": "paused"})
    run_in_transaction(client, database, emitting, source="/test")
    assert woken.is_set()
    assert database.outbox.count_documents({}) == 1  # set after the commit: the entry is there to read


def test_a_read_is_remembered_per_unit_of_work_until_a_write_forgets_it(db):
    """``Store.remembered``: the handlers of one transaction share a read (one round trip per consumer batch);
    ``forget`` makes the next one read again; the next transaction reads afresh; a plain reader always reads."""
    client, database = db
    reads = []

    def read(store):
        reads.append(1)
        return store.find_one("counters", {"_id": "c"})["n"]

    def work(uow):
        first, second = Store.of(uow), Store.of(uow)
        assert [first.remembered("n", lambda: read(first)), second.remembered("n", lambda: read(second))] == [0, 0]
        assert len(reads) == 1
        second.update_one("counters", {"_id": "c"}, {"$inc": {"n": 5}})
        second.forget("n")
        assert first.remembered("n", lambda: read(first)) == 5 and len(reads) == 2
        # a read ahead that serves one use: taken, then read again
        second.remember("ahead", 7)
        assert first.take("ahead") == 7 and first.take("ahead") is None

    run_in_transaction(client, database, work, source="/test")
    run_in_transaction(client, database, lambda uow: Store.of(uow).remembered("n", lambda: read(Store.of(uow))),
                       source="/test")
    assert len(reads) == 3
    plain = Store(database)
    plain.remembered("n", lambda: read(plain)), plain.remembered("n", lambda: read(plain))
    assert len(reads) == 5
