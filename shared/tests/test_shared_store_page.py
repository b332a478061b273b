"""Store against the real database: the total of a list is right whether it was counted or read off a short
last page (issue 16: a list that fits its page costs one database call, not two), or read with its page in one
query (``page_and_total``); reads and writes of one
document by ``{_id, ...equalities}`` answer as the query itself would (issue 20: by primary key, not a scan)."""
import uuid

import pytest
from pymongo import ASCENDING

from shared.mongo import connect
from shared.repository import Repository, Store

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def store(mongo_uri):
    client = connect(mongo_uri)
    db = client[f"test_page_{uuid.uuid4().hex[:8]}"]
    db.things.insert_many([{"_id": f"t{n:02d}", "org": "a", "n": n} for n in range(7)]
                          + [{"_id": f"u{n:02d}", "org": "b", "n": n} for n in range(3)])
    yield Store(db)
    client.drop_database(db.name)
    client.close()


@pytest.mark.parametrize(("skip", "limit", "ids", "total"), [
    (0, 50, [f"t{n:02d}" for n in range(7)], 7),   # fits one page: the page's length
    (0, 7, [f"t{n:02d}" for n in range(7)], 7),    # exactly full: counted
    (0, 3, ["t00", "t01", "t02"], 7),              # the first of several pages
    (3, 3, ["t03", "t04", "t05"], 7),
    (6, 3, ["t06"], 7),                            # the short last page: skip + its length
    (9, 3, [], 7),                                 # past the end: counted
    (0, 0, [f"t{n:02d}" for n in range(7)], 7),    # no limit: every one, their number
    (5, 0, ["t05", "t06"], 7),                     # no limit past a skip: skip + what is left
    (9, 0, [], 7),                                 # nothing left past the skip: counted
])
@pytest.mark.parametrize("read", ["page", "page_and_total"])
def test_a_page_and_its_total(store, read, skip, limit, ids, total):
    docs, counted = getattr(store, read)("things", {"org": "a"}, skip=skip, limit=limit, sort=[("n", ASCENDING)])
    assert [d["_id"] for d in docs] == ids and counted == total
    assert docs == list(store.db.things.find({"_id": {"$in": ids}}, sort=[("n", ASCENDING)]))   # whole documents


@pytest.mark.parametrize("read", ["page", "page_and_total"])
def test_an_empty_list_has_no_total(store, read):
    assert getattr(store, read)("things", {"org": "c"}, skip=0, limit=50, sort=[("n", ASCENDING)]) == ([], 0)


def test_a_scoped_read_by_id_answers_as_the_query_would(store):
    """Store.find_one reads ``{_id, organization_id, ...}`` by its primary key and checks the rest itself (the
    embedded database scans the collection for the query as it is): the answers are the query's own."""
    things = store.db.things
    things.insert_many([{"_id": "v1", "org": "a", "tags": ["x", "y"], "n": 1, "flag": True},
                        {"_id": "v2", "org": "a", "n": 1.0}])
    cases = [{"_id": "t01", "org": "a"}, {"_id": "t01", "org": "b"}, {"_id": "nope", "org": "a"},
             {"_id": "t01", "org": "a", "missing": "z"}, {"_id": "v1", "tags": "x"}, {"_id": "v1", "tags": "z"},
             {"_id": "v1", "flag": True}, {"_id": "v1", "flag": False}, {"_id": "v2", "n": 1}, {"_id": "v1", "n": True},
             {"_id": "t01", "org": {"$in": ["a"]}}, {"_id": "t01", "n": {"$gt": 0}, "org": "a"}, {"_id": "t01"},
             {"_id": "t01", "n": 1}, {"_id": "t01", "n": 2}, {"_id": "v2", "n": 1}, {"_id": "t01", "missing": None},
             {"_id": "t01", "org": None}, {"_id": "v1", "tags": None}, {"_id": "t01", "n": None}]
    for query in cases:
        assert store.find_one("things", query) == things.find_one(query), query
    assert store.find_one("things", {"_id": "t01", "org": "a"}, {"n": 1}) == {"_id": "t01", "n": 1}


def test_a_write_by_id_and_equalities_in_a_transaction_matches_as_the_query_would(store):
    """Store.update_one / replace_one in a transaction read the document by its primary key, check the other
    equalities, and write by _id alone: matched or not as the filter says, and only the matched one written."""
    repo = Repository(store.db.client, store.db, source="test")
    store.db.things.update_one({"_id": "t01"}, {"$set": {"version": 3, "alerted_at": None}})

    def in_transaction(write):
        return repo.transaction(lambda uow: write(Store.of(uow)))

    assert in_transaction(lambda st: st.update_one("things", {"_id": "t01", "org": "a", "version": 3},
                                                   {"$inc": {"version": 1}})) is True
    assert in_transaction(lambda st: st.update_one("things", {"_id": "t01", "org": "a", "version": 3},
                                                   {"$inc": {"version": 1}})) is False   # read at 3, now 4
    assert in_transaction(lambda st: st.update_one("things", {"_id": "t01", "org": "b"}, {"$set": {"n": 99}})) is False
    assert in_transaction(lambda st: st.update_one("things", {"_id": "t02", "alerted_at": None},
                                                   {"$set": {"alerted_at": "now"}})) is True   # missing counts as null
    assert in_transaction(lambda st: st.update_one("things", {"_id": "t02", "alerted_at": None},
                                                   {"$set": {"alerted_at": "again"}})) is False
    assert in_transaction(lambda st: st.replace_one("things", {"_id": "t03", "org": "a"}, {"org": "a", "n": 33})) is True
    assert in_transaction(lambda st: st.replace_one("things", {"_id": "t03", "org": "b"}, {"org": "b"})) is False
    assert store.db.things.find_one({"_id": "t01"})["version"] == 4
    assert store.db.things.find_one({"_id": "t01"})["n"] == 1
    assert store.db.things.find_one({"_id": "t02"})["alerted_at"] == "now"
    assert store.db.things.find_one({"_id": "t03"}) == {"_id": "t03", "org": "a", "n": 33}
    # outside a transaction: the filter as it is, same answers
    assert store.update_one("things", {"_id": "t04", "org": "a"}, {"$set": {"n": 44}}) is True
    assert store.update_one("things", {"_id": "t04", "org": "b"}, {"$set": {"n": 45}}) is False
    assert store.db.things.find_one({"_id": "t04"})["n"] == 44


def test_a_change_made_between_the_read_and_the_write_makes_the_transaction_try_again(store):
    """The guarantee a filter naming the version gave: a writer that read version 0 never writes over another's
    change. Here the other change lands after the transaction's read; the write conflicts, the transaction runs
    again, reads version 1 and does not match."""
    repo = Repository(store.db.client, store.db, source="test")
    store.db.things.update_one({"_id": "t05"}, {"$set": {"version": 0}})
    tries = []

    def work(uow):
        st = Store.of(uow)
        assert st.find_one("things", {"_id": "t05"}) is not None   # the transaction has read the document
        if not tries:
            store.db.things.update_one({"_id": "t05"}, {"$set": {"version": 1, "by": "the other"}})
        tries.append(1)
        return st.update_one("things", {"_id": "t05", "version": 0}, {"$set": {"by": "us"}, "$inc": {"version": 1}})

    assert repo.transaction(work) is False
    assert len(tries) == 2
    assert store.db.things.find_one({"_id": "t05"})["by"] == "the other"
