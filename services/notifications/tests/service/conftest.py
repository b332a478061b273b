"""Fixtures of the notifications service tests: the real broker and database (shared fixtures), a real
SMTP server (our mail catcher), one worker per module, the Flask app, and helpers that stand in for
intake (contacts, consents, coordinators)."""
from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from shared.devstack.servers import free_port
from shared.events import intake
from shared.testing import eventually
from shared.testing.events import publish
from shared.testing.service_fixtures import connected_database
from shared.testing.services import running

from notifications.app import create_app
from notifications.config import Settings
from shared.devstack.mailcatcher import MailCatcher
from notifications.repository import Repository, ensure_indexes
from notifications.worker import build_worker


@pytest.fixture(scope="module")
def mail(tmp_path_factory):
    catcher = MailCatcher(smtp_port=free_port(), http_port=free_port(), folder=tmp_path_factory.mktemp("mail")).start()
    yield catcher
    catcher.stop()


@pytest.fixture(scope="module")
def settings(platform_settings, mail, tmp_path_factory):
    platform = platform_settings("notifications", mongo_database=f"test_notifications_{uuid.uuid4().hex[:8]}")
    return Settings(platform=platform, smtp_host="127.0.0.1", smtp_port=mail.smtp_port,
                    sms_outbox_path=str(tmp_path_factory.mktemp("sms") / "outbox.jsonl"),
                    max_attempts=4, retry_base_seconds=0.2, retry_multiplier=1.5,
                    recipient_wait_seconds=0.2, recipient_wait_limit_seconds=1.0,
                    delivery_interval_seconds=0.2, release_interval_seconds=0.3, digest_interval_seconds=0.5,
                    public_base_url="http://testserver")


@pytest.fixture(scope="module")
def db(settings):
    with connected_database(settings) as database:
        ensure_indexes(database)
        yield database
        database.client.drop_database(database.name)


@pytest.fixture(scope="module")
def repo(db):
    return Repository(db.client, db)


@pytest.fixture(scope="module")
def worker(settings, db):
    with running(build_worker(settings)) as w:
        yield w


@pytest.fixture(scope="module")
def client(settings, db):
    app = create_app(replace(settings))
    return app.test_client()


class People:
    """Stands in for intake: publishes contacts, consents and coordinator assignments, and waits until
    the notifications worker has them."""

    def __init__(self, bootstrap: str, db, org: str):
        self.bootstrap, self.db, self.org = bootstrap, db, org

    def contact(self, kind: str, *, language="en", time_zone="UTC", email=True, phone=None, channels=(),
                site_ids=("site-1",), name=None) -> dict:
        person_id = f"{kind}-{uuid.uuid4().hex[:10]}"
        data = {"organization_id": self.org, "person_id": person_id, "person_kind": kind,
                "display_name": name or f"Name {person_id[-4:]}",
                "email": f"{person_id}@example.org" if email else None, "phone": phone,
                "preferred_language": language, "time_zone": time_zone, "site_ids": list(site_ids),
                "channels": list(channels)}
        publish(self.bootstrap, intake.ContactChanged, data)
        eventually(lambda: self.db.contacts.find_one({"_id": person_id}), timeout=60, message="contact stored")
        return data

    def consents(self, member: dict, purposes: list[str], *, changed="notify:email", granted=True) -> None:
        consents = [{"purpose": p, "expires_at": None} for p in purposes]
        publish(self.bootstrap, intake.MemberConsentChanged, {
            "organization_id": self.org, "member_id": member["person_id"], "site_id": "site-1",
            "purpose": changed, "granted": granted, "consents": consents})
        eventually(lambda: sorted(c["purpose"] for c in (self.db.consents.find_one({"_id": member["person_id"]}) or {})
                                  .get("consents", [{"purpose": None}])) == sorted(purposes)
                   if (self.db.consents.find_one({"_id": member["person_id"]}) is not None) else False,
                   timeout=60, message="consents stored")

    def coordinator(self, site_id: str, **contact_kwargs) -> dict:
        staff = self.contact("staff", site_ids=(site_id,), **contact_kwargs)
        publish(self.bootstrap, intake.CoordinatorAssigned, {"organization_id": self.org, "staff_id": staff["person_id"],
                                                           "site_ids": [site_id]})
        eventually(lambda: self.db.coordinators.find_one({"staff_id": staff["person_id"]}), timeout=60,
                   message="coordinator stored")
        return staff


@pytest.fixture
def people(kafka_bootstrap, db, org_id, worker):
    return People(kafka_bootstrap, db, org_id)
