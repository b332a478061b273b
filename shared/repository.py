"""The base every service's ``repository.py`` builds on: the only road to MongoDB.

Two names, the same in every service:

- ``Store``: the reads and writes of one unit of work (``Store.of(uow)``, bound to its transaction) or
  of a plain read (``Store(db)``, no session). A service subclasses it with its own named queries
  (``store.member(org, id)``, ``store.save_leader(...)``); ``$`` operators and pymongo live there only.
- ``Repository``: the entry points' handle (the HTTP view, the consumer, a job). ``transaction(work)``
  runs ``work(uow)`` in one MongoDB transaction and writes the events it emitted to the outbox in the
  same transaction; ``reader()`` gives a ``Store`` for plain reads. Use cases never open a transaction:
  they receive the unit of work (or a reader) from the entry point.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Iterable, TypeVar

from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from shared import mongo
from shared.audit import audit_entry, record
from shared.errors import Conflict
from shared.mongo import ensure_platform_indexes, find_in
from shared.unit_of_work import UnitOfWork, run_in_transaction

T = TypeVar("T")
S = TypeVar("S", bound="Store")


def ensure_collections(db: Database, names: Iterable[str]) -> None:
    """Create the collections a service writes (with the platform's own: outbox, inbox, ...): a
    transaction cannot always create a collection on its first write."""
    ensure_platform_indexes(db)
    existing = set(db.list_collection_names())
    for name in names:
        if name not in existing:
            db.create_collection(name)


class Store:
    """Reads and writes of one unit of work (``session`` set) or of a plain read (``session`` None)."""

    collections: ClassVar[tuple[str, ...]] = ()

    def __init__(self, db: Database, session=None, reads: dict | None = None):
        self.db, self.session = db, session
        self._reads = reads  # the unit of work's shared reads (None for a plain read: nothing remembered)

    @classmethod
    def of(cls: type[S], uow: UnitOfWork) -> S:
        return cls(uow.db, uow.session, uow.reads)

    def remembered(self, key: Any, read: Callable[[], T]) -> T:
        """``read()`` once per unit of work, shared by its handlers (each read is a round trip in a consumer
        batch's path); read every time by a plain reader. A write that changes it must ``forget(key)``."""
        if self._reads is None:
            return read()
        if key not in self._reads:
            self._reads[key] = read()
        return self._reads[key]

    def remember(self, key: Any, value: Any) -> None:
        """What a read of ``key`` would now return (read ahead for a batch, or just written)."""
        if self._reads is not None:
            self._reads[key] = value

    def forget(self, key: Any) -> None:
        if self._reads is not None:
            self._reads.pop(key, None)

    def take(self, key: Any) -> Any:
        """What was remembered for ``key`` (None when nothing was), forgotten as it is taken: a read ahead that
        serves one use."""
        return None if self._reads is None else self._reads.pop(key, None)

    def find_one(self, coll: str, query: dict, projection: dict | None = None) -> dict | None:
        if projection is None and isinstance(query.get("_id"), str) and len(query) > 1:
            return self._find_one_by_id(coll, query)
        return self.db[coll].find_one(query, projection, session=self.session)

    def _find_one_by_id(self, coll: str, query: dict) -> dict | None:
        """``{"_id": x, "organization_id": o, ...}`` read by its primary key, the other equalities checked here.

        Why: the embedded database (SecantusDB) uses an index only when it holds every field a query names, so
        the usual scoped read by id scanned the whole collection (a member's page read every member). The
        answer is the same as the query's: a condition this cannot check exactly (an operator, a dotted
        field, an array, a value of another type) sends the query to the database as it is."""
        rest = {k: v for k, v in query.items() if k != "_id"}
        if any("." in k or k.startswith("$") or not (v is None or isinstance(v, (str, bool, int)))
               for k, v in rest.items()):
            return self.db[coll].find_one(query, session=self.session)
        doc = self.db[coll].find_one({"_id": query["_id"]}, session=self.session)
        if doc is None:
            return None
        for k, v in rest.items():
            found = doc.get(k)
            if v is None:   # {field: None}: missing or null (an array holding a null: the database decides)
                if found is None:
                    continue
                if isinstance(found, list):
                    return self.db[coll].find_one(query, session=self.session)
                return None
            if type(found) is not type(v):   # missing, an array, a number of another type: the database's rules decide
                return self.db[coll].find_one(query, session=self.session)
            if found != v:
                return None
        return doc

    # One document named by its _id and other equalities (a version, the organization, a state), written in
    # a transaction: read by its primary key and written by _id alone, because the embedded database scans the
    # whole collection for a write whose filter names more than the _id (once per write: a member's update
    # read every member). The outcome is the same: the read sees the transaction's snapshot, and a change
    # made to the document since by anyone else makes the write conflict, so the transaction is tried again.
    def update_one(self, coll: str, query: dict, update: dict) -> bool:
        """``update_one`` of ``{"_id": x, ...equalities}``; whether a document matched."""
        return self._write_one(coll, query, lambda where: self.db[coll].update_one(where, update, session=self.session))

    def replace_one(self, coll: str, query: dict, doc: dict) -> bool:
        """``replace_one`` of ``{"_id": x, ...equalities}``; whether a document matched."""
        return self._write_one(coll, query, lambda where: self.db[coll].replace_one(where, doc, session=self.session))

    def _write_one(self, coll: str, query: dict, write: Callable[[dict], Any]) -> bool:
        if self.session is not None and self.session.in_transaction and isinstance(query.get("_id"), str) \
                and len(query) > 1:
            if self._find_one_by_id(coll, query) is None:
                return False
            write({"_id": query["_id"]})
            return True
        return write(query).matched_count == 1

    def find(self, coll: str, query: dict, *, sort=None, skip: int = 0, limit: int = 0,
             projection: dict | None = None) -> list[dict]:
        cursor = self.db[coll].find(query, projection, session=self.session)
        if sort:
            cursor = cursor.sort(sort)
        if skip:
            cursor = cursor.skip(skip)
        if limit:
            cursor = cursor.limit(limit)
        return list(cursor)

    def find_in(self, coll: str, field: str, values: list, *, query: dict | None = None,
                projection: dict | None = None) -> list[dict]:
        return find_in(self.db[coll], field, values, query=query, projection=projection, session=self.session)

    def page(self, coll: str, query: dict, *, skip: int, limit: int, sort,
             projection: dict | None = None) -> tuple[list[dict], int]:
        """One page of a list and the total it was cut from. The total is counted only when the page cannot
        tell it: a page shorter than ``limit`` (or every document past ``skip``: ``limit`` 0), and not empty
        past the end, is the list's last, so the total is ``skip`` + its length (one database call instead of
        two for most lists a page shows)."""
        docs = self.find(coll, query, sort=sort, skip=skip, limit=limit, projection=projection)
        if (not limit or len(docs) < limit) and (docs or not skip):
            return docs, skip + len(docs)
        return docs, self.db[coll].count_documents(query, session=self.session)

    def page_and_total(self, coll: str, query: dict, *, skip: int, limit: int, sort) -> tuple[list[dict], int]:
        """``page``'s answer in one query (a ``$facet`` of the page and the count): for a list bounded by an
        organization's people, whose total a page nearly always needs (the first page of a site's members is
        full). The embedded database counts by reading every matching document again (5 of a members list's
        14 ms of database for a coordinator's 46 members), so one query costs about 60 % of the two. Not for
        logs that grow without bound (audit, deliveries): the facet reads every matching document, where
        ``page`` reads a page and counts only when the page cannot tell the total."""
        items = [{"$skip": skip}, *([{"$limit": limit}] if limit else [])]
        found = next(self.db[coll].aggregate(
            [{"$match": query}, {"$sort": dict(sort)}, {"$facet": {"items": items, "total": [{"$count": "n"}]}}],
            session=self.session), {})
        counted = found.get("total") or [{"n": 0}]
        return found.get("items", []), counted[0]["n"]

    def count(self, coll: str, query: dict) -> int:
        return self.db[coll].count_documents(query, session=self.session)

    def upsert(self, coll: str, _id: str, fields: dict, on_insert: dict | None = None) -> None:
        update: dict[str, Any] = {"$set": fields}
        if on_insert:
            update["$setOnInsert"] = on_insert
        self.db[coll].update_one({"_id": _id}, update, upsert=True, session=self.session)

    # Several documents at once: in the unit of work's transaction, or in one of their own (shared.mongo says why).
    def update_many(self, coll: str, query: dict, update: dict, **options) -> int:
        return mongo.update_many(self.db[coll], query, update, session=self.session, **options)

    def delete_many(self, coll: str, query: dict) -> int:
        return mongo.delete_many(self.db[coll], query, session=self.session)

    def update_each(self, coll: str, ids: list, query: dict, update: dict) -> None:
        mongo.update_each(self.db[coll], ids, query, update, session=self.session)

    def audit(self, principal, action: str, resource_type: str, resource_id: str, organization_id: str,
              **details) -> None:
        """Who read or changed a member's record (ids and field names only), in the same transaction as
        a change when the store is bound to one."""
        record(self.db, audit_entry(principal, action, resource_type, resource_id, organization_id, **details),
               session=self.session)

    @classmethod
    def ensure_collections(cls, db: Database) -> None:
        ensure_collections(db, cls.collections)


class Repository:
    """The entry points' handle on a service's database: opens units of work, hands out readers."""

    def __init__(self, client: MongoClient, db: Database, *, source: str, store: type[Store] = Store,
                 retry_duplicates: bool = False):
        self.client, self.db, self.source, self.store = client, db, source, store
        self.retry_duplicates = retry_duplicates

    def transaction(self, work: Callable[[UnitOfWork], T]) -> T:
        """Run ``work(uow)`` in one transaction; events emitted on ``uow`` go to the outbox with it.

        With ``retry_duplicates``, a unique-index clash (two requests claiming the same email at once)
        runs the work again, so the loser sees the winner's record and answers the usual 409."""
        try:
            for attempt in Retrying(stop=stop_after_attempt(3 if self.retry_duplicates else 1),
                                    retry=retry_if_exception_type(DuplicateKeyError), reraise=True):
                with attempt:
                    return run_in_transaction(self.client, self.db, work, source=self.source)
        except DuplicateKeyError:
            if self.retry_duplicates:
                raise Conflict("The same record was written concurrently; read it and try again.") from None
            raise
        raise AssertionError("unreachable")

    def reader(self) -> Store:
        """A store for plain reads outside a transaction (lists, feeds, pages)."""
        return self.store(self.db)


def read_model_key(organization_id: str, ident: str) -> str:
    """The ``_id`` of a read-model copy of another service's object (ids are unique per organization
    only as far as we know, so the organization is part of the key)."""
    return f"{organization_id}:{ident}"


def site_scope(field: str, site_filter: list[str] | None, site_id: str | None = None) -> dict:
    """The query clause that keeps a list inside the caller's sites: ``site_filter`` is
    ``Principal.site_filter()`` (None: every site of the organization), ``site_id`` an optional
    narrowing asked for by the caller. A site outside the caller's filter matches nothing."""
    if site_id is not None:
        if site_filter is not None and site_id not in site_filter:
            return {field: {"$in": []}}
        return {field: site_id}
    if site_filter is not None:
        return {field: any_of(site_filter)}  # one site (most coordinators): an equality
    return {}


def any_of(values) -> Any:
    """The query value for "one of ``values``": an equality when there is one. The embedded database's
    planner uses an index for a query with at most one ``$in``, on the last field of the index it uses."""
    values = list(values)
    return values[0] if len(values) == 1 else {"$in": values}
