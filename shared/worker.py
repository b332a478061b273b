"""The worker process of a service: its consumer (subscriptions), its outbox relay, and any periodic
jobs (expiring proposals, due reminders, delayed deliveries), each on its own thread.

Shutdown is a flag set by SIGTERM/SIGINT: each loop finishes what it has in hand and closes.
Tests run the same ``Worker`` in-process with ``start()`` / ``stop()``.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from shared.config import PlatformSettings
from shared.events.base import EventSchema
from shared.messaging.consumer import ConsumerRunner, Handler, RetryPolicy
from shared.messaging.kafka import make_producer
from shared.messaging.outbox import OUTBOX_COMMITTED, OutboxRelay
from shared.mongo import connect, is_unavailable, utcnow

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
# What this worker's own consumer and jobs commit wakes its relay at once (OUTBOX_COMMITTED). What other
# processes write (the web processes) the relay finds by asking the database: every ``relay_idle_seconds``
# (50 ms) for RELAY_QUIET_AFTER_SECONDS after it last found entries that way (a burst of requests), every
# RELAY_QUIET_POLL_SECONDS otherwise. Five relays polling at 50 ms were 100 queries a second, about 13 % of
# the embedded database's core at rest and a fifth of its time per registration (bench/README.md, "The
# relays' polling").
RELAY_QUIET_AFTER_SECONDS = 2.0
RELAY_QUIET_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class PeriodicJob:
    """``run(client, db)`` every ``interval_seconds``. Jobs must be safe with several worker copies
    (use a unique index or a lease), because every copy runs them."""

    name: str
    interval_seconds: float
    run: Callable
    # Run again without waiting the interval when this says so of run's result (a job that stopped
    # because its time budget ran out, with work left); the other jobs still get their turn first.
    rerun_when: Callable[[object], bool] | None = None
    # Also run as soon as the consumer has applied events (a job that acts on what handlers just
    # recorded, such as sending the deliveries they planned), not only every interval.
    after_events: bool = False


class Worker:
    def __init__(self, settings: PlatformSettings, subscriptions: Mapping[type[EventSchema], Handler], *,
                 periodic: list[PeriodicJob] = (), retry: RetryPolicy = RetryPolicy(), group_id: str | None = None,
                 relay_idle_seconds: float = 0.05, web_writes_events: bool = True):
        self.settings = settings
        self.subscriptions = dict(subscriptions)
        self.periodic = list(periodic)
        self.retry = retry
        self.group_id = group_id
        self.relay_idle_seconds = relay_idle_seconds
        # A service whose web processes write no events (reporting publishes nothing at all) leaves its relay
        # nothing to find by asking: it asks only at each heartbeat, as a safety net.
        self.relay_quiet_poll_seconds = RELAY_QUIET_POLL_SECONDS if web_writes_events else HEARTBEAT_SECONDS
        self.client = connect(settings.mongo_uri, settings.mongo_timeout_ms)
        self.db = self.client[settings.mongo_database]
        self.name = f"{settings.service_name}@{socket.gethostname()}:{os.getpid()}:{id(self) % 10000}"
        self._stop = threading.Event()
        self._events_applied = threading.Event()  # wakes the periodic loop for after_events jobs
        self._outbox_written = OUTBOX_COMMITTED.listener()  # wakes the relay: this process committed entries
        self._threads: list[threading.Thread] = []
        self.runner: ConsumerRunner | None = None
        self.consumer_ready = threading.Event()

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> "Worker":
        loops = [("relay", self._relay_loop)]
        if self.subscriptions:
            loops.append(("consumer", self._consumer_loop))
        else:
            self.consumer_ready.set()
        if self.periodic:
            loops.append(("periodic", self._periodic_loop))
        for name, target in loops:
            thread = threading.Thread(target=self._guard(name, target), name=f"{self.settings.service_name}-{name}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._outbox_written.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        self.client.close()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run_forever(self) -> None:
        """The process entry point: runs until SIGTERM or SIGINT."""
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        signal.signal(signal.SIGINT, lambda *_: self._stop.set())
        log.info("worker starting", extra={"worker": self.name, "subscriptions": sorted(d.type for d in self.subscriptions)})
        self.start()
        while not self._stop.wait(1.0):
            if not any(t.is_alive() for t in self._threads):
                break
        self.stop()
        log.info("worker stopped", extra={"worker": self.name})

    def _heartbeat(self) -> None:
        """Liveness for health checks (deploy/healthcheck.py), independent of the consumer's lag report."""
        try:
            self.db.worker_status.update_one(
                {"_id": self.name},
                {"$set": {"service": self.settings.service_name, "host": socket.gethostname(), "seen_at": utcnow()}},
                upsert=True)
        except Exception as exc:  # noqa: BLE001 - the database may be away; the next beat tries again
            log.warning("worker heartbeat failed", extra={"error": type(exc).__name__})

    def _guard(self, name: str, target: Callable[[], None]) -> Callable[[], None]:
        # Our own loop, not tenacity: a supervisor that restarts a loop until shutdown, waking on the stop flag.
        def run():
            while not self._stop.is_set():
                try:
                    target()
                    return
                except Exception as exc:  # noqa: BLE001 - a loop must survive outages; it restarts
                    log.error("worker loop failed; restarting it", exc_info=not is_unavailable(exc),
                              extra={"loop": name, "error": repr(exc)})
                    self._stop.wait(2.0)
        return run

    # -- loops ------------------------------------------------------------------------------------
    def _consumer_loop(self) -> None:
        runner = ConsumerRunner(kafka=self.settings.kafka, client=self.client,
                                db=self.db, subscriptions=self.subscriptions, service=self.settings.service_name,
                                group_id=self.group_id, retry=self.retry, should_stop=self._stop.is_set,
                                on_assigned=self._on_assigned)
        self.runner = runner
        last_status = 0.0
        try:
            while not self._stop.is_set():
                if runner.poll_once(timeout_ms=300):
                    self._events_applied.set()
                if time.monotonic() - last_status > 5:
                    last_status = time.monotonic()
                    self._report_status(runner)
        finally:
            runner.close()

    def _on_assigned(self, partitions: set) -> None:
        """Joined: ready as soon as the group assigns partitions, not when the joining poll returns
        (it waits up to JOIN_POLL_TIMEOUT_MS for records)."""
        if partitions:
            self.consumer_ready.set()

    def _report_status(self, runner: ConsumerRunner) -> None:
        try:
            lag = runner.lag()
        except Exception:  # noqa: BLE001 - lag is best effort
            lag = None
        now = utcnow()
        self.db.worker_status.update_one(
            {"_id": self.name},
            {"$set": {"service": self.settings.service_name, "host": socket.gethostname(), "lag": lag, "dead_lettered": runner.dead_lettered,
                      "seen_at": now, "lag_at": now}},  # lag_at: the heartbeat refreshes seen_at alone
            upsert=True,
        )

    def _relay_loop(self) -> None:
        relay = OutboxRelay(self.db, lambda: make_producer(self.settings.kafka),
                            service=self.settings.service_name)
        last_beat = last_polled_in = 0.0
        woken = False
        try:
            while not self._stop.is_set():
                if time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                    last_beat = time.monotonic()
                    self._heartbeat()
                self._outbox_written.clear()  # before reading: a commit after this point wakes the next wait
                if relay.publish_pending():
                    if not woken:  # found by polling: written by another process (a web process's burst)
                        last_polled_in = time.monotonic()
                    continue
                quiet = time.monotonic() - last_polled_in > RELAY_QUIET_AFTER_SECONDS
                woken = self._outbox_written.wait(self.relay_quiet_poll_seconds if quiet else self.relay_idle_seconds)
        finally:
            relay.close()

    def _periodic_loop(self) -> None:
        next_run = {job.name: 0.0 for job in self.periodic}
        while not self._stop.is_set():
            if self._events_applied.is_set():
                self._events_applied.clear()
                for job in self.periodic:
                    if job.after_events:
                        next_run[job.name] = 0.0
            now = time.monotonic()
            for job in self.periodic:
                if now >= next_run[job.name]:
                    again = False
                    try:
                        result = job.run(self.client, self.db)
                        again = bool(job.rerun_when and job.rerun_when(result))
                    except Exception as exc:  # noqa: BLE001 - one failing job must not stop the others
                        log.error("periodic job failed", exc_info=not is_unavailable(exc),
                                  extra={"job": job.name, "error": repr(exc)})
                    next_run[job.name] = time.monotonic() + (0.0 if again else job.interval_seconds)
            busy = any(next_run[job.name] <= time.monotonic() for job in self.periodic)
            if not busy:  # until the next interval (noticing a stop within 0.5 s) or until events arrive
                self._events_applied.wait(min(0.5, min(job.interval_seconds for job in self.periodic)))


def serve(settings, build_worker: Callable[..., Worker], ensure_indexes: Callable) -> None:
    """The entry point of every service's worker process (``python -m <service>.worker``): logs as JSON,
    makes sure the service's indexes exist, then runs until SIGTERM."""
    from shared.logging import configure_logging

    configure_logging(settings.platform.service_name, settings.platform.log_level)
    worker = build_worker(settings)
    ensure_indexes(worker.db)
    worker.run_forever()
