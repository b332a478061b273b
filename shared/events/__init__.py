"""Event contracts: one module per producing service, each event declared once (DESIGN.md).

Declarations only: nothing here imports tracing, Kafka or MongoDB (how events travel is
``shared.messaging``). Importing this package registers every declaration, so any consumer can decode
any event.
"""
from shared.events import intake, matching, notifications, scheduling  # noqa: F401  (registers)
from shared.events.base import REGISTRY, EventSchema, event  # noqa: F401

RESTRICTED_TOPICS = {intake.CONTACTS}


def all_topics() -> set[str]:
    """Every topic an event is declared on."""
    return {decl.topic for decl in REGISTRY.values()}
