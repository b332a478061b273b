"""Fixtures for intake service tests: the real app on the real database, the worker relaying the
outbox to the real broker, and a small client that sets up an organization with sites and tokens."""
from __future__ import annotations

import uuid

import pytest

from shared.events.intake import CONTACTS, LEADERS, MEMBERS, ORGANIZATIONS
from shared.testing.fixtures import auth_header
from shared.testing.service_fixtures import tap_fixture
from shared.testing.services import running

from intake.app import create_app
from intake.config import Settings
from intake.repository import ensure_indexes
from intake.worker import build_worker

ALL_TOPICS = [ORGANIZATIONS, MEMBERS, LEADERS, CONTACTS]


@pytest.fixture(scope="session")
def intake_settings(platform_settings):
    return Settings(platform=platform_settings("intake"), consent_expiry_check_seconds=0.5)


@pytest.fixture(scope="session")
def intake_app(intake_settings):
    app = create_app(intake_settings)
    ensure_indexes(app.extensions["mongo.db"])
    return app


@pytest.fixture(scope="session")
def intake_db(intake_app):
    return intake_app.extensions["mongo.db"]


@pytest.fixture(scope="module")
def intake_worker(intake_settings, intake_app):
    with running(build_worker(intake_settings)) as worker:
        yield worker


tap = tap_fixture(ALL_TOPICS)


class IntakeClient:
    """The test client plus an organization (created by an operator) and tokens for it."""

    def __init__(self, app, make_token, org_id, *, allows_youth=False):
        self.http = app.test_client()
        self.make_token = make_token
        self.org = org_id
        operator = make_token(None, "operator")
        r = self.http.post("/v1/organizations", json={"id": org_id, "name": f"Org {org_id}", "allows_youth": allows_youth},
                           headers=auth_header(operator))
        assert r.status_code == 201, r.json
        assert r.json["id"] == org_id
        self.admin = make_token(self.org, "admin")

    def headers(self, token=None, **extra):
        return {**auth_header(token or self.admin), **extra}

    def call(self, method, path, token=None, *, expect=None, headers=None, **kwargs):
        r = getattr(self.http, method)(path, headers=self.headers(token, **(headers or {})), **kwargs)
        if expect is not None:
            assert r.status_code == expect, (r.status_code, r.get_json(silent=True))
        return r

    def site(self, name="Main", time_zone="America/Chicago", **extra):
        body = {"name": name, "time_zone": time_zone, "virtual_only": False,
                "address": {"street": "1 Main St", "city": "Springfield"}, **extra}
        return self.call("post", "/v1/sites", json=body, expect=201).json

    def coordinator(self, *site_ids):
        return self.make_token(self.org, "coordinator", sites=list(site_ids))

    def member(self, site_id, token=None, expect=201, **fields):
        return self.call("post", "/v1/members", token, json=member_body(site_id, **fields), expect=expect)

    def leader(self, site_ids, token=None, expect=201, **fields):
        return self.call("post", "/v1/leaders", token, json=leader_body(site_ids, **fields), expect=expect)


def unique_email(prefix="person"):
    return f"{prefix}.{uuid.uuid4().hex[:10]}@example.org"


def unique_phone():
    # A valid US number in the 555-01xx fictional range is not "valid" to libphonenumber; use real-shaped ones.
    return f"+1617555{uuid.uuid4().int % 10000:04d}"


def member_body(site_id, **fields):
    body = {
        "site_id": site_id, "first_name": "Alex", "last_name": "Rivera", "preferred_name": "Al",
        "pronouns": "they/them", "email": unique_email("alex"), "date_of_birth": "1990-04-02",
        "languages": ["en", "es"], "availability": [{"day": 1, "start": "18:00", "end": "20:00"}],
        "contact_channels": ["email", "sms"], "substances": ["alcohol"], "pathways": ["smart"],
        "co_occurring_mental_health": "yes", "lived_experience_topics": ["parenting"],
        "meeting_mode": "virtual",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not ...}


def leader_body(site_ids, **fields):
    body = {
        "site_ids": list(site_ids), "first_name": "Sam", "last_name": "Lee", "email": unique_email("sam"),
        "languages": ["en"], "gender": "female", "meets_virtually": True, "capacity": 4,
        "availability": [{"day": 2, "start": "17:00", "end": "21:00"}], "pathways": ["twelve_step"],
        "substances": ["alcohol"], "lived_experience_areas": ["parenting"],
        "certifications": [{"name": "CPRS", "issuer": "State board", "expires_on": "2030-01-01"}],
    }
    body.update(fields)
    return body


@pytest.fixture
def intake(intake_app, make_token, org_id):
    return IntakeClient(intake_app, make_token, org_id)


@pytest.fixture
def intake_factory(intake_app, make_token):
    return lambda **kw: IntakeClient(intake_app, make_token, f"org-{uuid.uuid4().hex[:8]}", **kw)


@pytest.fixture
def bodies():
    """Builders of request bodies (tests cannot import conftest)."""

    class Bodies:
        member = staticmethod(member_body)
        leader = staticmethod(leader_body)
        email = staticmethod(unique_email)
        phone = staticmethod(unique_phone)

    return Bodies
