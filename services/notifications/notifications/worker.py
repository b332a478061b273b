"""The notifications worker process: consumes SUBSCRIPTIONS, relays the outbox, runs periodic jobs
(send due deliveries, release messages held by quiet hours, daily digests).

    python -m notifications.worker
"""
from __future__ import annotations

from shared.worker import PeriodicJob, Worker, serve

from notifications.channels import Channels
from notifications.config import Settings
from notifications.handlers import jobs
from notifications.handlers.delivery import Deliverer
from notifications.repository import Repository, ensure_indexes
from notifications.subscriptions import SUBSCRIPTIONS


def build_worker(settings: Settings, channels: Channels | None = None) -> Worker:
    worker = Worker(settings.platform, SUBSCRIPTIONS)
    repo = Repository(worker.client, worker.db)
    deliverer = Deliverer(settings, repo, channels)
    worker.periodic = [
        # sends for a few seconds at a time; runs again at once while there was work, and as soon as the
        # consumer has recorded new deliveries
        PeriodicJob("deliver", settings.delivery_interval_seconds, lambda client, db: deliverer.run_once(),
                    rerun_when=bool, after_events=True),
        PeriodicJob("release-held", settings.release_interval_seconds, lambda client, db: jobs.release_held(repo)),
        PeriodicJob("digests", settings.digest_interval_seconds, lambda client, db: jobs.run_digests(settings, repo)),
    ]
    return worker


def main() -> None:
    serve(Settings.from_env(), build_worker, ensure_indexes)


if __name__ == "__main__":
    main()
