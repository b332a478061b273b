"""Writes to several documents (shared.mongo.update_many / delete_many / update_each) never stop the embedded
database: each is made while a transaction holds a write on one of its documents and then writes again to the
same collection, as a consumer's transaction does while a sender claims due deliveries.

A plain ``collection.update_many`` outside a transaction does stop SecantusDB 0.7.0b3 there (the transaction
waits for the collection lock the update holds while it retries the conflict; every later command queues
behind them; the whole suite's database stopped in CI on 2026-11-30). So these tests run against a database
of their own: a regression fails here, at the client's 30 s socket timeout, not everywhere else."""
from __future__ import annotations

import threading
import time

import pytest

from shared import mongo
from shared.devstack.servers import EmbeddedMongo
from shared.repository import Repository, Store

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def client():
    server = EmbeddedMongo().start()
    client = mongo.connect(server.uri, timeout_ms=2000)   # socket timeout 30 s: a stopped server fails the test
    yield client
    client.close()
    server.stop()


@pytest.fixture
def things(client, request):
    coll = client.test_many_writes[request.node.name[:40]]
    coll.insert_many([{"_id": n, "status": "due"} for n in range(5)])
    return coll


def _while_a_transaction_holds_doc_1(client, coll, write) -> float:
    """A transaction changes document 1; ``write`` starts in another thread; the transaction then writes to
    the collection again and commits. Returns the seconds its second write and commit took."""
    with client.start_session() as session:
        session.start_transaction()
        coll.update_one({"_id": 1}, {"$set": {"status": "changed in the transaction"}}, session=session)
        thread = threading.Thread(target=write)
        thread.start()
        time.sleep(0.3)   # the write meets the transaction's change (it conflicts, or waits, meanwhile)
        started = time.monotonic()
        coll.insert_one({"_id": 99}, session=session)
        session.commit_transaction()
        took = time.monotonic() - started
        thread.join(30)
    assert not thread.is_alive(), "the write never finished"
    return took


def test_update_many_outside_a_transaction_lets_the_transaction_finish(client, things):
    committed = _while_a_transaction_holds_doc_1(
        client, things, lambda: mongo.update_many(things, {"status": "due"}, {"$set": {"status": "taken"}}))
    assert committed < 5
    # run after the commit (retried on the conflict): the transaction's change stands, the rest are taken
    assert {d["_id"]: d["status"] for d in things.find({"_id": {"$lt": 5}})} == {
        0: "taken", 1: "changed in the transaction", 2: "taken", 3: "taken", 4: "taken"}


def test_delete_many_outside_a_transaction_lets_the_transaction_finish(client, things):
    committed = _while_a_transaction_holds_doc_1(client, things, lambda: mongo.delete_many(things, {"status": "due"}))
    assert committed < 5
    assert sorted(d["_id"] for d in things.find()) == [1, 99]


def test_update_each_lets_the_transaction_finish_and_skips_what_no_longer_matches(client, things):
    committed = _while_a_transaction_holds_doc_1(
        client, things, lambda: mongo.update_each(things, [0, 1, 2], {"status": "due"}, {"$set": {"status": "taken"}}))
    assert committed < 5
    assert {d["_id"]: d["status"] for d in things.find({"_id": {"$lt": 5}})} == {
        0: "taken", 1: "changed in the transaction", 2: "taken", 3: "due", 4: "due"}


def test_in_a_unit_of_work_they_are_part_of_its_transaction(client, things):
    """Store.update_many / delete_many in a unit of work write in its transaction: undone with it."""
    repo = Repository(client, things.database, source="test")

    def work(uow):
        st = Store.of(uow)
        assert st.update_many(things.name, {"_id": {"$in": [0, 1]}}, {"$set": {"status": "taken"}}) == 2
        assert st.delete_many(things.name, {"_id": 4}) == 1
        raise RuntimeError("undo")

    with pytest.raises(RuntimeError):
        repo.transaction(work)
    assert [d["status"] for d in things.find(sort=[("_id", 1)])] == ["due"] * 5


def test_nothing_else_writes_several_documents_directly():
    """Every many-document write goes through shared.mongo (or Store, which calls it): none is made on a
    collection directly, where nothing would keep it inside a transaction."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    sources = [p for p in [*root.glob("services/*/*/**/*.py"), *root.glob("shared/**/*.py")]
               if "tests" not in p.relative_to(root).parts and p != root / "shared" / "mongo.py"]
    assert len(sources) > 50
    direct = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            many_call = (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                         and node.func.attr in ("update_many", "delete_many")
                         and not isinstance(node.func.value, ast.Name))   # db.things.update_many, not st.update_many
            many_op = isinstance(node, ast.Name) and node.id in ("UpdateMany", "DeleteMany")
            if many_call or many_op:
                direct.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not direct, f"write several documents through shared.mongo or Store: {direct}"
