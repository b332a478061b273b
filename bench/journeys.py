"""Helpers for the benchmarks that drive the whole platform (PlatformUnderTest) over HTTP: an organization
with a site and leaders, a tap that notes when each event arrived, and a watch on the mail catcher's
folder (each .eml file's name starts with the nanosecond it was accepted, so arrival times are exact
whatever the polling)."""
from __future__ import annotations

import email.parser
import email.policy
import threading
import time
import uuid
from email.utils import getaddresses
from pathlib import Path

import requests

from deploy.platform_under_test import WEB_PROCESSES_AS_DEPLOYED, PlatformUnderTest
from shared.messaging.envelope import MalformedEvent, decode_record
from shared.testing.events import EventTap

WINDOW = [{"day": 1, "start": "17:00", "end": "21:00"}, {"day": 3, "start": "17:00", "end": "21:00"}]


def start_platform(extra_env: dict[str, str] | None = None) -> PlatformUnderTest:
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="recoverynet-bench-platform-"))
    return PlatformUnderTest.start(folder, extra_env={"REMINDER_INTERVAL_SECONDS": "1", **WEB_PROCESSES_AS_DEPLOYED, **(extra_env or {})})


class Org:
    """One organization on the platform, its first site and its admin's clients."""

    def __init__(self, platform: PlatformUnderTest, time_zone: str = "America/New_York"):
        self.platform = platform
        self.id = f"bench-{uuid.uuid4().hex[:8]}"
        platform.client("intake", platform.token(None, "operator")).post(
            "/v1/organizations", json={"id": self.id, "name": "Bench org"}).expect(201)
        self.admin_token = platform.token(self.id, "admin")
        self.intake = platform.client("intake", self.admin_token)
        self.site = self.intake.post("/v1/sites", json={
            "name": "Main", "time_zone": time_zone, "virtual_only": False,
            "address": {"street": "1 Main St", "city": "Springfield"}}).expect(201)["id"]

    def client(self, service: str):
        return self.platform.client(service, self.admin_token)

    def leader(self, capacity: int = 100) -> dict:
        return self.intake.post("/v1/leaders", json={
            "site_ids": [self.site], "first_name": "Sam", "last_name": "Lee",
            "email": f"leader.{uuid.uuid4().hex[:10]}@example.org", "languages": ["en"], "gender": "female",
            "meets_virtually": True, "capacity": capacity, "availability": WINDOW, "pathways": ["smart"],
            "substances": ["alcohol"], "lived_experience_areas": ["parenting"],
            "certifications": [{"name": "CPRS", "issuer": "State board", "expires_on": "2030-01-01"}]}).expect(201)

    def member_body(self, consents: list[str], tag: str = "") -> dict:
        return {"site_id": self.site, "first_name": "Alex", "last_name": "Rivera",
                "email": f"member.{tag}{uuid.uuid4().hex[:12]}@example.org", "date_of_birth": "1990-04-02",
                "languages": ["en"], "contact_channels": ["email"], "availability": WINDOW,
                "substances": ["alcohol"], "pathways": ["smart"], "co_occurring_mental_health": "no",
                "lived_experience_topics": ["parenting"], "meeting_mode": "either",
                "consents": [{"purpose": p} for p in consents]}


class TimedTap(EventTap):
    """An EventTap that also notes, per event, the wall-clock time (time.time()) the tap received it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.arrivals: list[tuple[float, object]] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            for records in self.consumer.poll(timeout_ms=100).values():
                at = time.time()
                with self._lock:
                    for record in records:
                        try:
                            evt = decode_record(record.topic, record.key, record.value, record.headers,
                                                partition=record.partition, offset=record.offset)
                        except MalformedEvent:
                            continue
                        self.events.append(evt)
                        self.arrivals.append((at, evt))

    def first_arrival(self, predicate) -> dict:
        """{key: first arrival time} of the events matching ``predicate``."""
        out: dict = {}
        with self._lock:
            for at, evt in self.arrivals:
                if predicate(evt):
                    out.setdefault(evt.key, at)
        return out


class MailWatch:
    """The mail catcher's folder: which messages were accepted when (from the file names), and to whom."""

    def __init__(self, platform: PlatformUnderTest):
        self.folder = platform.platform.var / "mail"
        self._seen: dict[str, tuple[float, list[str], str]] = {}
        self._parser = email.parser.BytesHeaderParser(policy=email.policy.default)

    def accepted_since(self, since_ns: int) -> list[Path]:
        return [p for p in self.folder.glob("*.eml") if int(p.name.split("-")[0]) >= since_ns]

    def count_since(self, since_ns: int) -> int:
        return sum(1 for p in self.folder.iterdir() if p.suffix == ".eml" and int(p.name.split("-")[0]) >= since_ns)

    def scan(self) -> dict[str, tuple[float, list[str], str]]:
        """{file name: (accepted at, unix seconds; recipients; subject)} of every message so far."""
        for path in self.folder.glob("*.eml"):
            if path.name in self._seen:
                continue
            with open(path, "rb") as fh:
                headers = self._parser.parse(fh)
            to = [a.lower() for _, a in getaddresses([str(h) for h in headers.get_all("To", [])])]
            self._seen[path.name] = (int(path.name.split("-")[0]) / 1e9, to, str(headers.get("Subject", "")))
        return self._seen

    def first_to(self, addresses: set[str]) -> dict[str, float]:
        out: dict[str, float] = {}
        for at, to, _ in sorted(self.scan().values()):
            for address in to:
                if address in addresses:
                    out.setdefault(address, at)
        return out


def wait(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f}s")
        time.sleep(interval)


def post_ok(session: requests.Session, url: str, token: str, body: dict, expect=(201,)) -> requests.Response:
    """POST, trying again (a few times) when the service answers 503: its database did not answer within
    MONGO_TIMEOUT_MS and nothing was changed (on a crowded machine). The retry counts in the latency."""
    for _ in range(5):
        resp = session.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        if resp.status_code != 503:
            break
        time.sleep(0.5)
    if resp.status_code not in expect:
        raise RuntimeError(f"POST {url} answered {resp.status_code}: {resp.text[:500]}")
    return resp
