"""The unit of work: one MongoDB transaction that writes a state change and the events it causes
(into the outbox) together: the outbox half of "nothing lost" (DESIGN.md).

Layers, in one direction only: ``shared.mongo`` (the client) <- ``shared.messaging.outbox`` (append, relay)
<- this module <- each service's repository and handlers, and the consumer runner.
"""
from __future__ import annotations

import random
import time
from typing import Any, Callable, TypeVar

import pymongo
from pymongo import MongoClient
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import ExecutionTimeout, PyMongoError

from shared import mongo
from shared.events.base import EventSchema
from shared.messaging.envelope import Event, new_event
from shared.messaging.outbox import OUTBOX_COMMITTED, append_to_outbox

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
        self._before_commit: dict[Any, Callable[[], None]] = {}
        # What this transaction's handlers read and share (a consumer batch's events: read once, not per
        # event); ``Store.remembered`` fills it, a write that changes such a read forgets it.
        self.reads: dict[Any, Any] = {}

    def emit(self, declaration: type[EventSchema], data: dict[str, Any]) -> Event:
        evt = new_event(declaration, data, source=self.source)
        self.events.append(evt)
        return evt

    def tombstone(self, topic: str, key: str) -> None:
        """A null-valued record for ``key`` on a compacted topic: erases it from the topic's log."""
        self.tombstones.append((topic, key))

    def before_commit(self, key: Any, action: Callable[[], None]) -> None:
        """Run ``action`` once (per ``key``) when the work is done, in the transaction, before its events go
        to the outbox: for writes a handler gathers over a consumer batch and makes in one go."""
        self._before_commit.setdefault(key, action)


# Between attempts, as the driver's own with_transaction: 5 ms growing by half each time, at most 0.5 s, jittered.
_BACKOFF_FIRST, _BACKOFF_MAX = 0.005, 0.5
# Time of its own for ending a transaction whose time ran out (the abort, or one more try at an unconfirmed commit).
_END_SECONDS = 5.0


def run_in_transaction(client: MongoClient, db: Database, work: Callable[[UnitOfWork], T], *,
                       source: str) -> T:
    """Run ``work(uow)`` in a transaction, retried on transient conflicts, with its events in the outbox.

    ``work`` may run more than once (write conflicts are retried), so it must only touch the database
    through ``uow.session`` and must not have other side effects.

    The whole, retries included, is bounded by ``mongo.transaction_time_limit`` (looked up at call time, so
    a test may shorten it): a request answers 503 (ExecutionTimeout is "unavailable") before gunicorn kills
    it, and a worker waits and tries again. This is the driver's ``with_transaction`` loop with one
    difference: a transaction that ran out of time is still ended on the server. Under the driver's
    ``pymongo.timeout`` its abort is never sent once the time is up, so the transaction stayed open on the
    server, holding its writes' locks until the server's transaction lifetime (60 s) ran out, and every
    request and consumer batch touching those documents timed out meanwhile."""
    deadline = time.monotonic() + mongo.transaction_time_limit(client)
    with client.start_session() as session:
        attempt = 0
        while True:
            attempt += 1
            if attempt > 1:
                backoff = random.random() * min(_BACKOFF_FIRST * 1.5 ** attempt, _BACKOFF_MAX)  # noqa: S311
                time.sleep(min(backoff, max(deadline - time.monotonic(), 0)))
            try:
                return _attempt(session, db, work, source, deadline)
            except PyMongoError as exc:
                if exc.has_error_label("TransientTransactionError") and time.monotonic() < deadline:
                    continue  # a write conflict, a dropped connection: the whole transaction again
                raise


def _attempt(session: ClientSession, db: Database, work: Callable[[UnitOfWork], T], source: str,
             deadline: float) -> T:
    committing = False
    try:
        with pymongo.timeout(max(deadline - time.monotonic(), 0.001)):
            session.start_transaction()
            uow = UnitOfWork(db, session, source)
            result = work(uow)
            for action in uow._before_commit.values():
                action()
            append_to_outbox(db, session, uow.events, uow.tombstones)
            committing = True
            _commit(session, deadline)
            _committed(uow)
        return result
    except BaseException as exc:
        # Out of the timed block: ending the transaction has time of its own.
        with pymongo.timeout(_END_SECONDS):
            if not committing:
                if session.in_transaction:
                    session.abort_transaction()  # errors ignored, as the transactions spec says
            elif isinstance(exc, PyMongoError) and exc.has_error_label("UnknownTransactionCommitResult"):
                # The commit may not have reached the server: once more, or it would stay open holding its locks.
                try:
                    session.commit_transaction()
                    _committed(uow)
                    return result
                except PyMongoError:
                    pass
        raise


def _committed(uow: UnitOfWork) -> None:
    if uow.events or uow.tombstones:
        OUTBOX_COMMITTED.notify()


def _commit(session: ClientSession, deadline: float) -> None:
    """Commit; an unconfirmed commit is sent again (commits are idempotent) until the time is up."""
    while True:
        try:
            session.commit_transaction()
            return
        except PyMongoError as exc:
            if (exc.has_error_label("UnknownTransactionCommitResult") and not isinstance(exc, ExecutionTimeout)
                    and time.monotonic() < deadline):
                continue
            raise
