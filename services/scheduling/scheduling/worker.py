"""The scheduling worker process: consumes SUBSCRIPTIONS, relays the outbox, runs periodic jobs
(due reminders: exactly once per person, occurrence or session, and offset, whatever the number of
worker copies, thanks to the reminder key's unique _id written with the event).

    python -m scheduling.worker
"""
from __future__ import annotations

from shared.worker import PeriodicJob, Worker, serve

from scheduling.config import Settings
from scheduling.handlers.jobs import mark_sessions_held, send_due_reminders
from scheduling.repository import ensure_indexes, repository
from scheduling.subscriptions import subscriptions


def build_worker(settings: Settings) -> Worker:
    known_sent: dict = {}  # reminders this process knows are sent, until their start (see send_due_reminders)
    reminders = PeriodicJob("reminders", settings.reminder_interval_seconds,
                            run=lambda client, db: send_due_reminders(repository(client, db), settings,
                                                                      known_sent=known_sent))
    held = PeriodicJob("sessions-held", settings.reminder_interval_seconds,
                       run=lambda client, db: mark_sessions_held(repository(client, db)), rerun_when=lambda n: n >= 100)
    return Worker(settings.platform, subscriptions(settings), periodic=[reminders, held], group_id=settings.consumer_group)


def main() -> None:
    serve(Settings.from_env(), build_worker, ensure_indexes)


if __name__ == "__main__":
    main()
