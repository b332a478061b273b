"""The matching worker process: consumes SUBSCRIPTIONS, relays the outbox, runs periodic jobs.

    python -m matching.worker
"""
from __future__ import annotations

from shared.worker import PeriodicJob, Worker, serve

from matching.handlers import jobs
from matching.config import Settings
from matching.repository import ensure_indexes
from matching.subscriptions import SUBSCRIPTIONS


def build_worker(settings: Settings) -> Worker:
    # Every job is safe in several worker copies: each change re-checks the state it read inside its
    # own transaction (a proposal expires once), batch runs are claimed with find_one_and_update.
    periodic = [
        PeriodicJob("expire-proposals", settings.expiry_interval_seconds, jobs.expire_due_proposals),
        PeriodicJob("end-lapsed", settings.lapse_interval_seconds, jobs.end_lapsed),
        PeriodicJob("waiting-too-long", settings.waitlist_alert_interval_seconds, jobs.alert_waiting_too_long),
        PeriodicJob("batch-runs", settings.batch_poll_seconds, jobs.run_queued_batches),
    ]
    return Worker(settings.platform, SUBSCRIPTIONS, periodic=periodic)


def main() -> None:
    serve(Settings.from_env(), build_worker, ensure_indexes)


if __name__ == "__main__":
    main()
