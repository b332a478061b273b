"""The intake worker process: consumes SUBSCRIPTIONS, relays the outbox, runs periodic jobs.

    python -m intake.worker
"""
from __future__ import annotations

from shared.repository import Repository
from shared.worker import PeriodicJob, Worker, serve

from intake.config import Settings
from intake.handlers import jobs
from intake.repository import SOURCE, Store, ensure_indexes
from intake.subscriptions import SUBSCRIPTIONS


def build_worker(settings: Settings) -> Worker:
    expiry = PeriodicJob("consent-expiry", settings.consent_expiry_check_seconds,
                         run=lambda client, db: jobs.announce_expired_consents(
                             Repository(client, db, source=SOURCE, store=Store, retry_duplicates=True)))
    return Worker(settings.platform, SUBSCRIPTIONS, periodic=[expiry])


def main() -> None:
    serve(Settings.from_env(), build_worker, ensure_indexes)


if __name__ == "__main__":
    main()
