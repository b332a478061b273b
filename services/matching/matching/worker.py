"""The matching worker process: consumes SUBSCRIPTIONS, relays the outbox, runs periodic jobs.

    python -m matching.worker
"""
from __future__ import annotations

from shared.logging import configure_logging
from shared.worker import Worker

from matching.config import Settings
from matching.repository import ensure_indexes
from matching.subscriptions import SUBSCRIPTIONS


def build_worker(settings: Settings) -> Worker:
    return Worker(settings.platform, SUBSCRIPTIONS, periodic=[])


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.platform.service_name, settings.platform.log_level)
    worker = build_worker(settings)
    ensure_indexes(worker.db)
    worker.run_forever()


if __name__ == "__main__":
    main()
