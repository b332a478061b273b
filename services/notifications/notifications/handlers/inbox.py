"""Use cases of the in-app inbox (its messages are written by the delivery job)."""
from __future__ import annotations

from shared.errors import NotFound
from shared.unit_of_work import UnitOfWork

from notifications import access
from notifications.repository import Store


def messages(store: Store, principal, organization_id: str, person_id: str, query: dict) -> tuple[list[dict], int]:
    """One page of the person's in-app messages, newest first, and the total."""
    contact = access.person_in_reach(store, principal, organization_id, person_id)
    if access.reads_are_audited(contact):
        store.audit(principal, "read", "inapp_inbox", person_id, organization_id)
    return store.inbox(organization_id, person_id, query["unread_only"], query["offset"], query["limit"])


def mark_read(uow: UnitOfWork, principal, organization_id: str, person_id: str, message_id: str) -> dict:
    """Mark an in-app message read (idempotent)."""
    store = Store.of(uow)
    access.person_in_reach(store, principal, organization_id, person_id)
    doc = store.mark_read(organization_id, person_id, message_id)
    if doc is None:
        raise NotFound("No such message.")
    return doc
