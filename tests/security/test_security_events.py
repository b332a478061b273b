"""Malformed events (issue 9, Bad input): on a topic each consuming service reads, a record that is not
JSON, one whose envelope is valid but whose data breaks the contract, one of an unknown type or version
and one without its CloudEvents id and type headers are dead-lettered to that service's dead-letter topic (recoverynet.<service>.dlq) with the
reason in headers, and the worker goes on to handle the next good event of the same key (same
partition, so strictly behind the bad ones). Intake consumes no events, so it has no worker to test.

Also (Security): no direct identifier sent to intake appears in any event the world's journeys
produced outside the restricted contact topic."""
from __future__ import annotations

import json
import uuid

import pytest
from kafka import KafkaProducer

from shared.events.intake import CONTACTS, MEMBERS, ContactChanged, MemberRegistered
from shared.messaging.envelope import encode_value, new_event, record_headers
from shared.testing import eventually
from shared.testing.events import EventTap

pytestmark = pytest.mark.timeout(180)

CONSUMERS = ("matching", "scheduling", "notifications")
DLQS = {service: f"recoverynet.{service}.dlq" for service in CONSUMERS}


def _member_data(org, member_id, site_id):
    return {"organization_id": org, "member_id": member_id, "site_id": site_id, "status": "active",
            "time_zone": "America/New_York", "languages": ["en"], "leader_gender_preference": None,
            "meeting_mode": "either", "availability": [{"day": 1, "start": "18:00", "end": "19:00"}],
            "substances": [], "pathways": [], "co_occurring_mental_health": "no", "lived_experience_topics": [],
            "contact_channels": ["email"], "consents": [{"purpose": "notify:email", "expires_at": None}]}


def _contact_data(org, member_id, site_id):
    return {"organization_id": org, "person_id": member_id, "person_kind": "member", "display_name": "Dee",
            "email": f"{member_id}@example.org", "phone": None, "preferred_language": "en",
            "time_zone": "America/New_York", "site_ids": [site_id], "channels": ["email"]}


def _headers_with(evt, **replace):
    headers = [(k, v) for k, v in record_headers(evt) if k not in replace]
    return headers + [(k, v.encode()) for k, v in replace.items()]


def _reasons(tap, topic, key):
    with tap._lock:
        records = [r for r in tap.records if r.topic == topic and r.key == key.encode()]
    return [dict(r.headers)[ "x-dlq-reason"].decode() for r in records]


def test_each_worker_dead_letters_malformed_events_with_a_reason_and_handles_the_next(stack, world):
    org, site = world.org, world.ids["site"]
    key = f"mem-bad-{uuid.uuid4().hex[:8]}"
    member = new_event(MemberRegistered, _member_data(org, key, site), source="/recoverynet/test")
    contact = new_event(ContactChanged, _contact_data(org, key, site), source="/recoverynet/test")
    bad_records = []
    for good in (member, contact):
        bad_records += [
            (good.topic, b"{this is not json", record_headers(good)),
            (good.topic, json.dumps({"organization_id": org, "member_id": 42}).encode(),
             _headers_with(good, ce_id=str(uuid.uuid4()))),
            (good.topic, encode_value(good), _headers_with(good, ce_id=str(uuid.uuid4()),
                                                           ce_type=good.type.replace(".v1", ".v99"))),
            (good.topic, encode_value(good), [(k, v) for k, v in record_headers(good)
                                              if k not in ("ce_type", "ce_id")]),
        ]
    with EventTap(stack.bootstrap, list(DLQS.values())) as dlq:
        producer = KafkaProducer(bootstrap_servers=stack.bootstrap.split(","))
        try:
            for topic, value, headers in bad_records:
                producer.send(topic, key=key.encode(), value=value, headers=headers)
            for good in (member, contact):  # the good events, behind the bad ones in the same partition
                producer.send(good.topic, key=key.encode(), value=encode_value(good), headers=record_headers(good))
            producer.flush(timeout=30)
        finally:
            producer.close(timeout=5)

        # every consumer of the members topic dead-letters its four bad records, each with a reason
        for service in CONSUMERS:
            topic = DLQS[service]
            expected = 8 if service == "notifications" else 4  # notifications also reads the contacts topic
            reasons = eventually(lambda: (r := _reasons(dlq, topic, key)) and len(r) >= expected and r,
                                 timeout=60, message=f"{service} dead-letters the bad records")
            assert len(reasons) == expected, (service, reasons)
            kinds = expected // 4
            assert sum("not JSON" in r for r in reasons) == kinds, (service, reasons)
            assert sum("does not match" in r for r in reasons) == kinds, reasons
            assert sum("unknown event type or version" in r for r in reasons) == kinds, reasons
            assert sum("missing CloudEvents headers: ce_id, ce_type" in r for r in reasons) == kinds, reasons
            with dlq._lock:
                record = next(r for r in dlq.records if r.topic == topic and r.key == key.encode())
            headers = dict(record.headers)
            assert headers["x-dlq-original-topic"].decode() in (MEMBERS, CONTACTS)
            assert headers["x-dlq-consumer-group"].decode() == f"recoverynet.{service}"
            assert headers["x-dlq-original-offset"].decode().isdigit()

    # ... and each worker handled the good events behind them
    admin = world.h()
    eventually(lambda: stack.client("matching").get(f"/v1/members/{key}/proposals", headers=admin).status_code == 200,
               timeout=60, message="matching handled the good event")
    eventually(lambda: stack.client("scheduling").get(f"/v1/feeds/{org}/members/{key}/calendar.ics",
                                                      headers=admin).status_code == 200,
               timeout=60, message="scheduling handled the good event")
    eventually(lambda: stack.client("notifications").get(f"/v1/people/{key}/preferences",
                                                         headers=admin).status_code == 200,
               timeout=60, message="notifications handled the good events")


def test_no_direct_identifier_appears_in_any_event_outside_the_contact_topic(stack, world):
    """Every event the world's journeys produced (registrations, consents, screenings, plans, imports,
    matches, sessions, meetings, registrations, deliveries), read from every topic."""
    events = stack.tap.matching(lambda e: e.organization_id == world.org)
    assert {e.topic for e in events} >= {"recoverynet.intake.members", "recoverynet.intake.leaders",
                                         "recoverynet.matching.matches", CONTACTS}
    assert len(events) > 20
    outside = [e for e in events if e.topic != CONTACTS]
    for evt in outside:
        text = json.dumps(evt.data).lower()
        found = [value for value in world.identifiers if value.lower() in text]
        assert not found, (evt.topic, evt.type, found)
    inside = [e for e in events if e.topic == CONTACTS]
    assert any(value.lower() in json.dumps(e.data).lower() for e in inside for value in world.identifiers)
