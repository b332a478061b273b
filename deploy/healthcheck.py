"""Container health check of a worker: healthy while this host's worker of the service has written its
heartbeat to MongoDB recently (the worker does so every few seconds, with its consumer lag).

    python -m deploy.healthcheck worker intake        exit 0 healthy, 1 not
"""
from __future__ import annotations

import socket
import sys
from datetime import timedelta

from shared.config import EnvReader
from shared.mongo import connect, utcnow

STALE_AFTER = timedelta(seconds=60)


def worker_is_healthy(mongo_uri: str, database: str, service: str, host: str) -> bool:
    client = connect(mongo_uri, timeout_ms=3000)
    try:
        status = client[database].worker_status.find_one(
            {"service": service, "host": host, "seen_at": {"$gte": utcnow() - STALE_AFTER}})
        return status is not None
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "worker":
        print("usage: python -m deploy.healthcheck worker SERVICE", file=sys.stderr)
        return 2
    service = argv[1]
    env = EnvReader()
    uri = env.mongo_uri()
    database = env.str("MONGO_DATABASE", f"recoverynet_{service}")
    env.done()
    try:
        return 0 if worker_is_healthy(uri, database, service, socket.gethostname()) else 1
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy", said briefly
        print(f"unhealthy: {type(exc).__name__}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
