"""MongoDB access shared by every repository: the client, what "unavailable" means, chunked ``$in``
queries, writes to several documents, the transaction time limit and the collections every service has.
Imports nothing of ours: the unit of work (state and events in one transaction) is ``shared.unit_of_work``.

Only each service's ``repository.py`` (and the shared outbox/inbox/consumer plumbing) call this.
"""
from __future__ import annotations

from datetime import datetime, timezone

from pymongo import ASCENDING, MongoClient, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, ExecutionTimeout, OperationFailure, ServerSelectionTimeoutError

# Errors that mean "the database is not there right now", as opposed to a bad request or a bug:
# the web answers 503 with Retry-After, workers wait and try again (never dead-letter for these).
UNAVAILABLE_ERRORS = (ConnectionFailure, ServerSelectionTimeoutError, ExecutionTimeout)


def is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return True
    # Fail points and stepping-down primaries surface as these codes.
    return isinstance(exc, OperationFailure) and exc.code in (
        6, 7, 89, 91, 189, 91, 10107, 11600, 11602, 13435, 13436, 262,
    )


IN_CHUNK = 100


def find_in(collection, field: str, values: list, *, query: dict | None = None, projection: dict | None = None,
            session: ClientSession | None = None) -> list[dict]:
    """Documents whose ``field`` is one of ``values`` (and that match ``query``), asked ``IN_CHUNK`` values
    at a time: the embedded database matches ``$in`` in time quadratic in the list (100 ids: 11 ms; 1,000:
    0.8 s; 5,000: 18 s); real MongoDB does not mind the chunks."""
    found: list[dict] = []
    for start in range(0, len(values), IN_CHUNK):
        chunk = values[start:start + IN_CHUNK]
        found.extend(collection.find({**(query or {}), field: {"$in": chunk}}, projection, session=session))
    return found


# Writes to several documents run in a transaction (the caller's or one of their own). The embedded database
# (SecantusDB 0.7.0b3) keeps a collection's lock while a many-document write made outside a transaction
# retries a write conflict; the transaction it conflicts with needs that lock for its next write, so neither
# ever ends and every connection queues behind them: the whole server stopped (CI, 2026-11-30: a worker's
# claim of due deliveries against a consumer transaction that had just woken one of them). In a transaction
# the conflict aborts it and it is tried again; a one-document write retries without holding the lock.
# shared/tests/test_shared_many_writes.py holds each helper to that; real MongoDB has no such stall.

def update_many(collection, query: dict, update: dict, *, session: ClientSession | None = None,
                **options) -> int:
    """``update_many`` in ``session``'s transaction, or in a transaction of its own; how many it changed."""
    return _in_a_transaction(collection, session, lambda s: collection.update_many(
        query, update, session=s, **options).modified_count)


def delete_many(collection, query: dict, *, session: ClientSession | None = None) -> int:
    """``delete_many`` in ``session``'s transaction, or in a transaction of its own; how many it deleted."""
    return _in_a_transaction(collection, session, lambda s: collection.delete_many(query, session=s).deleted_count)


def update_each(collection, ids: list, query: dict, update: dict, *, session: ClientSession | None = None) -> None:
    """Update each document of ``ids`` that (still) matches ``query``, ``IN_CHUNK`` ids a statement, in
    ``session``'s transaction or one of its own (a worker claiming or giving back its batch). Not one
    statement per document: the embedded database answers each ``{_id, ...range}`` statement by scanning the
    collection (a claim of 50 due deliveries: ~1 s at 2,000 deliveries; as one ``$in`` statement, 0.12 s)."""
    if not ids:
        return

    def write(s):
        for start in range(0, len(ids), IN_CHUNK):
            collection.update_many({**query, "_id": {"$in": ids[start:start + IN_CHUNK]}}, update, session=s)
    _in_a_transaction(collection, session, write)


def _in_a_transaction(collection, session: ClientSession | None, write):
    if session is not None and session.in_transaction:
        return write(session)
    with collection.database.client.start_session() as own:
        return own.with_transaction(write)


def connect(uri: str, timeout_ms: int = 5000, **kwargs) -> MongoClient:
    return MongoClient(
        uri,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms * 6, 30000),
        tz_aware=True,
        **kwargs,
    )


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def transaction_time_limit(client: MongoClient) -> float:
    """Seconds a transaction (with the driver's retries) may take: twice the server selection timeout
    (MONGO_TIMEOUT_MS), at least 10 s."""
    return max(10.0, 2 * client.options.server_selection_timeout)


# The outbox's lanes (shared.messaging.outbox): each Kafka key belongs to one, numbered by its own head
# document. Fixed for the life of the data: changing it needs an outbox with nothing left to publish.
# 16, not 64: a relay draining many keys asks once per lane with entries (64 lanes halved its rate on
# the embedded database), and a consumer's batch updates one head per lane it touches; 16 lanes still
# cut intake's retried transactions from 842 to 41 of 300 in the same probe (bench/README.md, round two).
OUTBOX_LANES = 16


def drop_retired_indexes(collection, reasons: dict[str, str]) -> None:
    """Drop indexes an earlier version created and this one no longer wants ({name: why}, the why for the
    reader), so that a database set up before keeps no index that every write pays for."""
    existing = collection.index_information()
    for name in reasons:
        if name in existing:
            try:
                collection.drop_index(name)
            except OperationFailure:
                pass  # another process of the service dropped it first


def ensure_platform_indexes(db: Database) -> None:
    """Collections every service has: outbox (and its lanes), inbox, leases, worker status, audit log,
    token revocations."""
    existing = set(db.list_collection_names())
    for name in ("outbox", "outbox_lanes", "inbox", "leases", "counters", "worker_status", "audit_log",
                 "token_revocations"):
        if name not in existing:
            db.create_collection(name)  # transactions cannot always create collections
    drop_retired_indexes(db.outbox, {"seq_unique": "one number for every entry, before the lanes (issue 20)"})
    # Entries of before the lanes have no lane (null) and unique numbers; since, numbers are per lane.
    db.outbox.create_index([("lane", ASCENDING), ("seq", ASCENDING)], name="lane_seq_unique", unique=True)
    db.outbox.create_index([("key", ASCENDING)], name="key")
    db.inbox.create_index([("handled_at", ASCENDING)], name="handled_at")
    db.audit_log.create_index([("organization_id", ASCENDING), ("at", ASCENDING)], name="org_time")
    db.audit_log.create_index([("organization_id", ASCENDING), ("resource_id", ASCENDING)], name="org_resource")
    # Every lane's head exists before the first write, so concurrent first writers conflict (and are
    # retried) instead of racing to insert it.
    if db.outbox_lanes.count_documents({}) < OUTBOX_LANES:
        db.outbox_lanes.bulk_write([UpdateOne({"_id": lane}, {"$setOnInsert": {"seq": 0}}, upsert=True)
                                    for lane in range(OUTBOX_LANES)], ordered=False)
