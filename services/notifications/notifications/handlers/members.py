"""What a member reads about themselves in notifications: their export (everything this service holds
about them). Their inbox and preferences are the people routes (``access.person_in_reach`` lets a member
reach their own person id, the token's). The member's id is the token's, never the caller's choice."""
from __future__ import annotations

from notifications import access
from notifications.handlers.preferences import read as read_preferences
from notifications.repository import Store

# What the delivery log says of a delivery (as GET /v1/deliveries shows it); not the event data it was
# rendered from, nor the worker's lease.
DELIVERY_FIELDS = ("channel", "status", "priority", "template", "attempts", "site_id", "source_event_id",
                   "source_event_type", "created_at", "updated_at", "next_attempt_at", "held_until", "delivered_at",
                   "last_error", "recipient_kind")


def export(store: Store, principal) -> dict:
    """Everything notifications holds about the member (right of access): their contact directory copy
    (from the restricted contacts topic), their notification preferences and where messages go now, the
    copy of their consents, every delivery addressed to them (the log's fields: channel, status, template,
    times; no other person's), and their in-app inbox (their messages, with bodies)."""
    org, member_id = principal.organization_id, access.own_member_id(principal)
    contact = store.contact(org, member_id)
    store.audit(principal, "export", "member", member_id, org)
    return {
        "service": "notifications", "organization_id": org, "member_id": member_id,
        "contact": {k: v for k, v in contact.items() if k != "_id"} | {"person_id": member_id} if contact else None,
        "preferences": read_preferences(store, principal, org, member_id) if contact else None,
        "consents": store.consents(org, member_id),
        "deliveries": [{"id": d["_id"], **{k: d.get(k) for k in DELIVERY_FIELDS}} for d in store.deliveries_to(org, member_id)],
        "inbox": [{k: v for k, v in m.items() if k != "_id"} | {"id": m["_id"]}
                  for m in store.all_inbox_messages(org, member_id)],
    }
