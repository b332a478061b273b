"""{event declaration: handler}: the intake service's whole inbound event surface (none: intake is the
source of truth for who is in the network; handlers of subscribed events would be in handlers/events.py)."""
from __future__ import annotations

from intake.handlers import events  # noqa: F401  (no event is subscribed to)

SUBSCRIPTIONS: dict = {}
