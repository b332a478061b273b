"""Rebuild: empty the database's derived collections and replay every subscribed topic from its first
offset (a consumer group of its own, new each time) until caught up. The figures come out the same,
because every handler is order-independent and the inbox drops what was already applied."""
from __future__ import annotations

import time
import uuid

from pymongo.errors import CollectionInvalid

from shared.messaging.consumer import ConsumerRunner
from shared.mongo import connect

from reporting.config import Settings
from reporting.repository import Store, ensure_indexes
from reporting.subscriptions import subscriptions


def rebuild(settings: Settings, *, idle_polls: int = 3, timeout_seconds: float = 3600.0) -> dict:
    """-> {"events": applied, "seconds": elapsed, "group_id": the replay's group}."""
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
                            subscriptions=subscriptions(settings), service="reporting", group_id=group)
    started, applied, idle = time.monotonic(), 0, 0
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
    return {"events": applied, "seconds": time.monotonic() - started, "group_id": group}
