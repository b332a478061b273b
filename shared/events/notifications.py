"""Events notifications publishes about its deliveries. Recipients by id only."""
from marshmallow import fields, validate

from shared.events.base import EventSchema, event

DELIVERIES = "recoverynet.notifications.deliveries"


class DeliveryRef(EventSchema):
    delivery_id = fields.Str(required=True)
    recipient_id = fields.Str(required=True)
    recipient_kind = fields.Str(required=True, metadata={"description": "member, leader, staff or webhook"})
    channel = fields.Str(required=True, validate=validate.OneOf(("email", "sms", "webhook", "inapp")))
    source_event_id = fields.Str(required=True)
    source_event_type = fields.Str(required=True)


@event("org.recoverynet.notifications.delivery.delivered", version=1, topic=DELIVERIES, key="recipient_id")
class NotificationDelivered(DeliveryRef):
    attempts = fields.Int(required=True)


@event("org.recoverynet.notifications.delivery.failed", version=1, topic=DELIVERIES, key="recipient_id")
class NotificationFailed(DeliveryRef):
    attempts = fields.Int(required=True)
    reason = fields.Str(required=True)


@event("org.recoverynet.notifications.channel.unsubscribed", version=1, topic=DELIVERIES, key="recipient_id")
class ChannelUnsubscribed(EventSchema):
    """A person turned a channel off with the signed unsubscribe link of a message (once per change)."""

    recipient_id = fields.Str(required=True)
    channel = fields.Str(required=True, validate=validate.OneOf(("email", "sms", "webhook", "inapp")))
