"""Event contracts: one module per producing service, each event declared once (DESIGN.md).

Importing this package registers every declaration, so any consumer can decode any event.
"""
from shared.events import intake, matching, notifications, scheduling  # noqa: F401  (registers)
from shared.events.envelope import (  # noqa: F401
    REGISTRY,
    Event,
    EventSchema,
    MalformedEvent,
    decode_record,
    encode_value,
    event,
    new_event,
    record_headers,
)

RESTRICTED_TOPICS = {intake.CONTACTS}


def all_topics() -> set[str]:
    """Every topic an event is declared on."""
    return {decl.topic for decl in REGISTRY.values()}
