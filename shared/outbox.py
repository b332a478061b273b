"""The transactional outbox and its relay.

Writers: ``append_to_outbox`` (called by ``shared.mongo.run_in_transaction``) inserts events in the
same transaction as the state they describe, numbered from one counter, so ``seq`` order is commit
order. Relay: one per service at a time (a lease in Mongo), publishes unsent entries in ``seq`` order
with the idempotent producer and marks them sent. While the broker is away nothing is marked sent;
when it returns the relay resends from the first unsent entry, so nothing is lost or reordered per key
(a retry may publish an entry twice; consumers deduplicate by ``ce_id``).
"""
from __future__ import annotations

import logging
import socket
import threading
import uuid
from datetime import timedelta
from typing import Callable

from kafka.errors import KafkaError
from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared.events.envelope import Event, encode_value, record_headers
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
            "created_at": now, "sent": False,
        }
        for i, evt in enumerate(events)
    ]
    docs += [
        {
            "_id": f"tombstone:{uuid.uuid4()}", "seq": first + len(events) + i, "topic": topic, "key": key,
            "type": None, "value": None, "headers": [], "created_at": now, "sent": False,
        }
        for i, (topic, key) in enumerate(tombstones)
    ]
    db.outbox.insert_many(docs, session=session, ordered=True)


def outbox_backlog(db: Database) -> int:
    return db.outbox.count_documents({"sent": False})


class Lease:
    """A named lease in Mongo: only its owner acts until it expires (a crashed owner's lease lapses)."""

    def __init__(self, db: Database, name: str, ttl_seconds: float = 10.0, owner: str | None = None):
        self.db, self.name, self.ttl = db, name, ttl_seconds
        self.owner = owner or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"

    def acquire(self) -> bool:
        now = utcnow()
        try:
            doc = self.db.leases.find_one_and_update(
                {"_id": self.name, "$or": [{"owner": self.owner}, {"expires_at": {"$lt": now}}]},
                {"$set": {"owner": self.owner, "expires_at": now + timedelta(seconds=self.ttl)}},
                upsert=True, return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # someone else holds it (the upsert collided with their document)
            return False
        return doc is not None and doc["owner"] == self.owner

    def release(self) -> None:
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
        self.wakeup = threading.Event()

    def _producer_or_new(self):
        if self._producer is None:
            self._producer = self.producer_factory()
        return self._producer

    def _drop_producer(self) -> None:
        # Abandon buffered records: the entries stay unsent and are resent in order by a new producer.
        if self._producer is not None:
            try:
                self._producer.close(timeout=0)
            except Exception:  # noqa: BLE001 - a broken producer may fail to close; we discard it anyway
                log.debug("closing a failed producer raised", exc_info=True)
            self._producer = None

    def publish_pending(self) -> int:
        """Publish one batch of unsent entries if this relay holds the lease. Returns how many were sent."""
        if not self.lease.acquire():
            return 0
        entries = list(self.db.outbox.find({"sent": False}).sort("seq", ASCENDING).limit(self.batch_size))
        if not entries:
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
        # Mark sent only the prefix that certainly reached the broker, so order is kept on retry.
        sent_ids = []
        for entry, future in zip(entries, futures):
            if not future.is_done or future.failed():
                break
            sent_ids.append(entry["_id"])
        if sent_ids:
            self.db.outbox.update_many({"_id": {"$in": sent_ids}}, {"$set": {"sent": True, "sent_at": utcnow()}})
            OUTBOX_PUBLISHED.labels(self.service).inc(len(sent_ids))
        if len(sent_ids) < len(entries):
            OUTBOX_PUBLISH_FAILURES.labels(self.service).inc()
            self._drop_producer()
        return len(sent_ids)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None
        try:
            self.lease.release()
        except Exception:  # noqa: BLE001 - the lease lapses by itself
            pass
