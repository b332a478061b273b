"""{event declaration: handler}: the intake service's whole inbound event surface. Intake is the source
of truth for who is in the network; it listens only to matching's matches, to know who is matched with
whom (the member's "my peer leader" and the leader's view of their members)."""
from __future__ import annotations

from intake.handlers import events

SUBSCRIPTIONS: dict = {declaration: events.on_match_changed for declaration in events.STATUS_OF}
