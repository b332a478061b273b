"""Sign-in codes (issue 15, part B): intake's SignInCodeIssued is sent at once to the address it names,
without any notify consent, in the person's language, through the delivery machinery; the delivery log
keeps the delivery but never the code, the link or the address."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from shared.events.intake import SignInCodeIssued
from shared.events.notifications import DELIVERIES, NotificationDelivered
from shared.testing import eventually
from shared.testing.events import EventTap, publish
from shared.testing.fixtures import auth_header

pytestmark = pytest.mark.timeout(240)


def code_event(org, person, **extra):
    token = uuid.uuid4().hex + uuid.uuid4().hex
    return {"organization_id": org, "person_id": person["person_id"], "person_kind": person["person_kind"],
            "channel": "email", "address": person["email"], "code": f"{uuid.uuid4().hex[:4].upper()}-WXYZ",
            "link": f"http://console.test/sign-in/callback?code={token}",
            "expires_at": (datetime.now(timezone.utc) + timedelta(minutes=15)).isoformat(), "language": "en", **extra}


def test_a_sign_in_code_is_emailed_at_once_without_consent_and_never_logged(people, mail, kafka_bootstrap, db, org_id,
                                                                            client, make_token):
    member = people.contact("member", language="en")          # no notify consent at all
    data = code_event(org_id, member)
    with EventTap(kafka_bootstrap, [DELIVERIES]) as tap:
        evt = publish(kafka_bootstrap, SignInCodeIssued, data)
        sent = eventually(lambda: mail.messages(to=member["email"]), timeout=60)
        delivered = tap.wait_for(lambda e: e.type == NotificationDelivered.type and e.data["source_event_id"] == evt.id)
    assert len(sent) == 1
    message = sent[0]
    assert message["subject"] == "Your Recovery Network sign-in code"
    assert data["code"] in message["text"] and data["link"] in message["text"]
    assert data["code"] in message["html"] and message["list_unsubscribe"] is None
    assert delivered[0].data["recipient_id"] == member["person_id"] and delivered[0].data["channel"] == "email"

    secrets = (data["code"], data["link"].split("code=")[1], data["address"])
    stored = db.deliveries.find_one({"source_event_id": evt.id})
    assert stored["status"] == "delivered" and stored["priority"] == "urgent" and stored["template"] == "sign_in"
    assert "[redacted]" in stored["redacted_body"]
    assert not any(s in json.dumps(stored, default=str) for s in secrets)
    assert db.signin_secrets.find_one({"_id": stored["_id"]}) is None      # settled: the code is kept nowhere
    log = client.get(f"/v1/deliveries?source_event_id={evt.id}", headers=auth_header(make_token(org_id, "admin")))
    assert log.status_code == 200 and log.get_json()["total"] == 1
    assert not any(s in log.get_data(as_text=True) for s in secrets)


def test_an_invitation_in_spanish_and_an_sms_code(people, mail, kafka_bootstrap, db, org_id, settings):
    staff = people.contact("staff", language="es")
    publish(kafka_bootstrap, SignInCodeIssued, code_event(org_id, staff, language="es", purpose="invitation",
                                                          role="coordinator"))
    sent = eventually(lambda: mail.messages(to=staff["email"]), timeout=60)
    assert sent[0]["subject"] == "Te invitamos a Recovery Network"
    assert "coordinador/a de sede" in sent[0]["text"]

    phone = "+15555550177"
    leader = people.contact("leader", email=False, phone=phone)
    data = {**code_event(org_id, {**leader, "email": None}), "channel": "sms", "address": phone}
    publish(kafka_bootstrap, SignInCodeIssued, data)
    outbox = Path(settings.sms_outbox_path)
    texts = eventually(lambda: [json.loads(line) for line in outbox.read_text().splitlines() if phone in line]
                       if outbox.exists() else [], timeout=60)
    assert data["code"] in texts[0]["text"]


def test_a_code_that_expired_before_it_could_be_sent_is_not_sent(people, mail, kafka_bootstrap, db, org_id):
    member = people.contact("member")
    data = code_event(org_id, member, expires_at=(datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat())
    evt = publish(kafka_bootstrap, SignInCodeIssued, data)
    cancelled = eventually(lambda: db.deliveries.find_one({"source_event_id": evt.id, "status": "cancelled"}),
                           timeout=60)
    assert cancelled["last_error"].startswith("the sign-in code") and mail.messages(to=member["email"]) == []
