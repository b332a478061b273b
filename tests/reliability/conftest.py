"""Fixtures for the fault tests (tests/reliability/test_fault_*.py).

``fault_platform``: ONE whole platform for every fault test of this folder (starting one costs ~20 s of a
2-core machine), started as the local runner starts it, with the broker behind a TCP proxy the tests can
cut and the database's test commands (``configureFailPoint``) on. Each test makes its own organization
and leaves the platform as it found it (proxy restored, failpoints off, killed workers restarted,
extra copies stopped).

``fault_org``: a factory for an organization with one site and leaders able to take a burst of members,
plus the counting the fault tests share: matches per member (matching's API), proposal emails per
member (the mail catcher), email deliveries settled (notifications' API).
"""
from __future__ import annotations

import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests

from deploy.platform_under_test import WEB_PROCESSES_AS_DEPLOYED, PlatformUnderTest
from shared.devstack.servers import wait_for_port
from shared.testing import eventually

ALL_DAYS = [{"day": d, "start": "08:00", "end": "22:00"} for d in range(7)]
CERTIFIED = [{"name": "Certified Peer Recovery Specialist", "issuer": "State board", "expires_on": "2031-01-01"}]


# A delivery whose try failed is tried again after this many seconds (default 30): the fault tests break
# things mid-send and should not wait 30 s for it. (One tried before its recipient's contact or consents
# arrived waits for them instead, NOTIFY_RECIPIENT_WAIT_SECONDS, and counts no try.)
# A sender killed mid-send leaves its delivery 'sending' for the lease (60 s here, so the SIGKILL test
# sees the take-over sooner; longer than the database-stopped test's outage, which a sender waits out).
FAULT_ENV = {"NOTIFY_RETRY_BASE_SECONDS": "3", "NOTIFY_SENDING_LEASE_SECONDS": "60"}


@pytest.fixture(scope="package")
def fault_platform(tmp_path_factory):
    running = PlatformUnderTest.start(tmp_path_factory.mktemp("faults"), broker_behind_proxy=True,
                                      mongo_test_commands=True,
                                      extra_env={**WEB_PROCESSES_AS_DEPLOYED, **FAULT_ENV})
    yield running
    running.stop()


class FaultOrg:
    """An organization with one site and ``leaders`` leaders (capacity ``capacity`` each)."""

    def __init__(self, platform: PlatformUnderTest, name: str, *, leaders: int = 4, capacity: int = 10):
        self.platform = platform
        self.tag = uuid.uuid4().hex[:6]
        operator = platform.client("intake", platform.token(None, "operator"))
        self.id = operator.post("/v1/organizations", json={"name": f"{name} {self.tag}",
                                                           "default_language": "en"}).expect(201)["id"]
        self.admin_token = platform.token(self.id, "admin")
        self.intake = platform.client("intake", self.admin_token)
        self.matching = platform.client("matching", self.admin_token)
        self.scheduling = platform.client("scheduling", self.admin_token)
        self.notifications = platform.client("notifications", self.admin_token)
        self.site = self.intake.post("/v1/sites", json={"name": "Harbor", "time_zone": "America/Chicago",
                                                         "address": {"city": "Harbor"}}).expect(201)
        self.leaders = [self.intake.post("/v1/leaders", json={
            "first_name": f"Lead{i}", "last_name": f"Leader{self.tag}", "email": self.email(f"lead{i}"),
            "site_ids": [self.site["id"]], "languages": ["en"], "availability": ALL_DAYS, "capacity": capacity,
            "certifications": CERTIFIED}).expect(201) for i in range(leaders)]
        self.members: dict[str, dict] = {}      # member id -> {"email": ..., "index": ...}

    def email(self, name: str) -> str:
        return f"{name}.{self.tag}@example.org"

    # -- registering ------------------------------------------------------------------------------
    def member_body(self, index: int) -> dict:
        return {"first_name": f"Mem{index}", "last_name": f"Member{self.tag}", "email": self.email(f"m{index}"),
                "site_id": self.site["id"], "languages": ["en"], "availability": ALL_DAYS,
                "date_of_birth": "1988-04-17", "consents": [{"purpose": "matching"}, {"purpose": "notify:email"}]}

    def register(self, index: int, *, retry_503_for: float = 120.0) -> list:
        """POST one member; a 503 is retried after its Retry-After (as a client would). Returns every
        answer as (status, headers, body) and remembers the member once it was created."""
        answers = []
        deadline = time.monotonic() + retry_503_for
        while True:
            try:
                response = self.intake.post("/v1/members", json=self.member_body(index))
            except requests.RequestException as exc:  # noqa: PERF203 - recorded: the test says what it allows
                answers.append((f"error {type(exc).__name__}", {}, str(exc)))
                if time.monotonic() > deadline:
                    return answers
                # no answer, so no Retry-After to follow (the 503s below do): try again once intake accepts connections
                try:
                    wait_for_port(urlsplit(self.intake.base_url).port, timeout=max(0.1, deadline - time.monotonic()))
                except RuntimeError:
                    pass  # not back by the deadline: the next try's error ends the loop
                continue
            body = response.raw.json() if "json" in response.headers.get("Content-Type", "") else response.text
            answers.append((response.status_code, dict(response.headers), body))
            if response.status_code == 201:
                self.members[body["id"]] = {"email": self.email(f"m{index}"), "index": index}
                return answers
            if response.status_code == 409 and isinstance(body, dict) and body.get("existing"):
                # an earlier try was stored although its answer was lost: the member exists once
                existing = body["existing"]
                member_id = existing.get("id") if isinstance(existing, dict) else existing
                self.members[member_id] = {"email": self.email(f"m{index}"), "index": index}
                return answers
            if response.status_code != 503 or time.monotonic() > deadline:
                return answers
            time.sleep(min(float(response.headers.get("Retry-After", "1")), 5))

    def register_many(self, indexes, *, threads: int = 4) -> dict[int, list]:
        with ThreadPoolExecutor(threads) as pool:
            return dict(zip(indexes, pool.map(self.register, indexes)))

    # -- counting ---------------------------------------------------------------------------------
    def matches(self, **query) -> list[dict]:
        return self.matching.all_items("/v1/matches", **query)

    def wait_matched(self, *, timeout: float = 120) -> Counter:
        """Every member has a match; returns matches per member (the caller asserts exactly one)."""
        def all_matched():
            per_member = Counter(m["member_id"] for m in self.matches())
            missing = [m for m in self.members if not per_member[m]]
            assert not missing, f"{len(missing)} of {len(self.members)} members not matched yet"
            return per_member
        return eventually(all_matched, timeout=timeout)

    def deliveries(self, **query) -> list[dict]:
        return self.notifications.all_items("/v1/deliveries", **query)

    def wait_emails(self, per_member: int = 1, *, timeout: float = 120) -> dict[str, list[dict]]:
        """Every member's proposal email(s) arrived and every email delivery of the organization is
        finished (nothing pending or being sent, so nothing more can arrive); returns mail per member."""
        def settled():
            mail = {m["email"]: self.platform.mail(to=m["email"]) for m in self.members.values()}
            short = [e for e, got in mail.items() if len(got) < per_member]
            assert not short, f"{len(short)} of {len(mail)} members have fewer than {per_member} email(s) yet"
            log = self.deliveries(channel="email")
            open_ = [d["status"] for d in log if d["status"] not in ("delivered", "failed", "cancelled")]
            assert not open_, f"email deliveries not finished: {Counter(open_)}"
            return {e: self.platform.mail(to=e) for e in mail}
        return eventually(settled, timeout=timeout)

    def assert_each_member_once(self, *, matches: Counter, mail: dict[str, list[dict]], per_member: int = 1,
                                status: str = "proposed") -> None:
        """One match per member (in ``status``), ``per_member`` different emails per member and as many to
        the leaders. An email is one message (one Message-ID, which is its delivery id). The one allowed
        repeat is the documented one (docs/reliability.md): a worker killed between the SMTP server's
        acceptance and its record of it; the copy has the same Message-ID and the delivery log shows the
        take-over. Anything else arriving twice fails."""
        doubled = {m: n for m, n in matches.items() if n != 1}
        assert not doubled, f"members with more than one match: {doubled}"
        assert set(matches) == set(self.members), "matches for members this test did not register"
        statuses = Counter(m["status"] for m in self.matches())
        assert statuses == {status: len(self.members)}, statuses
        log = {d["id"]: d for d in self.deliveries(channel="email")}
        leader_mail = {leader["email"]: self.platform.mail(to=leader["email"]) for leader in self.leaders}
        resent = {}
        for address, got in [*mail.items(), *leader_mail.items()]:
            for message_id, n in Counter(x["message_id"] for x in got).items():
                if n > 1:
                    delivery = log.get(delivery_id_of(message_id), {})
                    assert delivery.get("takeovers", 0) >= 1, \
                        f"{address} received {message_id} {n} times without an interrupted send: {delivery}"
                    resent[message_id] = n
        if resent:
            print(f"sent again after an interrupted send (same Message-ID): {resent}")
        # one message of each kind per member (reminders of a booked session are extra, each once too)
        unique = {e: list({x["message_id"]: x for x in got}.values()) for e, got in mail.items()}
        kinds = {e: Counter(x["subject"] for x in got if not x["subject"].startswith("Reminder"))
                 for e, got in unique.items()}
        wrong = {e: dict(k) for e, k in kinds.items() if len(k) != per_member or set(k.values()) != {1}}
        assert not wrong, f"members who did not receive exactly {per_member} different email(s): {wrong}"
        reminders = {e: [x["subject"] for x in got if x["subject"].startswith("Reminder")] for e, got in unique.items()}
        twice = {e: r for e, r in reminders.items() if len(r) != len(set(r))}
        assert not twice, f"the same reminder twice: {twice}"
        # the leaders are told too: one message per proposal (and per acceptance, booking) in total
        leader_messages = sum(1 for got in leader_mail.values()
                              for message_id in {x["message_id"] for x in got if not x["subject"].startswith("Reminder")})
        assert leader_messages == len(self.members) * per_member, (leader_messages, len(self.members))


def delivery_id_of(message_id: str) -> str:
    """notifications' Message-ID is ``<delivery id@recoverynet.local>``."""
    return message_id.strip("<>").split("@", 1)[0]


@pytest.fixture
def fault_org(fault_platform):
    def make(name: str, **kw) -> FaultOrg:
        return FaultOrg(fault_platform, name, **kw)
    return make
