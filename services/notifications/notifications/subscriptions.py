"""{event declaration: handler}: the notifications service's whole inbound event surface."""
from __future__ import annotations

SUBSCRIPTIONS: dict = {}
