"""Handlers of the events intake subscribes to: none. Intake is the source of truth for who is in the
network and consumes no other service's events (its ``subscriptions.SUBSCRIPTIONS`` is empty); a
handler of a subscribed event would live here, taking the consumer's unit of work."""
from __future__ import annotations
