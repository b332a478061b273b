"""{event declaration: handler}: the scheduling service's whole inbound event surface."""
from __future__ import annotations

SUBSCRIPTIONS: dict = {}
