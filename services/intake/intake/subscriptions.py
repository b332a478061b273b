"""{event declaration: handler}: the intake service's whole inbound event surface."""
from __future__ import annotations

SUBSCRIPTIONS: dict = {}
