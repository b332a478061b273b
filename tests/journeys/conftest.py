"""Journeys across the whole platform: each journey makes its own organization on the session ``platform``,
drives it only over HTTP, and observes it only through HTTP, the event stream (one tap on every topic,
opened before the first journey) and the mail catcher.

``journal`` remembers every organization and every direct identifier (names, emails, phones, dates of
birth) the journeys used, so ``test_journey_events_contract.py`` can check every event they produced.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from shared.messaging.kafka import platform_topics
from shared.testing import eventually
from shared.testing.events import EventTap

ALL_DAYS = [{"day": d, "start": "08:00", "end": "22:00"} for d in range(7)]
CERTIFIED = [{"name": "Certified Peer Recovery Specialist", "issuer": "State board", "expires_on": "2031-01-01"}]


@dataclass
class Journal:
    """What the journeys did, for the contract test: organizations and the identifiers they used."""
    organizations: dict[str, str] = field(default_factory=dict)   # org id -> journey name
    identifiers: set[str] = field(default_factory=set)


@pytest.fixture(scope="session")
def journal() -> Journal:
    return Journal()


@pytest.fixture(scope="session")
def tap(platform):
    """Every topic (dead-letter topics included), from before the first journey to the end of the run."""
    with EventTap(platform.bootstrap_servers, sorted(platform_topics())) as t:
        yield t


def tag() -> str:
    return uuid.uuid4().hex[:6]


class Org:
    """One journey's organization, with admin clients for the four services and a few builders."""

    def __init__(self, platform, tap, journal, journey: str, *, default_language: str = "en"):
        self.platform, self.tap, self.journal = platform, tap, journal
        self.tag = tag()
        operator = platform.client("intake", platform.token(None, "operator"))
        created = operator.post("/v1/organizations", json={"name": f"{journey} {self.tag}",
                                                           "default_language": default_language}).expect(201)
        self.id = created["id"]
        journal.organizations[self.id] = journey
        self.admin_token = platform.token(self.id, "admin")
        self.intake = platform.client("intake", self.admin_token)
        self.matching = platform.client("matching", self.admin_token)
        self.scheduling = platform.client("scheduling", self.admin_token)
        self.notifications = platform.client("notifications", self.admin_token)

    # -- identifiers -------------------------------------------------------------------------------
    def email(self, name: str) -> str:
        address = f"{name.lower()}.{self.tag}@example.org"
        self.journal.identifiers.add(address)
        return address

    def remember(self, *values) -> None:
        for value in values:
            if value:
                self.journal.identifiers.add(str(value))

    # -- builders ----------------------------------------------------------------------------------
    def site(self, name: str, time_zone: str, **extra) -> dict:
        body = {"name": name, "time_zone": time_zone, "address": {"city": name}, **extra}
        return self.intake.post("/v1/sites", json=body).expect(201)

    def coordinator(self, first_name: str, site_ids: list[str], **extra) -> dict:
        last_name = f"Coord{self.tag}"
        self.remember(first_name + " " + last_name)
        body = {"first_name": first_name, "last_name": last_name, "email": self.email(first_name),
                "site_ids": site_ids, **extra}
        return self.intake.post("/v1/staff", json=body).expect(201)

    def leader(self, first_name: str, site_ids: list[str], **extra) -> dict:
        last_name = f"Leader{self.tag}"
        self.remember(f"{first_name} {last_name}", last_name)
        body = {"first_name": first_name, "last_name": last_name, "email": self.email(first_name),
                "site_ids": site_ids, "languages": ["en"], "availability": ALL_DAYS, "capacity": 3,
                "certifications": CERTIFIED, **extra}
        self.remember(body.get("phone"), body.get("date_of_birth"))
        return self.intake.post("/v1/leaders", json=body).expect(201)

    def member(self, first_name: str, site_id: str, *, consents=("matching", "notify:email"), **extra) -> dict:
        last_name = f"Member{self.tag}"
        self.remember(f"{first_name} {last_name}", last_name)
        body = {"first_name": first_name, "last_name": last_name, "email": self.email(first_name),
                "site_id": site_id, "languages": ["en"], "availability": ALL_DAYS, "date_of_birth": "1988-04-17",
                "consents": [{"purpose": p} for p in consents], **extra}
        self.remember(body.get("phone"), body.get("date_of_birth"))
        return self.intake.post("/v1/members", json=body).expect(201)

    def meeting(self, body: dict) -> dict:
        """Create a meeting; scheduling learns of a new leader from intake's events, so a facilitator
        registered a moment ago may be "not yet known" (422, type .../problems/not-yet-known): ask again until it is."""
        def create():
            answer = self.scheduling.post("/v1/meetings", json=body)
            if answer.status_code == 422 and "/problems/not-yet-known" in answer.text:
                return None
            return answer.expect(201)
        return eventually(create, timeout=30)

    def register(self, meeting_id: str, member_id: str) -> dict:
        """Register a member (scheduling may not have heard of a member registered a moment ago yet)."""
        def attempt():
            answer = self.scheduling.post(f"/v1/meetings/{meeting_id}/registrations", json={"member_id": member_id})
            if answer.status_code == 422 and "/problems/not-yet-known" in answer.text:
                return None
            return answer.expect(201)
        return eventually(attempt, timeout=30)

    def leader_client(self, service: str, leader_id: str):
        return self.platform.client(service, self.platform.token(self.id, "leader", leader_id=leader_id))

    # -- observing ---------------------------------------------------------------------------------
    def events(self, type_suffix: str, **fields) -> list:
        """Events of this organization whose type contains ``type_suffix`` and whose data has ``fields``."""
        return self.tap.matching(lambda e: self._is(e, type_suffix, fields))

    def wait_event(self, type_suffix: str, *, count: int = 1, timeout: float = 30, **fields) -> list:
        return self.tap.wait_for(lambda e: self._is(e, type_suffix, fields), count=count, timeout=timeout)

    def _is(self, e, type_suffix: str, fields: dict) -> bool:
        return (e.data.get("organization_id") == self.id and f".{type_suffix}." in e.type
                and all(e.data.get(k) == v for k, v in fields.items()))

    def mail(self, to: str) -> list[dict]:
        return self.platform.mail(to=to)

    def wait_mail(self, to: str, predicate=lambda m: True, *, count: int = 1, timeout: float = 30) -> list[dict]:
        def check():
            found = [m for m in self.mail(to) if predicate(m)]
            assert len(found) >= count, f"{to} received {[m['subject'] for m in self.mail(to)]}"
            return found
        return eventually(check, timeout=timeout)

    def deliveries(self, **query) -> list[dict]:
        return self.notifications.all_items("/v1/deliveries", **query)

    def preview_subject(self, kind: str, language: str, *, data: dict, role: str, time_zone: str,
                        meeting: dict | None = None) -> str:
        body = {"data": data, "role": role, "time_zone": time_zone, "meeting": meeting or {}}
        return self.notifications.post(f"/v1/templates/{kind}/email/{language}/preview", json=body).expect(200)["subject"]


def delivery_id_of(message: dict) -> str:
    """notifications' Message-ID is ``<delivery id@recoverynet.local>``."""
    match = re.fullmatch(r"<([^@]+)@recoverynet\.local>", message.get("message_id") or "")
    assert match, f"no Message-ID of ours in {message}"
    return match.group(1)


def soon_local(hours: float, time_zone: str) -> datetime:
    """A local wall time ``hours`` from now in ``time_zone``, on a quarter hour (naive)."""
    from zoneinfo import ZoneInfo

    at = datetime.now(timezone.utc) + timedelta(hours=hours)
    at = at.replace(minute=(at.minute // 15) * 15, second=0, microsecond=0) + timedelta(minutes=15)
    return at.astimezone(ZoneInfo(time_zone)).replace(tzinfo=None)


@pytest.fixture
def new_org(platform, tap, journal):
    def make(journey: str, **kw) -> Org:
        return Org(platform, tap, journal, journey, **kw)
    return make


@pytest.fixture
def helpers():
    """Module-level helpers for the journey files (they cannot import this conftest by name)."""
    class H:
        pass
    h = H()
    h.delivery_id_of = delivery_id_of
    h.soon_local = soon_local
    h.eventually = eventually
    h.ALL_DAYS = ALL_DAYS
    return h
