"""The transactional outbox and its relay.

Writers: ``append_to_outbox`` (called by ``shared.unit_of_work.run_in_transaction``) inserts events in the
same transaction as the state they describe. Each entry goes to the *lane* of its key (a hash of the Kafka
key, one of ``OUTBOX_LANES``) and is numbered from that lane's head document (``outbox_lanes``). Writers of
one lane conflict and are serialized, so within a lane ``seq`` order is commit order, with no gaps (an aborted
transaction gives its numbers back); writers of different keys mostly touch different lanes and do not
wait for each other. Kafka orders per key, and one key always maps to one lane, so order per key is kept.
(Until issue 20 every entry was numbered from one counter document, which serialized every writer of a
service behind it: at 8 concurrent registrations most transactions were retried several times.)

Relay: one per service at a time (a lease in Mongo). Each cycle it reads the lanes' heads (one small
query), and for each lane whose head is past its *published position* publishes the entries after that
position in ``seq`` order with the idempotent producer (reading the next entries while the producer
sends the last: a lane's numbers have no gaps, so what to read is known in advance), then advances the
positions past the prefix the broker acknowledged: one small write per batch (``$max`` per lane), never
one per entry. While the broker is away the positions do not move; when it returns the relay resends
from there, so nothing is lost or reordered per key (a retry may publish an entry twice; consumers
deduplicate by ``ce_id``). Published entries are deleted after ``RETENTION``.

Entries written before the lanes (no ``lane`` field, numbered by the old counter ``counters.outbox``) are
relayed first, in their old order, from the old position (``counters.outbox.published``).
"""
from __future__ import annotations

import logging
import math
import socket
import threading
import time
import weakref
import uuid
import zlib
from datetime import timedelta
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

from kafka.errors import KafkaError
from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared.messaging.envelope import Event, encode_value, record_headers
from shared.messaging.kafka import close_producer
from shared.metrics import OUTBOX_PUBLISHED, OUTBOX_PUBLISH_FAILURES
from shared.mongo import OUTBOX_LANES, delete_many, utcnow

log = logging.getLogger(__name__)


class CommitSignal:
    """Tells this process's relays that a transaction of this process committed outbox entries (set by
    ``shared.unit_of_work`` after the commit), so a worker's relay publishes what its own consumer and jobs
    wrote at once instead of at its next poll. Entries written by other processes (the web processes) are
    found by the poll alone."""

    def __init__(self):
        self._events: weakref.WeakSet[threading.Event] = weakref.WeakSet()
        self._lock = threading.Lock()

    def listener(self) -> threading.Event:
        """An event of one's own, set at every commit with entries from now on (clear it before reading)."""
        event = threading.Event()
        with self._lock:
            self._events.add(event)
        return event

    def notify(self) -> None:
        with self._lock:
            events = list(self._events)
        for event in events:
            event.set()


OUTBOX_COMMITTED = CommitSignal()


def lane_of(key: str) -> int:
    """The outbox lane of a Kafka key: fixed for the life of the data (changing OUTBOX_LANES needs a drained outbox)."""
    return zlib.crc32(key.encode()) % OUTBOX_LANES


def append_to_outbox(db: Database, session, events: list[Event], tombstones: list[tuple[str, str]] = ()) -> None:
    now = utcnow()
    docs = [
        {
            "_id": evt.id, "topic": evt.topic, "key": evt.key, "type": evt.type,
            "value": encode_value(evt), "headers": [[k, v] for k, v in record_headers(evt)],
            "created_at": now,
        }
        for evt in events
    ]
    docs += [
        {
            "_id": f"tombstone:{uuid.uuid4()}", "topic": topic, "key": key,
            "type": None, "value": None, "headers": [], "created_at": now,
        }
        for topic, key in tombstones
    ]
    if not docs:
        return
    per_lane: dict[int, list[dict]] = {}
    for doc in docs:
        doc["lane"] = lane_of(doc["key"])
        per_lane.setdefault(doc["lane"], []).append(doc)
    if len(per_lane) == 1:  # the usual case: one aggregate's events, one round trip
        ((lane, entries),) = per_lane.items()
        head = db.outbox_lanes.find_one_and_update(
            {"_id": lane}, {"$inc": {"seq": len(entries)}}, upsert=True,
            return_document=ReturnDocument.AFTER, session=session)
        heads = {lane: head["seq"]}
    else:  # several keys (a consumer's batch, a batch run): every lane's head in two round trips
        lanes = sorted(per_lane)
        db.outbox_lanes.bulk_write([UpdateOne({"_id": lane}, {"$inc": {"seq": len(per_lane[lane])}}, upsert=True)
                                    for lane in lanes], ordered=True, session=session)
        heads = {doc["_id"]: doc["seq"] for doc in db.outbox_lanes.find({"_id": {"$in": lanes}}, session=session)}
    for lane, entries in per_lane.items():
        first = heads[lane] - len(entries) + 1
        for i, doc in enumerate(entries):
            doc["seq"] = first + i
    db.outbox.insert_many(docs, session=session, ordered=True)


PUBLISHED = "outbox.published"          # counters document: the published position of entries before the lanes
PUBLISHED_LANES = "outbox.published.lanes"  # counters document: {"lanes": {"<lane>": published seq}}
LEGACY_COUNTER = "outbox"               # counters document that numbered every entry before the lanes
RETENTION = timedelta(minutes=10)       # published entries are kept this long (for operators), then deleted
READ_CHUNK = 100                        # entries the relay reads at a time while the producer sends the last ones


def published_position(db: Database) -> int:
    """The published position of entries written before the lanes."""
    doc = db.counters.find_one({"_id": PUBLISHED})
    return int(doc["seq"]) if doc else 0


def published_positions(db: Database) -> dict[int, int]:
    """Each lane's published position (0 for a lane never published)."""
    doc = db.counters.find_one({"_id": PUBLISHED_LANES}) or {}
    return {int(lane): int(seq) for lane, seq in (doc.get("lanes") or {}).items()}


def lane_heads(db: Database) -> dict[int, int]:
    """Each lane's last number given (lanes never written are absent)."""
    return {int(doc["_id"]): int(doc["seq"]) for doc in db.outbox_lanes.find({}, {"seq": 1})}


def _legacy_head(db: Database) -> int:
    doc = db.counters.find_one({"_id": LEGACY_COUNTER})
    return int(doc.get("seq") or 0) if doc else 0


def unpublished(db: Database, query: dict | None = None) -> dict:
    """A filter for outbox entries not yet published (optionally narrowed by ``query``; a query naming one
    ``key`` looks in that key's lane only)."""
    positions = published_positions(db)
    key = (query or {}).get("key")
    lanes = [lane_of(key)] if isinstance(key, str) else sorted(lane_heads(db))
    clauses = [{"lane": lane, "seq": {"$gt": positions.get(lane, 0)}} for lane in lanes]
    legacy = published_position(db)
    if _legacy_head(db) > legacy:
        clauses.append({"lane": None, "seq": {"$gt": legacy}})
    return {**(query or {}), "$or": clauses or [{"_id": {"$exists": False}}]}


def outbox_backlog(db: Database) -> int:
    """Entries not yet published: each lane's head minus its published position (numbers have no gaps), plus
    any entries of before the lanes still waiting."""
    positions = published_positions(db)
    backlog = sum(max(0, head - positions.get(lane, 0)) for lane, head in lane_heads(db).items())
    return backlog + max(0, _legacy_head(db) - published_position(db))


class Lease:
    """A named lease in Mongo: only its owner acts until it expires (a crashed owner's lease lapses)."""

    def __init__(self, db: Database, name: str, ttl_seconds: float = 10.0, owner: str | None = None):
        self.db, self.name, self.ttl = db, name, ttl_seconds
        self.owner = owner or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self.term = 0             # +1 each time the lease is taken anew (not renewed): a new term of office
        self._renew_at = 0.0      # monotonic time from which hold() asks the database again

    def acquire(self) -> bool:
        now = utcnow()
        try:
            before = self.db.leases.find_one_and_update(
                {"_id": self.name, "$or": [{"owner": self.owner}, {"expires_at": {"$lt": now}}]},
                {"$set": {"owner": self.owner, "expires_at": now + timedelta(seconds=self.ttl)}},
                upsert=True, return_document=ReturnDocument.BEFORE,
            )
        except DuplicateKeyError:  # someone else holds it (the upsert collided with their document)
            return False
        if not (before is not None and before["owner"] == self.owner and before["expires_at"] >= now):
            self.term += 1  # taken, not renewed: another holder may have acted in between
        return True

    def hold(self) -> bool:
        """``acquire()``, asking the database only once a third of the lease's time has passed since the
        last renewal, so a loop polling every 50 ms costs no round trip a cycle for it. The other two
        thirds are the margin for clock skew and pauses."""
        if time.monotonic() < self._renew_at:
            return True
        started = time.monotonic()
        held = self.acquire()
        self._renew_at = started + self.ttl / 3 if held else 0.0
        return held

    def release(self) -> None:
        self._renew_at = 0.0
        self.db.leases.delete_one({"_id": self.name, "owner": self.owner})


class OutboxRelay:
    def __init__(self, db: Database, producer_factory: Callable, *, service: str,
                 batch_size: int = 1000, read_chunk: int = READ_CHUNK, lease_ttl_seconds: float = 10.0,
                 flush_timeout_seconds: float = 15.0):
        self.db = db
        self.read_chunk = read_chunk
        self.producer_factory = producer_factory
        self.service = service
        self.batch_size = batch_size
        self.flush_timeout = flush_timeout_seconds
        self.lease = Lease(db, f"outbox-relay:{service}", lease_ttl_seconds)
        self._producer = None
        self._last_cleanup = 0.0
        self._positions: dict[int, int] = {}   # each lane's published position, as of a term of the lease
        self._position_term = -1
        self._legacy_position, self._legacy_head, self._legacy_checked = 0, 0, -math.inf
        self._next_lane = 0
        self._reader: ThreadPoolExecutor | None = None   # reads ahead of the producer; one thread for the relay's life

    def _producer_or_new(self):
        if self._producer is None:
            self._producer = self.producer_factory()
        return self._producer

    def _drop_producer(self) -> None:
        # Abandon buffered records: the entries stay unsent and are resent in order by a new producer.
        if self._producer is not None:
            try:
                close_producer(self._producer, timeout=0)
            except Exception:  # noqa: BLE001 - a broken producer may fail to close; we discard it anyway
                log.debug("closing a failed producer raised", exc_info=True)
            self._producer = None

    def publish_pending(self) -> int:
        """Publish one batch of unsent entries if this relay holds the lease. Returns how many were sent."""
        if not self.lease.hold():
            return 0
        if self._position_term != self.lease.term:
            # only the lease holder moves the positions: read them when the lease is taken, then keep them
            self._positions = published_positions(self.db)
            self._legacy_position, self._legacy_checked = published_position(self.db), -math.inf
            self._position_term = self.lease.term
        if self._legacy_pending():
            return self._publish_legacy()
        heads = lane_heads(self.db)
        due = [lane for lane, head in sorted(heads.items()) if head > self._positions.get(lane, 0)]
        if not due:
            self._delete_old_entries()
            return 0
        # Start where the last batch stopped, so a busy lane cannot keep the others waiting.
        due = [lane for lane in due if lane >= self._next_lane] + [lane for lane in due if lane < self._next_lane]
        entries, acknowledged = self._send(self._read_ahead(self._ranges(due, heads)))
        # Advance each lane only past the prefix that certainly reached the broker, so order is kept on retry.
        advanced: dict[int, int] = {}
        stopped: set[int] = set()
        for entry, ok in zip(entries, acknowledged):
            lane = entry["lane"]
            if lane in stopped:
                continue
            if ok:
                advanced[lane] = entry["seq"]
            else:
                stopped.add(lane)
        if advanced:
            self.db.counters.update_one({"_id": PUBLISHED_LANES},
                                        {"$max": {f"lanes.{lane}": seq for lane, seq in advanced.items()}}, upsert=True)
            self._positions.update(advanced)
        return self._count(entries, acknowledged, sum(1 for e in entries if e["seq"] <= advanced.get(e["lane"], 0)))

    def _ranges(self, due: list[int], heads: dict[int, int]) -> list[tuple[int, int, int]]:
        """This batch's reads: (lane, after seq, up to seq) in the order they are sent, at most ``read_chunk``
        entries each and ``batch_size`` in all. A lane's numbers have no gaps, so the ranges are known
        before anything is read, and can be read ahead of the producer."""
        ranges, room = [], self.batch_size
        for lane in due:
            if room <= 0:
                break
            self._next_lane = (lane + 1) % OUTBOX_LANES
            after = self._positions.get(lane, 0)
            upto = min(heads[lane], after + room)
            room -= upto - after
            ranges += [(lane, low, min(low + self.read_chunk, upto)) for low in range(after, upto, self.read_chunk)]
        return ranges

    def _read_ahead(self, ranges: list[tuple[int, int, int]]) -> Iterator[list[dict]]:
        """Each range's entries in order, the next one read while the producer takes the current one: the
        database and the producer then work at once instead of in turn (issue 20: reading was half the
        relay's time)."""
        def read(lane: int, after: int, upto: int) -> list[dict]:
            return list(self.db.outbox.find({"lane": lane, "seq": {"$gt": after, "$lte": upto}})
                        .sort("seq", ASCENDING).batch_size(self.read_chunk + 1))
        if len(ranges) <= 1:
            yield from (read(*r) for r in ranges)
            return
        if self._reader is None:
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.service}-relay-read")
        yield from self._reader.map(lambda r: read(*r), ranges)

    def _send(self, chunks: Iterable[list[dict]]) -> tuple[list[dict], list[bool]]:
        """Send entries in order as they are read, then flush: the entries, and which of them the broker
        certainly acknowledged."""
        entries: list[dict] = []
        futures = []
        try:
            for chunk in chunks:
                entries += chunk
                if not chunk:
                    continue
                producer = self._producer_or_new()
                futures += [
                    producer.send(
                        entry["topic"],
                        key=entry["key"].encode(),
                        value=entry["value"],
                        headers=[(k, bytes(v)) for k, v in entry["headers"]],
                    )
                    for entry in chunk
                ]
            if futures:
                self._producer.flush(timeout=self.flush_timeout)
        except KafkaError as exc:
            log.warning("outbox relay: broker unavailable, will retry", extra={"error": str(exc)})
            return entries, [False] * len(entries)
        except BaseException:
            self._drop_producer()  # a read failed mid-batch: what was handed to the producer is resent later
            raise
        return entries, [future.is_done and not future.failed() for future in futures] + \
            [False] * (len(entries) - len(futures))

    def _count(self, entries: list[dict], acknowledged: list[bool], sent: int) -> int:
        if sent:
            OUTBOX_PUBLISHED.labels(self.service).inc(sent)
        if not all(acknowledged):
            OUTBOX_PUBLISH_FAILURES.labels(self.service).inc()
            self._drop_producer()
        return sent

    # -- entries written before the lanes ------------------------------------------------------------
    def _legacy_pending(self) -> bool:
        """Whether entries of the old format wait (asked again at most once a minute: writers of the old
        format exist only while an older version of the service still runs)."""
        now = time.monotonic()
        if now - self._legacy_checked >= 60:
            self._legacy_checked = now
            self._legacy_head = _legacy_head(self.db)
        return self._legacy_head > self._legacy_position

    def _publish_legacy(self) -> int:
        position = self._legacy_position
        entries = list(self.db.outbox.find({"lane": None, "seq": {"$gt": position}}).sort("seq", ASCENDING)
                       .limit(self.batch_size))
        if not entries:
            self._legacy_head = position  # nothing is left of them
            return 0
        entries, acknowledged = self._send([entries])
        sent = 0
        for ok in acknowledged:
            if not ok:
                break
            sent += 1
        if sent:
            self._legacy_position = entries[sent - 1]["seq"]
            self.db.counters.update_one({"_id": PUBLISHED}, {"$max": {"seq": self._legacy_position}}, upsert=True)
        return self._count(entries, acknowledged, sent)

    def _delete_old_entries(self) -> None:
        """When idle, at most once a minute: delete published entries older than RETENTION."""
        now = time.monotonic()
        if now - self._last_cleanup < 60:
            return
        self._last_cleanup = now
        cutoff = utcnow() - RETENTION
        for lane, position in sorted(self._positions.items()):
            delete_many(self.db.outbox, {"lane": lane, "seq": {"$lte": position}, "created_at": {"$lt": cutoff}})
        if self._legacy_position:
            delete_many(self.db.outbox, {"lane": None, "seq": {"$lte": self._legacy_position},
                                         "created_at": {"$lt": cutoff}})

    def close(self) -> None:
        if self._reader is not None:
            self._reader.shutdown(wait=True)
            self._reader = None
        if self._producer is not None:
            close_producer(self._producer, timeout=5)
            self._producer = None
        try:
            self.lease.release()
        except Exception:  # noqa: BLE001 - the lease lapses by itself
            pass
