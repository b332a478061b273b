"""Periodic work of the notifications worker besides sending (handlers/delivery.py): releasing messages
held by quiet hours, and the daily digests. A job is an entry point: it opens its own units of work."""
from __future__ import annotations

from datetime import datetime

from shared.mongo import utcnow
from shared.unit_of_work import UnitOfWork

from notifications import model
from notifications.config import Settings
from notifications.repository import Repository, Store, new_id

DIGEST_EVENT_TYPE = "org.recoverynet.notifications.digest.v1"


def release_held(repo: Repository, now: datetime | None = None) -> int:
    """Quiet hours ended: held deliveries become due now."""
    return repo.reader().release_held(now or utcnow())


def run_digests(settings: Settings, repo: Repository, now: datetime | None = None) -> int:
    """Once a day per person and channel (from the digest hour in their zone), the low-priority
    messages that waited become one digest delivery."""
    now = now or utcnow()
    made = 0
    reader = repo.reader()
    for group in reader.digest_groups():
        contact = reader.contact(group["organization_id"], group["person_id"])
        time_zone = (contact or {}).get("time_zone")
        if repo.transaction(lambda uow: _make_digest(uow, settings, group, time_zone, now)):
            made += 1
    return made


def _make_digest(uow: UnitOfWork, settings: Settings, group: dict, time_zone: str | None, now: datetime) -> bool:
    """One digest delivery of a group's waiting items, when the person's digest is due; False otherwise."""
    store = Store.of(uow)
    org, person_id, channel = group["organization_id"], group["person_id"], group["channel"]
    local_date = model.digest_due(now, time_zone, settings.digest_local_hour,
                                  store.last_digest_date(org, person_id, channel))
    if local_date is None:
        return False
    digest_id = new_id()
    items = store.take_digest_items(group["ids"], digest_id)
    if not items:
        return False
    store.record_delivery({
        "_id": digest_id, "key": model.idempotency_key(f"digest:{local_date}", person_id, channel),
        "organization_id": org, "site_id": items[0].get("site_id"), "source_event_id": digest_id,
        "source_event_type": DIGEST_EVENT_TYPE, "source_event_time": now, "template": "digest",
        "priority": "low", "attempts": 0, "created_at": now, "updated_at": now, "delivered_at": None,
        "last_error": None, "recipient_id": person_id, "recipient_kind": group["kind"],
        "recipient_role": items[0].get("recipient_role"), "channel": channel, "status": "pending",
        "next_attempt_at": now, "held_until": None,
        "event_data": {"items": [{"template": i["template"], "role": i.get("recipient_role"),
                                  "data": i.get("event_data"), "meeting": i.get("meeting") or {}}
                                 for i in items]},
    })
    store.mark_digest_sent(org, person_id, channel, local_date)
    return True
