"""Use cases of the delivery log: what went to whom (by id), when, on which channel, with which outcome;
and sending a failed delivery again."""
from __future__ import annotations

from shared.errors import Conflict, NotFound
from shared.repository import site_scope
from shared.unit_of_work import UnitOfWork

from notifications import access
from notifications.repository import Store

FILTERS = ("recipient_id", "channel", "status", "source_event_id")


def deliveries(store: Store, principal, organization_id: str, query: dict) -> tuple[list[dict], int]:
    """One page of the organization's log, kept inside the caller's sites."""
    filters = {k: query.get(k) for k in FILTERS}
    sites = site_scope("site_id", principal.site_filter(), query.get("site_id"))
    return store.deliveries(organization_id, filters, sites, query["offset"], query["limit"],
                            created_from=query.get("created_from"), created_to=query.get("created_to"))


def delivery(store: Store, principal, organization_id: str, delivery_id: str) -> dict:
    doc = store.delivery(organization_id, delivery_id)
    if doc is None or not access.may_see_delivery(principal, doc):
        raise NotFound("No such delivery.")
    return doc


def retry(uow: UnitOfWork, organization_id: str, delivery_id: str) -> dict:
    """A failed delivery goes again from its first try (exactly-once still holds: the same delivery)."""
    store = Store.of(uow)
    doc = store.retry_failed(organization_id, delivery_id)
    if doc is None:
        if store.delivery(organization_id, delivery_id) is None:
            raise NotFound("No such delivery.")
        raise Conflict("Only a failed delivery (with a recipient) can be retried.")
    return doc
