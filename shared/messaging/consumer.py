"""The consumer runner: one consumer group per service, effects and inbox in one transaction,
offsets committed only after, retries with back-off, then the dead-letter topic.

    runner = ConsumerRunner(kafka=settings.kafka, client=client, db=db, subscriptions=subscriptions, service="matching")
    while not stop: runner.poll_once()

A handler is ``handler(event: Event, uow: UnitOfWork) -> None``; it writes through ``uow`` (and may
``uow.emit`` events, which go to the outbox in the same transaction as the inbox entry).
"""
from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Mapping

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata
from pymongo.errors import DuplicateKeyError

from shared.config import KafkaConnection
from shared.events.base import EventSchema
from shared.messaging.envelope import Event, MalformedEvent, decode_record
from shared.messaging.kafka import (CONSUMER_SERVICES, FetchPacing, close_producer, consumer_group, dead_letter_topic,
                                    group_rejoin_pending, make_consumer, make_producer)
from shared.metrics import EVENTS_HANDLED
from shared.mongo import find_in, is_unavailable, utcnow
from shared.tracing import child_of, current_traceparent
from shared.unit_of_work import UnitOfWork, run_in_transaction

log = logging.getLogger(__name__)

JOIN_POLL_TIMEOUT_MS = 8000
BATCH_SIZE = 50        # records of one partition applied in one transaction (1: one transaction per record)
# A poll's records are applied for at most this long; the rest are fetched again by the next poll. Far
# below the consumer's max_poll_interval_ms (300 s), past which the group drops the consumer.
POLL_BUDGET_SECONDS = 60.0
GROW_AFTER_BATCHES = 10  # a batch size halved after a timed-out transaction doubles after this many good ones

Handler = Callable[[Event, UnitOfWork], None]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4                 # tries before dead-lettering
    first_delay_seconds: float = 0.2
    multiplier: float = 3.0
    # While the database is unavailable we do not count tries: we wait, and never dead-letter.
    unavailable_delay_seconds: float = 2.0

    def delay(self, attempt: int) -> float:
        return self.first_delay_seconds * (self.multiplier ** (attempt - 1))


class ConsumerRunner:
    def __init__(self, *, kafka: KafkaConnection, client, db, subscriptions: Mapping[type[EventSchema], Handler],
                 service: str, group_id: str | None = None, retry: RetryPolicy = RetryPolicy(),
                 should_stop: Callable[[], bool] = lambda: False, batch_size: int = BATCH_SIZE,
                 poll_budget_seconds: float = POLL_BUDGET_SECONDS, on_assigned: Callable[[set], None] | None = None):
        self.client, self.db, self.service = client, db, service
        self.handlers = {decl.type: handler for decl, handler in subscriptions.items()}
        self.topics = sorted({decl.topic for decl in subscriptions})
        self.group_id = group_id or consumer_group(service)
        self.dlq_topic = dead_letter_topic(self.group_id)
        self.retry = retry
        self.should_stop = should_stop
        self.kafka = kafka
        self.consumer = make_consumer(kafka, self.group_id, self.topics, on_assigned=on_assigned)
        self.fetch_pacing = FetchPacing(self.consumer)  # asks the broker less often once nothing comes
        self._dlq_producer = None
        self.dead_lettered = 0
        self.batch_size = max(1, batch_size)
        self.poll_budget_seconds = poll_budget_seconds
        self._batch_now = self.batch_size  # smaller while the database is too slow for a whole batch
        self._good_batches = 0

    # -- the loop ---------------------------------------------------------------------------------
    def poll_once(self, timeout_ms: int = 500) -> int:
        """Handle one poll's records; commit their offsets after they are stored. Returns how many.

        Up to ``batch_size`` records of a partition are applied in ONE transaction (one inbox lookup,
        every handler's effects, the inbox entries and the outbox entries together): far fewer database
        round trips per event. If that transaction runs out of time, the batch size is halved and the
        same records are tried again in smaller batches; if it fails otherwise, they are applied one per
        transaction, so retries and dead-lettering stay per event. After ``poll_budget_seconds`` the
        rest of the poll is left for the next one (the consumer seeks back to it)."""
        if self._joining():
            # kafka-python 3.0.12 discards a group join that completes while nobody is inside poll() and
            # starts over; a short poll timeout can loop like that for a minute. Wait the join out.
            timeout_ms = max(timeout_ms, JOIN_POLL_TIMEOUT_MS)
        batches = self.consumer.poll(timeout_ms=timeout_ms)
        self.fetch_pacing.polled(sum(len(records) for records in batches.values()))
        deadline = time.monotonic() + self.poll_budget_seconds
        handled = 0
        partitions = list(batches.items())
        for n, (tp, records) in enumerate(partitions):
            i = 0
            while i < len(records):
                if self.should_stop():
                    # Finish cleanly: what we did not handle is redelivered to the next owner.
                    return handled
                if time.monotonic() > deadline:
                    self._fetch_again([(tp, records[i:]), *partitions[n + 1:]])
                    return handled
                chunk = records[i:i + self._batch_now]
                done = self._process_chunk(chunk, deadline)
                if done is not None:
                    self.consumer.commit({tp: OffsetAndMetadata(done.offset + 1, "", -1)})
                    handled += chunk.index(done) + 1
                    i += chunk.index(done) + 1
        return handled

    def _fetch_again(self, unhandled: list) -> None:
        """Seek each partition back to its first unhandled record: the next poll returns them again."""
        for tp, records in unhandled:
            if records:
                self.consumer.seek(tp, records[0].offset)
        log.info("poll budget of %.0f s spent; the rest of the poll is fetched again", self.poll_budget_seconds,
                 extra={"unhandled": sum(len(records) for _, records in unhandled)})

    def _joining(self) -> bool:
        return group_rejoin_pending(self.consumer)

    def _process_chunk(self, records: list, deadline: float = float("inf")):
        """Apply a chunk of one partition's records; returns the last record up to which every record
        is done: the whole chunk, unless the runner is stopping or the poll's time is up."""
        items = [item for item in map(self._decode, records) if item is not None]
        last, complete = self._apply_items(items, deadline)
        return records[-1] if complete else last

    def _apply_items(self, items: list, deadline: float):
        """Apply decoded items in batches (halved while a batch's transaction runs out of time), or one by
        one when a batch fails otherwise. Returns (record of the last applied item, all applied?)."""
        last = None
        while items:
            if last is not None and self._out_of_time(deadline):
                return last, False
            batch, rest = items[:self._batch_now], items[self._batch_now:]
            if len(batch) > 1:
                outcome = self._apply_batch(batch)
                if outcome == "too slow":
                    continue  # the same items again, in smaller batches
                if outcome == "applied":
                    for evt, _, _ in batch:
                        EVENTS_HANDLED.labels(self.service, evt.type, "ok").inc()
                    last, items = batch[-1][2], rest
                    continue
            for evt, handler, record in batch:
                if last is not None and self._out_of_time(deadline):
                    return last, False
                self._handle_with_retries(evt, handler, record)
                last = record
            items = rest
        return last, True

    def _out_of_time(self, deadline: float) -> bool:
        return self.should_stop() or time.monotonic() > deadline

    def _decode(self, record):
        """(event, handler, record) to apply, or None: a tombstone, a type we do not subscribe to, or a
        malformed record (dead-lettered here)."""
        if record.value is None and not record.headers:
            return None  # a tombstone on a compacted topic: nothing to apply here
        try:
            evt = decode_record(record.topic, record.key, record.value, record.headers,
                                partition=record.partition, offset=record.offset)
        except MalformedEvent as exc:
            self._dead_letter(record, reason=f"malformed: {exc}", error_type="MalformedEvent", attempts=0)
            return None
        handler = self.handlers.get(evt.type)
        if handler is None:
            return None  # a known event this service does not subscribe to (topics carry several types)
        return evt, handler, record

    def _process(self, record) -> None:
        item = self._decode(record)
        if item is not None:
            self._handle_with_retries(*item)

    def _apply_batch(self, items: list) -> str:
        """Apply several events in one transaction: "applied", or (nothing applied) "too slow" (the
        batch size was halved) or "failed"."""
        def work(uow: UnitOfWork) -> None:
            ids = [evt.id for evt, _, _ in items]
            seen = {doc["_id"] for doc in find_in(self.db.inbox, "_id", ids, projection={"_id": 1}, session=uow.session)}
            # A handler may read what the whole batch needs at once: its ``prepare(events, uow)`` runs
            # first, in the same transaction, with the batch's events it is to handle.
            prepared: dict = {}
            for evt, handler, _ in items:
                if evt.id not in seen and getattr(handler, "prepare", None) is not None:
                    prepared.setdefault(handler.prepare, []).append(evt)
            for prepare, events in prepared.items():
                prepare(events, uow)
            entries = []
            for evt, handler, _ in items:
                if evt.id in seen:
                    continue  # handled before (or twice in this poll): redelivery changes nothing
                seen.add(evt.id)
                token = current_traceparent.set(child_of(evt.traceparent))
                try:
                    handler(evt, uow)
                finally:
                    current_traceparent.reset(token)
                entries.append({"_id": evt.id, "type": evt.type, "handled_at": utcnow()})
            if entries:
                uow.db.inbox.insert_many(entries, ordered=True, session=uow.session)

        try:
            run_in_transaction(self.client, self.db, work, source=f"/recoverynet/{self.service}")
        except Exception as exc:  # noqa: BLE001 - retried in smaller batches, or one by one
            if getattr(exc, "timeout", False) or is_unavailable(exc):
                # The database could not do this much in one transaction's time (or is away): try
                # again with half (at 1, the one-by-one path waits for the database).
                self._batch_now, self._good_batches = max(1, len(items) // 2), 0
                log.warning("batch of %d events ran out of time (%s); batch size now %d", len(items),
                            type(exc).__name__, self._batch_now, extra={"error": repr(exc)[:500]})
                return "too slow"
            log.info("batch of %d events not applied together (%s); applying them one by one", len(items),
                     type(exc).__name__, extra={"error": repr(exc)[:500]})
            return "failed"
        self._good_batches += 1
        if self._batch_now < self.batch_size and self._good_batches >= GROW_AFTER_BATCHES:
            self._batch_now, self._good_batches = min(self.batch_size, self._batch_now * 2), 0
        return "applied"

    def _handle_with_retries(self, evt: Event, handler: Handler, record) -> None:
        # Our own loop, not tenacity: waits for an unavailable database count no try and end only at shutdown,
        # and the last failed try dead-letters the event instead of raising.
        attempt = 0
        token = current_traceparent.set(child_of(evt.traceparent))
        try:
            while True:
                attempt += 1
                try:
                    self._apply(evt, handler)
                    EVENTS_HANDLED.labels(self.service, evt.type, "ok").inc()
                    return
                except Exception as exc:  # noqa: BLE001 - any handler failure is retried, then dead-lettered
                    if is_unavailable(exc):
                        log.warning("database unavailable; waiting", extra={"event_id": evt.id})
                        attempt -= 1  # not the event's fault
                        if self.should_stop():
                            raise
                        time.sleep(self.retry.unavailable_delay_seconds)
                        continue
                    if attempt >= self.retry.attempts:
                        EVENTS_HANDLED.labels(self.service, evt.type, "dead_lettered").inc()
                        log.error("event dead-lettered after %d attempts", attempt,
                                  extra={"event_id": evt.id, "event_type": evt.type, "error": repr(exc)})
                        self._dead_letter(record, reason=repr(exc)[:2000], error_type=type(exc).__name__,
                                          attempts=attempt, trace="".join(traceback.format_exception(exc))[-4000:])
                        return
                    log.warning("handler failed; retrying", extra={"event_id": evt.id, "attempt": attempt,
                                                                   "error": repr(exc)})
                    time.sleep(self.retry.delay(attempt))
        finally:
            current_traceparent.reset(token)

    def _apply(self, evt: Event, handler: Handler) -> None:
        def work(uow: UnitOfWork) -> None:
            if self.db.inbox.find_one({"_id": evt.id}, session=uow.session):
                return  # handled before: redelivery changes nothing
            handler(evt, uow)
            uow.db.inbox.insert_one({"_id": evt.id, "type": evt.type, "handled_at": utcnow()}, session=uow.session)

        try:
            run_in_transaction(self.client, self.db, work, source=f"/recoverynet/{self.service}")
        except DuplicateKeyError as exc:
            if "inbox" in str(exc):
                return  # another copy handled it concurrently
            raise

    # -- dead letters -----------------------------------------------------------------------------
    def _dead_letter(self, record, *, reason: str, error_type: str, attempts: int, trace: str = "") -> None:
        if self._dlq_producer is None:
            self._dlq_producer = make_producer(self.kafka, client_id=f"{self.group_id}-dlq")
        headers = list(record.headers or []) + [
            ("x-dlq-reason", reason.encode()),
            ("x-dlq-error-type", error_type.encode()),
            ("x-dlq-attempts", str(attempts).encode()),
            ("x-dlq-original-topic", record.topic.encode()),
            ("x-dlq-original-partition", str(record.partition).encode()),
            ("x-dlq-original-offset", str(record.offset).encode()),
            ("x-dlq-consumer-group", self.group_id.encode()),
            ("x-dlq-at", utcnow().isoformat().encode()),
        ]
        if trace:
            headers.append(("x-dlq-stacktrace", trace.encode()))
        self._dlq_producer.send(self.dlq_topic, key=record.key, value=record.value, headers=headers)
        self._dlq_producer.flush(timeout=30)  # before the offset commit: a dead letter is never lost
        self.dead_lettered += 1

    # -- status -----------------------------------------------------------------------------------
    def lag(self) -> int:
        assignment = self.consumer.assignment()
        if not assignment:
            return 0
        ends = self.consumer.end_offsets(list(assignment))
        return sum(max(0, ends[tp] - (self.consumer.position(tp) or 0)) for tp in assignment)

    def close(self) -> None:
        try:
            self.consumer.close(autocommit=False)
        finally:
            if self._dlq_producer is not None:
                close_producer(self._dlq_producer, timeout=5)


def redrive_dead_letters(kafka: KafkaConnection, service: str, *, limit: int | None = None,
                         event_type: str | None = None, idle_timeout_ms: int = 5000) -> int:
    """Publish a consumer group's dead letters back to their original topics (without the dlq headers),
    committing the re-drive group's offsets so a dead letter is re-driven once. The consumer's inbox
    makes a re-driven event that was meanwhile applied harmless."""
    group = consumer_group(service)
    dlq = dead_letter_topic(group)
    consumer = make_consumer(kafka, f"{group}.redrive", [dlq], consumer_timeout_ms=idle_timeout_ms)
    producer = make_producer(kafka, client_id=f"{group}-redrive")
    count = 0
    try:
        for record in consumer:
            headers = dict((k, v) for k, v in record.headers or [])
            original_topic = headers.get("x-dlq-original-topic", b"").decode()
            ce_type = headers.get("ce_type", b"").decode()
            if original_topic and (event_type is None or ce_type == event_type):
                clean = [(k, v) for k, v in record.headers or [] if not k.startswith("x-dlq-")]
                producer.send(original_topic, key=record.key, value=record.value, headers=clean)
                count += 1
            producer.flush(timeout=30)
            consumer.commit({TopicPartition(record.topic, record.partition): OffsetAndMetadata(record.offset + 1, "", -1)})
            if limit is not None and count >= limit:
                break
    finally:
        close_producer(producer, timeout=5)
        consumer.close(autocommit=False)
    return count


def main(argv: list[str] | None = None) -> int:
    """``python -m shared.messaging.consumer redrive --service matching [--type TYPE] [--limit N]``"""
    import argparse
    import os
    import sys

    from shared.config import ConfigError, EnvReader

    parser = argparse.ArgumentParser(prog="python -m shared.messaging.consumer",
                                     description="Re-drive a service's dead letters to their original topics.")
    sub = parser.add_subparsers(dest="command", required=True)
    redrive = sub.add_parser("redrive", help="publish dead letters back to their topics, once each")
    # Not limited to our services: any consumer group built on ConsumerRunner has a dead-letter topic.
    redrive.add_argument("--service", required=True,
                         help="the consumer whose dead letters to re-drive: " + " | ".join(CONSUMER_SERVICES))
    redrive.add_argument("--type", dest="event_type", help="only this ce_type (others are skipped and committed)")
    redrive.add_argument("--limit", type=int, help="at most this many")
    redrive.add_argument("--bootstrap", help="broker address (default: KAFKA_BOOTSTRAP_SERVERS); how to authenticate "
                         "comes from KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_CAFILE, as for a service")
    args = parser.parse_args(argv)
    env = EnvReader({**os.environ, "KAFKA_BOOTSTRAP_SERVERS": args.bootstrap} if args.bootstrap else None)
    kafka = env.kafka()
    try:
        env.done()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    count = redrive_dead_letters(kafka, args.service, limit=args.limit, event_type=args.event_type)
    print(f"re-drove {count} dead letter(s) of {consumer_group(args.service)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
