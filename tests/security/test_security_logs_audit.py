"""Nothing identifying in logs, and the audit log (issue 9, Security).

* A registration through intake, its update, consent, screening and plan, with the workers relaying it
  and matching and notifications handling it, and the error answers a client can provoke (a duplicate,
  a bad email, a bad phone): every log line of every service in the process, as the production JSON
  formatter writes it at the production level (INFO), holds no name, email, phone or date of birth.
* Reading and changing a member record appears in intake's audit log with who did it (their token's
  subject and role), what (read / update) and which fields (names, never values)."""
from __future__ import annotations

import io
import json
import logging
import uuid

import pytest

from shared.auth import verify_token
from shared.events.intake import ContactChanged, MemberRegistered
from shared.logging import JsonFormatter
from shared.testing.fixtures import test_keys

from tests.security.conftest import identifiers_of, member_body

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def all_logs():
    """Every log record of the process (all services, web and workers), rendered as production does."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter("any"))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_no_name_email_phone_or_birth_date_appears_in_any_log_line(stack, world, all_logs):
    intake, admin, site = stack.client("intake"), world.h(), world.ids["site"]
    body = member_body(site, first_name=f"Ottoline{uuid.uuid4().hex[:6]}", last_name=f"Featherstonehaugh{uuid.uuid4().hex[:6]}",
                       date_of_birth="1979-02-28", phone=f"+1617253{uuid.uuid4().int % 10000:04d}")
    secrets = identifiers_of(body) + [body["phone"][2:], body["email"].split("@")[0]]
    created = intake.post("/v1/members", json=body, headers=admin)
    assert created.status_code == 201, created.get_json()
    member_id = created.get_json()["id"]
    etag = created.headers["ETag"]
    new_email = f"otto.{uuid.uuid4().hex[:8]}@example.org"
    secrets.append(new_email)
    patched = intake.patch(f"/v1/members/{member_id}", json={"email": new_email, "last_name": body["last_name"] + "x"},
                           headers={**admin, "If-Match": etag})
    assert patched.status_code == 200, patched.get_json()
    intake.post(f"/v1/members/{member_id}/screenings", json={"instrument": "PHQ-2", "answers": [3, 3]}, headers=admin)
    intake.put(f"/v1/members/{member_id}/plan", json={"goal": "work"}, headers=admin)
    # the error answers a client can provoke with identifying input
    duplicate = intake.post("/v1/members", json={**body, "email": new_email}, headers=admin)
    assert duplicate.status_code == 409
    assert intake.post("/v1/members", json={**body, "email": "not-an-" + body["email"].replace("@", "#"),
                                            "phone": None}, headers=admin).status_code == 422
    assert intake.post("/v1/members", json={**body, "phone": "+999" + body["phone"][2:], "email": None},
                       headers=admin).status_code == 422
    assert intake.get(f"/v1/members/{member_id}", headers=admin).status_code == 200
    # the workers relay, match and notify (their logs count too)
    stack.tap.wait_for(lambda e: e.type == ContactChanged.type and e.key == member_id, timeout=60)
    stack.tap.wait_for(lambda e: e.type == MemberRegistered.type and e.key == member_id, timeout=60)
    stack.tap.wait_for(lambda e: e.type.startswith("org.recoverynet.matching.") and
                       e.data.get("member_id") == member_id, timeout=60)

    # aiosmtpd ("mail.log") is the local mail catcher, standing in for the organization's SMTP server
    lines = [line for line in all_logs.getvalue().splitlines() if json.loads(line)["logger"] != "mail.log"]
    assert lines, "nothing was logged at all: the capture is not working"
    leaked = [(value, line[:300]) for line in lines for value in secrets if value.lower() in line.lower()]
    assert not leaked, leaked


def test_the_audit_log_records_who_read_and_who_changed_a_member_record(stack, world):
    intake, ids = stack.client("intake"), world.ids
    admin_token, coordinator_token = world.tokens["admin"], world.tokens["coordinator"]
    admin = verify_token(admin_token, test_keys().keyset(), "recoverynet")
    coordinator = verify_token(coordinator_token, test_keys().keyset(), "recoverynet")
    body = member_body(ids["site"])
    member_id = intake.post("/v1/members", json=body, headers=world.h()).get_json()["id"]
    read = intake.get(f"/v1/members/{member_id}", headers=world.h("coordinator"))
    assert read.status_code == 200
    changed = intake.patch(f"/v1/members/{member_id}", json={"preferred_name": "Bo", "languages": ["en", "es"]},
                           headers={**world.h(), "If-Match": read.headers["ETag"]})
    assert changed.status_code == 200
    assert intake.get(f"/v1/members/{member_id}/screenings", headers=world.h()).status_code == 200

    log = intake.get("/v1/audit-log", query_string={"resource_id": member_id, "limit": 200}, headers=world.h())
    assert log.status_code == 200
    entries = log.get_json()["items"]
    by = {(e["action"], e["actor"], e["actor_role"]) for e in entries}
    assert ("create", admin.subject, "admin") in by or any(e["action"] in ("create", "register") for e in entries)
    assert ("read", coordinator.subject, "coordinator") in by, entries
    update = [e for e in entries if e["action"] == "update" and e["actor"] == admin.subject]
    assert update and update[0]["actor_role"] == "admin", entries
    assert {"preferred_name", "languages"} <= set(str(update[0]["details"]).replace("'", " ").split()) or \
        "preferred_name" in str(update[0]["details"]), update[0]
    # names fields, never values
    text = log.get_data(as_text=True)
    assert "Bo" not in text.replace("Body", "") and body["email"] not in text and body["last_name"] not in text
    # filters work, and only admins read the audit log
    reads = intake.get("/v1/audit-log", query_string={"resource_id": member_id, "action": "read"}, headers=world.h())
    assert reads.get_json()["items"] and {e["action"] for e in reads.get_json()["items"]} == {"read"}
    assert intake.get("/v1/audit-log", headers=world.h("coordinator")).status_code == 403
    other = intake.get("/v1/audit-log", query_string={"resource_id": member_id}, headers=world.h("other_admin"))
    assert other.status_code == 200 and other.get_json()["items"] == []
