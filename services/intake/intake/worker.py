"""The intake worker process: consumes SUBSCRIPTIONS, relays the outbox, runs periodic jobs.

    python -m intake.worker
"""
from __future__ import annotations

from shared.logging import configure_logging
from shared.worker import PeriodicJob, Worker

from intake.config import Settings
from intake import handlers
from intake.repository import Repository, ensure_indexes
from intake.subscriptions import SUBSCRIPTIONS


def build_worker(settings: Settings) -> Worker:
    expiry = PeriodicJob("consent-expiry", settings.consent_expiry_check_seconds,
                         run=lambda client, db: handlers.announce_expired_consents(Repository(client, db)))
    return Worker(settings.platform, SUBSCRIPTIONS, periodic=[expiry])


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.platform.service_name, settings.platform.log_level)
    worker = build_worker(settings)
    ensure_indexes(worker.db)
    worker.run_forever()


if __name__ == "__main__":
    main()
