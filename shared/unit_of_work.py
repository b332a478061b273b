"""The unit of work: one MongoDB transaction that writes a state change and the events it causes
(into the outbox) together: the outbox half of "nothing lost" (DESIGN.md).

Layers, in one direction only: ``shared.mongo`` (the client) <- ``shared.messaging.outbox`` (append, relay)
<- this module <- each service's repository and handlers, and the consumer runner.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

import pymongo
from pymongo import MongoClient
from pymongo.client_session import ClientSession
from pymongo.database import Database

from shared import mongo
from shared.events.base import EventSchema
from shared.messaging.envelope import Event, new_event
from shared.messaging.outbox import append_to_outbox

T = TypeVar("T")


class UnitOfWork:
    """One transaction. Repositories write state through ``session``; use cases ``emit`` events;
    the events are inserted into the outbox in the same transaction when the work returns."""

    def __init__(self, db: Database, session: ClientSession, source: str):
        self.db = db
        self.session = session
        self.source = source
        self.events: list[Event] = []
        self.tombstones: list[tuple[str, str]] = []

    def emit(self, declaration: type[EventSchema], data: dict[str, Any]) -> Event:
        evt = new_event(declaration, data, source=self.source)
        self.events.append(evt)
        return evt

    def tombstone(self, topic: str, key: str) -> None:
        """A null-valued record for ``key`` on a compacted topic: erases it from the topic's log."""
        self.tombstones.append((topic, key))


def run_in_transaction(client: MongoClient, db: Database, work: Callable[[UnitOfWork], T], *,
                       source: str) -> T:
    """Run ``work(uow)`` in a transaction, retried on transient conflicts, with its events in the outbox.

    ``work`` may run more than once (write conflicts are retried), so it must only touch the database
    through ``uow.session`` and must not have other side effects."""
    def callback(session: ClientSession) -> T:
        uow = UnitOfWork(db, session, source)
        result = work(uow)
        append_to_outbox(db, session, uow.events, uow.tombstones)
        return result

    # The driver retries a transaction that failed with a transient error (a write conflict, a primary
    # stepping down, a dropped connection) for up to 120 s; bound that by the client's own timeout so a
    # request answers 503 (ExecutionTimeout is "unavailable") before gunicorn kills it, and a worker waits.
    # (mongo.transaction_time_limit is looked up at call time, so a test may shorten it for one run.)
    with client.start_session() as session, pymongo.timeout(mongo.transaction_time_limit(client)):
        return session.with_transaction(callback)
