"""{event declaration: handler}: the matching service's whole inbound event surface."""
from __future__ import annotations

SUBSCRIPTIONS: dict = {}
