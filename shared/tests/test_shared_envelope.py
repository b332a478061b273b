"""The event envelope: declaration, CloudEvents binary-mode encoding, the one decoder."""
import json

import pytest

from shared.events import REGISTRY
from shared.events.intake import CONTACTS, ContactChanged, MemberStatusChanged
from shared.messaging.envelope import MalformedEvent, decode_record, encode_value, new_event, record_headers

# "name" alone is allowed: organizations, sites and meetings have names; people's names are these.
DIRECT_IDENTIFIERS = {"full_name", "preferred_name", "first_name", "last_name", "display_name", "email", "phone", "address",
                      "date_of_birth", "birth_date", "street"}


def status_changed(**overrides):
    data = {"organization_id": "org-1", "member_id": "m-1", "site_id": "s-1",
            "from_status": "pending_consent", "to_status": "active"}
    data.update(overrides)
    return new_event(MemberStatusChanged, data, source="/recoverynet/intake")


def test_event_round_trips_through_kafka_record_form():
    evt = status_changed()
    decoded = decode_record(evt.topic, evt.key.encode(), encode_value(evt), record_headers(evt))
    assert decoded.id == evt.id and decoded.type == "org.recoverynet.intake.member.status_changed.v1"
    assert decoded.key == "m-1" and decoded.data["to_status"] == "active"
    headers = dict(record_headers(evt))
    for name in ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "content-type",
                 "traceparent"):
        assert name in headers


def test_unknown_fields_are_refused_when_producing():
    with pytest.raises(ValueError, match="email"):
        status_changed(email="someone@example.org")


@pytest.mark.parametrize("headers,value,reason", [
    ([], b"{}", "missing CloudEvents headers"),
    ([("ce_specversion", b"1.0"), ("ce_id", b"x"), ("ce_source", b"s"), ("ce_type", b"nope.v1"),
      ("ce_time", b"2026-01-01T00:00:00Z")], b"{}", "unknown event type"),
    ([("ce_specversion", b"1.0"), ("ce_id", b"x"), ("ce_source", b"s"),
      ("ce_type", MemberStatusChanged.type.encode()), ("ce_time", b"2026-01-01T00:00:00Z")], b"not json", "not JSON"),
    ([("ce_specversion", b"1.0"), ("ce_id", b"x"), ("ce_source", b"s"),
      ("ce_type", MemberStatusChanged.type.encode()), ("ce_time", b"2026-01-01T00:00:00Z")], b'{"member_id": 1}',
     "does not match"),
])
def test_malformed_records_say_why(headers, value, reason):
    with pytest.raises(MalformedEvent, match=reason):
        decode_record("t", b"k", value, headers)


def test_no_direct_identifier_is_declared_outside_the_restricted_contact_events():
    for type_name, declaration in REGISTRY.items():
        if declaration.restricted:
            assert declaration.topic == CONTACTS
            continue
        assert declaration.topic != CONTACTS, type_name
        leaked = DIRECT_IDENTIFIERS & set(declaration._declared_fields)
        assert not leaked, f"{type_name} declares identifying fields {leaked}"
    assert ContactChanged.restricted


def test_every_type_is_reverse_dns_and_versioned():
    for type_name in REGISTRY:
        assert type_name.startswith("org.recoverynet.") and type_name.rsplit(".", 1)[1].startswith("v")


def test_body_is_the_event_data_as_json():
    evt = status_changed()
    assert json.loads(encode_value(evt)) == evt.data
