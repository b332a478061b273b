"""Fixtures of scheduling's service tests: one worker and one web app per module on the real servers,
and a stand-in for intake and matching that publishes their declared events."""
from __future__ import annotations

import uuid

import pytest
from kafka import KafkaProducer

from shared.events.intake import LeaderRegistered, MemberRegistered, SiteCreated
from shared.events.scheduling import MEETINGS, REMINDERS, SESSIONS
from shared.messaging.envelope import encode_value, new_event, record_headers
from shared.testing import eventually
from shared.testing.service_fixtures import service_fixtures

EVENINGS = [{"day": d, "start": "17:00", "end": "21:00"} for d in range(7)]


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


settings, worker, app, client, db, tap, headers = service_fixtures(
    "scheduling", topics=[MEETINGS, SESSIONS, REMINDERS], reminder_interval_seconds=3600.0)


@pytest.fixture(scope="session")
def producer(kafka_bootstrap):
    opened = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","))
    yield opened
    opened.close(timeout=5)


@pytest.fixture
def upstream(producer, org_id, db):
    """Stands in for intake and matching: publishes their declared events for this test's
    organization (one producer for the run), and waits until scheduling's read model has them."""

    class Upstream:
        org = org_id

        def send(self, declaration, **data):
            evt = new_event(declaration, {"organization_id": org_id, **data}, source="/recoverynet/test")
            producer.send(evt.topic, key=evt.key.encode(), value=encode_value(evt), headers=record_headers(evt))
            producer.flush(timeout=30)
            return evt

        def site(self, site_id=None, time_zone="America/New_York", **kw):
            site_id = site_id or new_id("site")
            data = {"site_id": site_id, "name": "Riverside Recovery Center", "time_zone": time_zone,
                    "virtual_only": False, "location": {"street": "12 River Rd", "city": "Albany", "region": "NY",
                                                        "postal_code": "12207", "country": "US"}}
            data.update(kw)
            self.send(SiteCreated, **data)
            return site_id

        def leader(self, leader_id=None, site_id="site-x", **kw):
            leader_id = leader_id or new_id("leader")
            data = {"leader_id": leader_id, "site_ids": [site_id], "status": "active",
                    "time_zone": "America/New_York", "languages": ["en"], "meets_virtually": True,
                    "availability": EVENINGS, "capacity": 5}
            data.update(kw)
            self.send(LeaderRegistered, **data)
            return leader_id

        def member(self, member_id=None, site_id="site-x", **kw):
            member_id = member_id or new_id("member")
            data = {"member_id": member_id, "site_id": site_id, "status": "active", "time_zone": "America/New_York",
                    "languages": ["en"], "meeting_mode": "either", "availability": EVENINGS,
                    "consents": [{"purpose": "matching", "expires_at": None}]}
            data.update(kw)
            self.send(MemberRegistered, **data)
            return member_id

        def known(self, *, sites=(), leaders=(), members=(), timeout=30):
            """Wait until the worker has put them in scheduling's read model."""
            wanted = [("sites", s) for s in sites] + [("leaders", p) for p in leaders] + [("members", m) for m in members]
            eventually(lambda: all(db[c].count_documents({"_id": f"{org_id}:{i}"}) for c, i in wanted),
                       timeout=timeout, message="read model not built")

    return Upstream()


def of(declaration, **fields):
    """Predicate over tapped events: this type, with these data fields."""
    return lambda e: e.type == declaration.type and all(e.data.get(k) == v for k, v in fields.items())


@pytest.fixture
def expect():
    class Expect:
        of = staticmethod(of)
    return Expect()
