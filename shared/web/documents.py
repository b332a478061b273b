"""A stored document as an HTTP answer, for the members' exports ("everything you hold about me"):
a marshmallow field that writes a document (dict, list, scalar) as JSON, dates and times in ISO 8601."""
from __future__ import annotations

from datetime import date, datetime, timezone

from marshmallow import fields


def as_json(value):
    """``value`` with every date and time as ISO 8601 text (naive times are UTC, as pymongo returns them)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [as_json(v) for v in value]
    return value


class StoredDocument(fields.Field):
    """A stored document, written as it is held (dates and times in ISO 8601); answers only, never read."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dump_only", True)
        kwargs.setdefault("metadata", {}).setdefault("type", "object")
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else as_json(value)
