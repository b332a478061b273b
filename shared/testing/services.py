"""Running a service's worker inside a test: started, joined to its consumer group, then stopped.

    with running(build_worker(settings)) as worker:
        ... publish or call the API, then poll for the effect ...
"""
from __future__ import annotations

import contextlib

from shared.mongo import utcnow
from shared.testing.polling import eventually
from shared.worker import Worker


@contextlib.contextmanager
def running(worker: Worker, *, join_timeout: float = 60.0):
    worker.start()
    try:
        if not worker.consumer_ready.wait(join_timeout):
            raise AssertionError(f"worker {worker.name} did not join its consumer group in {join_timeout}s")
        yield worker
    finally:
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
