"""Reminders: which are due now (for each person, occurrence or session, and offset), and sending a
batch of them in one unit of work. The periodic job that drives this is ``jobs.send_due_reminders``.

Each reminder is a document whose _id is its key, inserted in the same transaction as its event: two
workers racing on one reminder conflict, and the loser finds it sent and emits nothing."""
from __future__ import annotations

from datetime import datetime, timedelta

from shared.events.scheduling import ReminderDue
from shared.unit_of_work import UnitOfWork

from scheduling import model
from scheduling.config import Settings
from scheduling.repository import Store


def due_reminders(reader: Store, settings: Settings, now: datetime, organization_id: str | None) -> list[dict]:
    """Every reminder due now, as {"_id": key, "event": ReminderDue data}, sent or not."""
    offsets = settings.reminder_offsets_minutes
    horizon = now + timedelta(minutes=max(offsets))
    pending: list[dict] = []
    for meeting in reader.all_active_meetings(organization_id):
        org = meeting["organization_id"]
        regs = None
        for occ in model.occurrences(meeting, now, horizon):
            due = model.due_offsets(occ.start, offsets, now)
            if not due:
                continue
            if regs is None:
                regs = reader.registrations(org, meeting["_id"], ("registered",))
            people = [("leader", lid) for lid in meeting.get("leader_ids") or []] + [
                ("member", mid) for mid in model.registrant_ids(regs, occ.occurrence_id)]
            for offset in due:
                for kind, pid in people:
                    pending.append({
                        "_id": f"{org}|{model.reminder_id(occ.occurrence_id, kind, pid, offset)}",
                        "event": {"organization_id": org, "person_id": pid, "person_kind": kind,
                                  "subject_kind": "occurrence", "meeting_id": meeting["_id"],
                                  "occurrence_id": occ.occurrence_id, "session_id": None,
                                  "site_id": meeting.get("site_id"), "title": meeting["name"],
                                  "starts_at": occ.start, "time_zone": meeting["time_zone"],
                                  "offset_minutes": offset}})
    for doc in reader.upcoming_booked_sessions(now, horizon, organization_id):
        org = doc["organization_id"]
        for offset in model.due_offsets(doc["start"], offsets, now):
            for kind, pid in (("member", doc["member_id"]), ("leader", doc["leader_id"])):
                pending.append({
                    "_id": f"{org}|{model.reminder_id('session:' + doc['_id'], kind, pid, offset)}",
                    "event": {"organization_id": org, "person_id": pid, "person_kind": kind,
                              "subject_kind": "session", "meeting_id": None, "occurrence_id": None,
                              "session_id": doc["_id"], "site_id": doc.get("site_id"),
                              "title": "one-on-one session", "starts_at": doc["start"],
                              "time_zone": doc["time_zone"], "offset_minutes": offset}})
    return pending


def _reminder_doc(item: dict, now: datetime) -> dict:
    data = item["event"]
    return {"_id": item["_id"], "organization_id": data["organization_id"], "person_id": data["person_id"],
            "sent_at": now}


def _emit_reminder(uow: UnitOfWork, item: dict) -> None:
    data = item["event"]
    uow.emit(ReminderDue, {**data, "reminder_id": item["_id"]})  # ce_subject = the key, the person id


def send_reminders(uow: UnitOfWork, items: list[dict], now: datetime) -> int:
    """Several reminders with their events; ``ReminderSent`` (nothing of it kept) when another worker
    sent one of them meanwhile."""
    Store.of(uow).insert_reminders([_reminder_doc(item, now) for item in items])
    for item in items:
        _emit_reminder(uow, item)
    return len(items)


def send_reminder(uow: UnitOfWork, item: dict, now: datetime) -> bool:
    """One reminder with its event; False when it is sent already."""
    if not Store.of(uow).insert_reminder(_reminder_doc(item, now)):
        return False
    _emit_reminder(uow, item)
    return True
