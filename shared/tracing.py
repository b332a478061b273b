"""W3C trace context (``traceparent``), so one journey can be followed across services.

The current traceparent lives in a context variable: the web layer sets it per request (from the
incoming header, or a new trace), the consumer runner sets it per event (a child of the event's), and
``shared.events.new_event`` stamps it on every event produced meanwhile.
"""
from __future__ import annotations

import contextvars
import re
import secrets

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
current_traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_traceparent", default=None
)


def new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def child_of(traceparent: str | None) -> str:
    """Same trace, new span; a new trace when the parent is missing or malformed."""
    match = _TRACEPARENT.match(traceparent or "")
    if not match:
        return new_traceparent()
    return f"00-{match.group(1)}-{secrets.token_hex(8)}-{match.group(3)}"


def trace_id(traceparent: str | None) -> str | None:
    match = _TRACEPARENT.match(traceparent or "")
    return match.group(1) if match else None
