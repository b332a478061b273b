"""How an event travels: a CloudEvent in Kafka binary mode (headers ``ce_*``, JSON data as the value).

Producers call ``new_event(MemberRegistered, data)`` (declarations: ``shared.events``); consumers receive
``Event`` objects decoded by ``decode_record`` (the one decoder, at the edge) and route them by
declaration in ``subscriptions.py``.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from marshmallow import ValidationError

from shared.events.base import CONTENT_TYPE, REGISTRY, SPECVERSION, EventSchema
from shared.tracing import current_traceparent, new_traceparent


@dataclass(frozen=True)
class Event:
    """One event: CloudEvents attributes plus its validated data."""

    id: str
    type: str
    source: str
    time: datetime
    subject: str
    key: str
    data: dict[str, Any]
    topic: str
    traceparent: str | None = None
    # Kafka coordinates when consumed (None when built locally).
    partition: int | None = field(default=None, compare=False)
    offset: int | None = field(default=None, compare=False)

    @property
    def declaration(self) -> type[EventSchema]:
        return REGISTRY[self.type]

    @property
    def organization_id(self) -> str:
        return self.data["organization_id"]


class MalformedEvent(ValueError):
    """A record that cannot be an event we know: it goes to the dead-letter topic with this reason."""


def new_event(declaration: type[EventSchema], data: dict[str, Any], *, source: str,
              event_id: str | None = None, time: datetime | None = None) -> Event:
    """Validate ``data`` against the declaration and wrap it as a new event.

    ``ce_subject`` is always the record key (the declaration's key field), for every event: the
    promise docs/subscribing.md makes, so there is no way to give it another value.

    Unknown fields are refused (not silently dropped): the declaration is the whole of what may
    leave the service, which is how no direct identifier slips into an event."""
    schema = declaration(unknown="raise")
    try:
        loaded = schema.load(data)
    except ValidationError as exc:
        raise ValueError(f"{declaration.type}: invalid event data: {exc.messages}") from exc
    body = schema.dump(loaded)
    key = str(body[declaration.key_field])
    return Event(
        id=event_id or str(uuid.uuid4()),
        type=declaration.type,
        source=source,
        time=time or datetime.now(timezone.utc),
        subject=key,
        key=key,
        data=body,
        topic=declaration.topic,
        traceparent=current_traceparent.get() or new_traceparent(),
    )


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def record_headers(evt: Event) -> list[tuple[str, bytes]]:
    headers = {
        "ce_specversion": SPECVERSION,
        "ce_id": evt.id,
        "ce_source": evt.source,
        "ce_type": evt.type,
        "ce_time": _iso(evt.time),
        "ce_subject": evt.subject,
        "content-type": CONTENT_TYPE,
    }
    if evt.traceparent:
        headers["traceparent"] = evt.traceparent
    return [(name, value.encode()) for name, value in headers.items()]


def encode_value(evt: Event) -> bytes:
    return json.dumps(evt.data, separators=(",", ":"), sort_keys=True).encode()


def decode_record(topic: str, key: bytes | None, value: bytes | None,
                  headers: list[tuple[str, bytes]] | None, *,
                  partition: int | None = None, offset: int | None = None) -> Event:
    """The one decoder: a Kafka record in CloudEvents binary mode -> ``Event``, or ``MalformedEvent``."""
    hdrs: dict[str, str] = {}
    for name, raw in headers or []:
        try:
            hdrs[name] = raw.decode() if raw is not None else ""
        except UnicodeDecodeError as exc:
            raise MalformedEvent(f"header {name} is not UTF-8") from exc
    missing = [h for h in ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time") if not hdrs.get(h)]
    if missing:
        raise MalformedEvent(f"missing CloudEvents headers: {', '.join(missing)}")
    if hdrs["ce_specversion"] != SPECVERSION:
        raise MalformedEvent(f"unsupported ce_specversion {hdrs['ce_specversion']!r}")
    declaration = REGISTRY.get(hdrs["ce_type"])
    if declaration is None:
        raise MalformedEvent(f"unknown event type or version {hdrs['ce_type']!r}")
    if value is None:
        raise MalformedEvent("record has no value (tombstone) but a CloudEvents type")
    try:
        body = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEvent(f"value is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise MalformedEvent("value is not a JSON object")
    try:
        declaration().load(body)  # validate only: handlers get plain JSON data
    except ValidationError as exc:
        raise MalformedEvent(f"data does not match {declaration.type}: {exc.messages}") from exc
    try:
        time = datetime.fromisoformat(hdrs["ce_time"].replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedEvent(f"ce_time {hdrs['ce_time']!r} is not RFC 3339") from exc
    return Event(
        id=hdrs["ce_id"],
        type=declaration.type,
        source=hdrs["ce_source"],
        time=time,
        subject=hdrs.get("ce_subject") or (key.decode(errors="replace") if key else ""),
        key=key.decode(errors="replace") if key else "",
        data=body,
        topic=topic,
        traceparent=hdrs.get("traceparent"),
        partition=partition,
        offset=offset,
    )


Handler = Callable[..., None]
