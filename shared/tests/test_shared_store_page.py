"""Store.page against the real database: the total of a list is right whether it was counted or read off a
short last page (issue 16: a list that fits its page costs one database call, not two)."""
import uuid

import pytest
from pymongo import ASCENDING

from shared.mongo import connect
from shared.repository import Store

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
])
def test_a_page_and_its_total(store, skip, limit, ids, total):
    docs, counted = store.page("things", {"org": "a"}, skip=skip, limit=limit, sort=[("n", ASCENDING)])
    assert [d["_id"] for d in docs] == ids and counted == total


def test_an_empty_list_has_no_total(store):
    assert store.page("things", {"org": "c"}, skip=0, limit=50, sort=[("n", ASCENDING)]) == ([], 0)


def test_a_scoped_read_by_id_answers_as_the_query_would(store):
    """Store.find_one reads ``{_id, organization_id, ...}`` by its primary key and checks the rest itself (the
    embedded database scans the collection for the query as it is): the answers are the query's own."""
    things = store.db.things
    things.insert_many([{"_id": "v1", "org": "a", "tags": ["x", "y"], "n": 1, "flag": True},
                        {"_id": "v2", "org": "a", "n": 1.0}])
    cases = [{"_id": "t01", "org": "a"}, {"_id": "t01", "org": "b"}, {"_id": "nope", "org": "a"},
             {"_id": "t01", "org": "a", "missing": "z"}, {"_id": "v1", "tags": "x"}, {"_id": "v1", "tags": "z"},
             {"_id": "v1", "flag": True}, {"_id": "v1", "flag": False}, {"_id": "v2", "n": 1}, {"_id": "v1", "n": True},
             {"_id": "t01", "org": {"$in": ["a"]}}, {"_id": "t01", "n": {"$gt": 0}, "org": "a"}, {"_id": "t01"}]
    for query in cases:
        assert store.find_one("things", query) == things.find_one(query), query
    assert store.find_one("things", {"_id": "t01", "org": "a"}, {"n": 1}) == {"_id": "t01", "n": 1}
