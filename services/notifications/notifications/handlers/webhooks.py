"""Use cases of an organization's webhook endpoints (deliveries to them are planned by events.py)."""
from __future__ import annotations

import secrets

from shared.errors import NotFound
from shared.mongo import utcnow
from shared.unit_of_work import UnitOfWork

from notifications.repository import Store, new_id


def webhooks(store: Store, organization_id: str) -> list[dict]:
    return store.webhooks(organization_id)


def webhook(store: Store, organization_id: str, webhook_id: str) -> dict:
    doc = store.webhook(organization_id, webhook_id)
    if doc is None:
        raise NotFound("No such webhook.")
    return doc


def add(uow: UnitOfWork, organization_id: str, body: dict) -> dict:
    """A new endpoint; its signing secret is generated when not given (shown once, in the answer)."""
    return Store.of(uow).add_webhook({
        "_id": new_id(), "organization_id": organization_id, "url": body["url"],
        "secret": body.get("secret") or secrets.token_urlsafe(32), "event_types": body.get("event_types") or [],
        "active": body.get("active", True), "description": body.get("description"), "created_at": utcnow(),
    })


def delete(uow: UnitOfWork, organization_id: str, webhook_id: str) -> None:
    if not Store.of(uow).delete_webhook(organization_id, webhook_id):
        raise NotFound("No such webhook.")
