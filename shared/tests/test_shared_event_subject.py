"""ce_subject and the record key (issue 13): docs/subscribing.md promises that ce_subject equals the record
key for every event, and names each topic's key. Every declared event is checked against both."""
from __future__ import annotations

import inspect
import re
from datetime import date, datetime, timezone

from marshmallow import fields, validate

from shared.events import REGISTRY
from shared.events.contract import DOCS
from shared.messaging.envelope import decode_record, encode_value, new_event, record_headers
from shared.testing.events import publish
from shared.unit_of_work import UnitOfWork


def _sample(schema_cls, prefix: str) -> dict:
    """Valid data for a declaration: every field filled, each string distinct (so a key mix-up shows)."""
    data = {}
    for name, field in schema_cls._declared_fields.items():
        data[name] = _value(field, f"{prefix}-{name}")
    return data


def _value(field, label: str):
    for validator in field.validators:
        if isinstance(validator, validate.OneOf):
            return list(validator.choices)[0]
        if isinstance(validator, validate.Range):
            return validator.min if validator.min is not None else validator.max
    if isinstance(field, fields.Nested):
        nested = field.schema.__class__
        return [] if field.many else _sample(nested, label)
    if isinstance(field, fields.List):
        return []
    if isinstance(field, fields.Bool):
        return True
    if isinstance(field, (fields.Int, fields.Float)):
        return 1
    if isinstance(field, fields.DateTime):
        return datetime(2026, 11, 25, 12, tzinfo=timezone.utc).isoformat()
    if isinstance(field, fields.Date):
        return date(2026, 11, 25).isoformat()
    return label


def test_every_declared_event_has_ce_subject_equal_to_its_record_key():
    assert len(REGISTRY) > 40
    for type_name, declaration in sorted(REGISTRY.items()):
        data = _sample(declaration, "v")
        evt = new_event(declaration, data, source="/test")
        headers = dict(record_headers(evt))
        assert evt.key == data[declaration.key_field], type_name
        assert headers["ce_subject"].decode() == evt.key, type_name
        decoded = decode_record(evt.topic, evt.key.encode(), encode_value(evt), record_headers(evt))
        assert decoded.subject == decoded.key == evt.key, type_name


def test_no_producer_can_give_ce_subject_another_value():
    """The one way events are made (and the unit of work and test publisher that call it) takes no subject."""
    for made_by in (new_event, UnitOfWork.emit, publish):
        assert "subject" not in inspect.signature(made_by).parameters, made_by.__qualname__


def _guide_topic_keys() -> dict[str, str]:
    guide = (DOCS / "subscribing.md").read_text()
    rows = re.findall(r"^\| `(recoverynet\.[a-z.]+)` \| ([^|]+) \|", guide, flags=re.MULTILINE)
    return {topic: key.strip() for topic, key in rows}


def test_the_guide_states_the_rule_and_names_every_events_key():
    guide = (DOCS / "subscribing.md").read_text()
    subject_row = next(line for line in guide.splitlines() if line.startswith("| `ce_subject`"))
    assert "equal to the record key, for every event" in subject_row
    keys = _guide_topic_keys()
    for type_name, declaration in sorted(REGISTRY.items()):
        assert declaration.topic in keys, f"{declaration.topic} is missing from the guide's topic table"
        spoken = declaration.key_field.removesuffix("_id").replace("_", " ") + " id"
        assert spoken in keys[declaration.topic], (type_name, declaration.key_field, keys[declaration.topic])
