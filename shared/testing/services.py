"""Running a service's worker inside a test: started, joined to its consumer group, then stopped.

    with running(build_worker(settings)) as worker:
        ... publish or call the API, then poll for the effect ...
"""
from __future__ import annotations

import contextlib

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
