"""Instants and wall times: every instant is an aware UTC ``datetime``; a local wall time is a naive
``datetime`` paired with an IANA zone name."""
from __future__ import annotations

from datetime import datetime, timezone

from shared.clock import zone

UTC = timezone.utc


def to_utc(local: datetime, tz_name: str) -> datetime:
    """A naive local wall time in ``tz_name`` -> the UTC instant. A wall time that does not exist
    (the hour skipped when clocks go forward) lands one hour later, as zoneinfo resolves fold=0."""
    aware = local.replace(tzinfo=zone(tz_name))
    return aware.astimezone(UTC)


def to_local(instant: datetime, tz_name: str) -> datetime:
    """A UTC instant -> naive local wall time in ``tz_name``."""
    return as_utc(instant).astimezone(zone(tz_name)).replace(tzinfo=None)


def as_utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def to_instant(value: datetime, tz_name: str) -> datetime:
    """A datetime from a request: with an offset it is an instant; without, local to ``tz_name``."""
    return to_utc(value, tz_name) if value.tzinfo is None else as_utc(value)
