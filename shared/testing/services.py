"""Running a service's worker inside a test: started, joined to its consumer group, then stopped.

    with running(build_worker(settings)) as worker:
        ... publish or call the API, then poll for the effect ...
"""
from __future__ import annotations

import contextlib
import logging
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from shared.messaging.kafka import consumer_group
from shared.mongo import utcnow
from shared.testing.polling import eventually
from shared.worker import Worker

log = logging.getLogger(__name__)


@contextlib.contextmanager
def running(*workers: Worker, join_timeout: float = 60.0):
    """Start the workers together, then wait until each has joined its consumer group (a join takes the
    broker a few seconds, so several workers join at once rather than one after another). Yields the
    worker, or the tuple of them when given several; stops them all on the way out.

    Each worker's group is first committed at the end of its topics (``start_at_the_end``), so it reads only
    what is published from now on, not what every earlier test on this broker published (thousands of events
    late in a run, in whatever order the test processes took the files)."""
    start_at_the_end(list(workers))
    started = []
    try:
        for worker in workers:
            worker.start()
            started.append(worker)
        deadline = time.monotonic() + join_timeout
        for worker in workers:
            if not worker.consumer_ready.wait(max(0.0, deadline - time.monotonic())):
                raise AssertionError(f"worker {worker.name} did not join its consumer group in {join_timeout}s")
        yield workers[0] if len(workers) == 1 else workers
    finally:
        for worker in reversed(started):
            worker.stop()


def caught_up(workers: list[Worker], *, timeout: float = 120.0) -> None:
    """Until every worker (already ``running``) has reported, since this call, no events left to read.

    Workers that use a service's own consumer group on a broker other tests have written to start with what
    those tests published and that group never read. A test whose own requests must not wait behind that
    backlog's transactions waits for this first. The lag is read from the worker's status document (its
    consumer thread reports it every few seconds; the Kafka client is not for other threads)."""
    since = utcnow()

    def reported_nothing_left() -> bool:
        for worker in workers:
            if not worker.subscriptions:
                continue  # no consumer: nothing to read
            status = worker.db.worker_status.find_one({"_id": worker.name}) or {}
            if status.get("lag") != 0 or not status.get("lag_at") or status["lag_at"] <= since:
                return False
        return True

    eventually(reported_nothing_left, timeout=timeout, interval=0.5,
               message=f"the workers ({', '.join(w.name for w in workers)}) to read what was waiting for them")


def start_at_the_end(workers: list[Worker]) -> None:
    """Before the workers start: commit each one's consumer group at the current end of its topics.

    A service's own group, on a broker earlier tests wrote to, would otherwise first apply everything
    those tests published (other organizations' events; a minute and more late in the suite). Best
    effort: a group the broker will not commit for (a member of it still alive) keeps its offsets, and
    ``caught_up`` then waits for it to read them."""
    for worker in workers:
        if not worker.subscriptions:
            continue
        group_at_the_end(worker.settings.kafka, worker.group_id or consumer_group(worker.settings.service_name),
                         {decl.topic for decl in worker.subscriptions})


def group_at_the_end(kafka, group: str, topics) -> None:
    """Commit consumer ``group`` at the current end of ``topics`` (``kafka``: a KafkaConnection)."""
    consumer = KafkaConsumer(**kafka.client_config(), group_id=group, enable_auto_commit=False)
    try:
        consumer.topics()  # metadata of every topic, so their partitions are known
        partitions = [TopicPartition(t, p) for t in sorted(topics) for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = consumer.end_offsets(partitions)
        consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in ends.items()})
    except KafkaError as exc:
        log.warning("could not move group %s to the end of its topics: %r", group, exc)
    finally:
        consumer.close()
