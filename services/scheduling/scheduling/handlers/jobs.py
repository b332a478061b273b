"""Periodic work of the scheduling worker. A job is an entry point: it opens its own units of work."""
from __future__ import annotations

from datetime import datetime

from shared.mongo import utcnow
from shared.repository import Repository

from scheduling import model
from scheduling.config import Settings
from scheduling.handlers import reminders, sessions
from scheduling.repository import ReminderSent

REMINDERS_PER_TRANSACTION = 100


def send_due_reminders(repo: Repository, settings: Settings, now: datetime | None = None, *,
                       organization_id: str | None = None, known_sent: dict[str, datetime] | None = None) -> int:
    """Emit ReminderDue for every person, occurrence or session and offset that is due now, once.

    ``organization_id`` limits a run to one organization (an operator's re-run, tests).
    ``known_sent`` (reminder key -> start), kept by the worker between runs, spares the database the
    question for reminders this worker already knows are sent (a reminder stays due until its window
    closes, and the job runs every interval meanwhile); keys are forgotten once their start is past."""
    now = now or utcnow()
    known_sent = {} if known_sent is None else known_sent
    reader = repo.reader()
    pending = reminders.due_reminders(reader, settings, now, organization_id)
    for key_, start in list(known_sent.items()):
        if model.as_utc(start) <= now:
            del known_sent[key_]
    pending = [p for p in pending if p["_id"] not in known_sent]
    if not pending:
        return 0
    already = reader.reminder_ids_sent([p["_id"] for p in pending])
    unsent = [p for p in pending if p["_id"] not in already]
    sent = 0
    for start in range(0, len(unsent), REMINDERS_PER_TRANSACTION):
        sent += _send_batch(repo, unsent[start:start + REMINDERS_PER_TRANSACTION], now)
    known_sent.update((p["_id"], p["event"]["starts_at"]) for p in pending)
    return sent


def _send_batch(repo: Repository, items: list[dict], now: datetime) -> int:
    """Several reminders in one transaction; one by one when another worker sent one of them meanwhile
    (the transaction then fails on its key, and nothing of it is kept)."""
    if len(items) == 1:
        return int(_send_one(repo, items[0], now))
    try:
        return repo.transaction(lambda uow: reminders.send_reminders(uow, items, now))
    except ReminderSent:
        return sum(_send_one(repo, item, now) for item in items)


def _send_one(repo: Repository, item: dict, now: datetime) -> bool:
    try:
        return repo.transaction(lambda uow: reminders.send_reminder(uow, item, now))
    except ReminderSent:  # another worker committed the same reminder first
        return False


def mark_sessions_held(repo: Repository, now: datetime | None = None) -> int:
    """Record the sessions that took place (booked, not cancelled, end passed): SessionHeld once each."""
    return repo.transaction(lambda uow: sessions.mark_held(uow, now or utcnow()))
