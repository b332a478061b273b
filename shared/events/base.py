"""How an event is declared once: a marshmallow schema with its type name, version, topic and key.

A declaration is a marshmallow schema decorated with ``@event``::

    @event("org.recoverynet.intake.member.registered", version=1, topic=MEMBERS, key="member_id")
    class MemberRegistered(EventSchema):
        '''A member was registered at a site.'''
        member_id = fields.Str(required=True)

How an event travels (the CloudEvents codec in Kafka binary mode) is ``shared.messaging.envelope``.
"""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields

# The CloudEvents binding every event is published with (the contract documents it).
SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"

# Every declared event type ("name.vN") -> its schema class. Filled by @event at import time.
REGISTRY: dict[str, type["EventSchema"]] = {}


class EventSchema(Schema):
    """Base of every event's data. Every event belongs to exactly one organization."""

    class Meta:
        # Consumers ignore fields added later in the same version (additive changes are compatible).
        unknown = EXCLUDE

    organization_id = fields.Str(required=True, metadata={"description": "Organization (tenant) id"})

    # Set by @event:
    type: str
    name: str
    version: int
    topic: str
    key_field: str
    restricted: bool


def event(name: str, *, version: int, topic: str, key: str, restricted: bool = False):
    """Declare a schema as an event type: its reverse-DNS name, version, topic and Kafka key field.

    ``restricted`` marks events that carry contact details: they may only go on restricted topics
    that notifications alone reads (DESIGN.md, privacy)."""

    def register(schema_cls: type[EventSchema]) -> type[EventSchema]:
        type_name = f"{name}.v{version}"
        if type_name in REGISTRY:
            raise ValueError(f"event type {type_name} declared twice")
        if key not in schema_cls._declared_fields:
            raise ValueError(f"{type_name}: key field {key!r} is not a field of {schema_cls.__name__}")
        schema_cls.type = type_name
        schema_cls.name = name
        schema_cls.version = version
        schema_cls.topic = topic
        schema_cls.key_field = key
        schema_cls.restricted = restricted
        REGISTRY[type_name] = schema_cls
        return schema_cls

    return register
