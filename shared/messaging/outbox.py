"""The transactional outbox and its relay.

Writers: ``append_to_outbox`` (called by ``shared.unit_of_work.run_in_transaction``) inserts events in the
same transaction as the state they describe, numbered from one counter document. Every writer updates
that document, so concurrent transactions conflict and are serialized: ``seq`` order is commit order,
with no gaps (an aborted transaction gives its numbers back).

Relay: one per service at a time (a lease in Mongo). It publishes the entries after its *published
position* in ``seq`` order with the idempotent producer, then advances the position past the prefix the
broker acknowledged: one small write per batch rather than one per entry (per-entry updates made the
relay ten times slower). While the broker is away the position does not move; when it returns the relay
resends from there, so nothing is lost or reordered per key (a retry may publish an entry twice;
consumers deduplicate by ``ce_id``). Published entries are deleted after ``RETENTION``.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from datetime import timedelta
from typing import Callable

from kafka.errors import KafkaError
from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared.messaging.envelope import Event, encode_value, record_headers
from shared.messaging.kafka import close_producer
from shared.metrics import OUTBOX_PUBLISHED, OUTBOX_PUBLISH_FAILURES
from shared.mongo import utcnow

log = logging.getLogger(__name__)


def append_to_outbox(db: Database, session, events: list[Event], tombstones: list[tuple[str, str]] = ()) -> None:
    count = len(events) + len(tombstones)
    if not count:
        return
    counter = db.counters.find_one_and_update(
        {"_id": "outbox"}, {"$inc": {"seq": count}}, upsert=True,
        return_document=ReturnDocument.AFTER, session=session,
    )
    first = counter["seq"] - count + 1
    now = utcnow()
    docs = [
        {
            "_id": evt.id, "seq": first + i, "topic": evt.topic, "key": evt.key, "type": evt.type,
            "value": encode_value(evt), "headers": [[k, v] for k, v in record_headers(evt)],
            "created_at": now,
        }
        for i, evt in enumerate(events)
    ]
    docs += [
        {
            "_id": f"tombstone:{uuid.uuid4()}", "seq": first + len(events) + i, "topic": topic, "key": key,
            "type": None, "value": None, "headers": [], "created_at": now,
        }
        for i, (topic, key) in enumerate(tombstones)
    ]
    db.outbox.insert_many(docs, session=session, ordered=True)


PUBLISHED = "outbox.published"          # counters document holding the relay's published position
RETENTION = timedelta(minutes=10)       # published entries are kept this long (for operators), then deleted


def published_position(db: Database) -> int:
    doc = db.counters.find_one({"_id": PUBLISHED})
    return int(doc["seq"]) if doc else 0


def unpublished(db: Database, query: dict | None = None) -> dict:
    """A filter for outbox entries not yet published (optionally narrowed by ``query``)."""
    return {**(query or {}), "seq": {"$gt": published_position(db)}}


def outbox_backlog(db: Database) -> int:
    return db.outbox.count_documents(unpublished(db))


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
                 batch_size: int = 500, lease_ttl_seconds: float = 10.0, flush_timeout_seconds: float = 15.0):
        self.db = db
        self.producer_factory = producer_factory
        self.service = service
        self.batch_size = batch_size
        self.flush_timeout = flush_timeout_seconds
        self.lease = Lease(db, f"outbox-relay:{service}", lease_ttl_seconds)
        self._producer = None
        self._last_cleanup = 0.0
        self._position, self._position_term = 0, -1  # the published position, as of a term of the lease
        self.wakeup = threading.Event()

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
            # only the lease holder moves the position: read it when the lease is taken, then keep it
            self._position, self._position_term = published_position(self.db), self.lease.term
        position = self._position
        entries = list(self.db.outbox.find({"seq": {"$gt": position}}).sort("seq", ASCENDING).limit(self.batch_size))
        if not entries:
            self._delete_old_entries(position)
            return 0
        try:
            producer = self._producer_or_new()
            futures = [
                producer.send(
                    entry["topic"],
                    key=entry["key"].encode(),
                    value=entry["value"],
                    headers=[(k, bytes(v)) for k, v in entry["headers"]],
                )
                for entry in entries
            ]
            producer.flush(timeout=self.flush_timeout)
        except KafkaError as exc:
            log.warning("outbox relay: broker unavailable, will retry", extra={"error": str(exc)})
            OUTBOX_PUBLISH_FAILURES.labels(self.service).inc()
            self._drop_producer()
            return 0
        # Advance only past the prefix that certainly reached the broker, so order is kept on retry.
        sent = 0
        for future in futures:
            if not future.is_done or future.failed():
                break
            sent += 1
        if sent:
            self.db.counters.update_one({"_id": PUBLISHED}, {"$max": {"seq": entries[sent - 1]["seq"]}}, upsert=True)
            self._position = entries[sent - 1]["seq"]
            OUTBOX_PUBLISHED.labels(self.service).inc(sent)
        if sent < len(entries):
            OUTBOX_PUBLISH_FAILURES.labels(self.service).inc()
            self._drop_producer()
        return sent

    def _delete_old_entries(self, position: int) -> None:
        """When idle, at most once a minute: delete published entries older than RETENTION."""
        now = time.monotonic()
        if now - self._last_cleanup < 60:
            return
        self._last_cleanup = now
        self.db.outbox.delete_many({"seq": {"$lte": position}, "created_at": {"$lt": utcnow() - RETENTION}})

    def close(self) -> None:
        if self._producer is not None:
            close_producer(self._producer, timeout=5)
            self._producer = None
        try:
            self.lease.release()
        except Exception:  # noqa: BLE001 - the lease lapses by itself
            pass
