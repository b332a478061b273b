"""Fixtures of matching's service tests: one worker and one web app per module, on the real servers,
and builders of intake's events (the tests stand in for intake)."""
from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from shared.events.intake import LeaderRegistered, MemberRegistered
from shared.events.matching import MATCHES
from shared.testing.events import EventTap, publish
from shared.repository import read_model_key
from shared.testing import eventually
from shared.testing.service_fixtures import service_fixtures

EVENINGS = [{"day": d, "start": "18:00", "end": "21:00"} for d in range(5)]


class PatientTap(EventTap):
    """Waits 60 s by default: the machine is shared, and a worker may be busy with a rebalance."""

    def wait_for(self, predicate, *, count=1, timeout=60.0):
        return super().wait_for(predicate, count=count, timeout=timeout)


settings, worker, app, client, db, tap, headers = service_fixtures(
    "matching", topics=[MATCHES], tap_class=PatientTap, expiry_interval_seconds=0.5, lapse_interval_seconds=1.0,
    waitlist_alert_interval_seconds=1.0, batch_poll_seconds=0.3)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def intake(kafka_bootstrap, org_id, db):
    """Publishes intake's events for this test's organization, as intake would. ``leader()`` waits until
    the worker has the leader (members and leaders travel on different topics, in no common order)."""

    class Intake:
        org = org_id

        def leader(self, leader_id=None, wait=True, **kw):
            data = {"organization_id": org_id, "leader_id": leader_id or new_id("leader"), "site_ids": ["site-1"],
                    "status": "active", "time_zone": "America/New_York", "languages": ["en"], "gender": "female",
                    "meets_virtually": True, "availability": EVENINGS, "capacity": 5,
                    "substances": ["alcohol"], "pathways": ["12-step"], "lived_experience_areas": ["parenting"],
                    "co_occurring_mental_health_experience": False,
                    "certifications": [{"name": "CPRS", "issuer": "State board", "expires_on": "2030-01-01"}]}
            data.update(kw)
            publish(kafka_bootstrap, LeaderRegistered, data)
            if wait:
                eventually(lambda: db.leaders.find_one({"_id": read_model_key(org_id, data["leader_id"])}), timeout=60)
            return data

        def member(self, member_id=None, **kw):
            data = {"organization_id": org_id, "member_id": member_id or new_id("member"), "site_id": "site-1",
                    "status": "active", "time_zone": "America/Chicago", "languages": ["en"],
                    "leader_gender_preference": None, "meeting_mode": "either", "availability": [
                        {"day": d, "start": "17:00", "end": "20:00"} for d in range(5)],
                    "substances": ["alcohol"], "pathways": ["12-step"], "co_occurring_mental_health": "no",
                    "lived_experience_topics": ["parenting"], "contact_channels": ["email"],
                    "consents": [{"purpose": "matching", "expires_at": None}]}
            data.update(kw)
            publish(kafka_bootstrap, MemberRegistered, data)
            return data

        def publish(self, declaration, **data):
            return publish(kafka_bootstrap, declaration, {"organization_id": org_id, **data})

    return Intake()


def proposed_for(member_id):
    from shared.events.matching import MatchProposed
    return lambda e: e.type == MatchProposed.type and e.data["member_id"] == member_id


@pytest.fixture
def expect():
    """Predicates over events: expect.proposed(member), expect.of(Declaration, member_id=...)."""

    class Expect:
        @staticmethod
        def of(declaration, **fields):
            return lambda e: e.type == declaration.type and all(e.data.get(k) == v for k, v in fields.items())

    return Expect()
