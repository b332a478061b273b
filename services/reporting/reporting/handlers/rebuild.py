"""Rebuild: empty the database's derived collections and replay every subscribed topic from its first
offset (a consumer group of its own, new each time) until caught up. The figures come out the same,
because every handler is order-independent and the inbox drops what was already applied. Events are
applied in batches of up to REBUILD_BATCH a partition, each folded in memory (handlers.events.folded, as the worker's):
every member and aggregate document a batch touches is read once and written once."""
from __future__ import annotations

import time
import uuid

from pymongo.errors import CollectionInvalid

from shared.messaging.consumer import ConsumerRunner
from shared.mongo import connect

from reporting.config import Settings
from reporting.repository import Store, ensure_indexes
from reporting.handlers.events import FOLDED
from reporting.subscriptions import subscriptions

# events of a partition applied in one transaction during a rebuild (the worker's consumer: 50); the
# consumer halves it while a batch's transaction runs out of time
REBUILD_BATCH = 500


def rebuild(settings: Settings, *, idle_polls: int = 3, timeout_seconds: float = 3600.0,
            batch_size: int = REBUILD_BATCH) -> dict:
    """-> {"events": applied, "seconds": elapsed, "group_id": the replay's group, "folded_batches",
    "folded_events": how many batches (and their events) were written folded}."""
    client = connect(settings.platform.mongo_uri, settings.platform.mongo_timeout_ms)
    db = client[settings.platform.mongo_database]
    Store(db).drop_derived()
    for attempt in range(5):
        try:
            ensure_indexes(db)
            break
        except CollectionInvalid:
            # a worker still running wrote to a collection between the check and the create (it may keep
            # running: the inbox makes the overlap harmless); the collection exists, so look again
            if attempt == 4:
                raise
    group = f"recoverynet.reporting.rebuild-{uuid.uuid4().hex[:12]}"
    runner = ConsumerRunner(kafka=settings.platform.kafka, client=client, db=db,
                            subscriptions=subscriptions(settings), service="reporting", group_id=group,
                            batch_size=batch_size)
    # a poll returns up to max_poll_records (200 for the worker): as many as a batch may hold
    runner.consumer.config["max_poll_records"] = max(batch_size, runner.consumer.config["max_poll_records"])
    started, applied, idle = time.monotonic(), 0, 0
    folded_before = dict(FOLDED)
    deadline = started + timeout_seconds
    try:
        while time.monotonic() < deadline:
            handled = runner.poll_once(timeout_ms=1000)
            applied += handled
            assigned = runner.consumer.assignment()
            if assigned and handled == 0 and runner.lag() == 0:
                idle += 1
                if idle >= idle_polls:
                    break
            else:
                idle = 0
        else:
            raise TimeoutError(f"rebuild not caught up after {timeout_seconds:.0f} s")
    finally:
        runner.close()
        client.close()
    return {"events": applied, "seconds": time.monotonic() - started, "group_id": group,
            "folded_batches": FOLDED["batches"] - folded_before["batches"],
            "folded_events": FOLDED["events"] - folded_before["events"]}
