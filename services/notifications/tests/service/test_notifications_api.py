"""The HTTP API against the real database (preferences, inbox, delivery log, webhooks, templates), the
digest, the HTTP SMS adapter and the mail catcher process. Events are applied by the service's own
handlers in real transactions (the broker path is covered in test_notifications_delivery.py)."""
from __future__ import annotations

import json
import smtplib
import subprocess
import sys
import threading
import urllib.request
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
from pymongo.errors import AutoReconnect

from shared.devstack.servers import TcpProxy, free_port
from shared.events import intake, matching, scheduling
from shared.messaging.envelope import new_event
from shared.testing import eventually
from shared.testing.fixtures import auth_header

from notifications import handlers
from notifications.channels import Channels
from notifications.repository import Repository

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def deliverer(settings, repo):
    return handlers.Deliverer(settings, repo)


def apply(repo, declaration, data, handler):
    evt = new_event(declaration, data, source="/recoverynet/test")
    repo.transaction(lambda uow: handler(evt, uow))
    return evt


def contact(repo, org, kind, *, language="en", time_zone="UTC", site_ids=("site-1",), phone=None, name="Alex"):
    person_id = f"{kind}-{uuid.uuid4().hex[:10]}"
    data = {"organization_id": org, "person_id": person_id, "person_kind": kind, "display_name": name,
            "email": f"{person_id}@example.org", "phone": phone, "preferred_language": language,
            "time_zone": time_zone, "site_ids": list(site_ids), "channels": []}
    apply(repo, intake.ContactChanged, data, handlers.on_contact_changed)
    return data


def consent(repo, org, member, purposes):
    apply(repo, intake.MemberConsentChanged, {
        "organization_id": org, "member_id": member["person_id"], "site_id": "site-1", "purpose": purposes[0],
        "granted": True, "consents": [{"purpose": p} for p in purposes]}, handlers.on_member_snapshot)


def accepted(repo, org, member_id, leader_id, site_id="site-1"):
    return apply(repo, matching.MatchAccepted, {
        "organization_id": org, "match_id": f"m-{uuid.uuid4().hex[:6]}", "member_id": member_id,
        "leader_id": leader_id, "site_id": site_id, "accepted_by_role": "member"}, handlers.on_notifiable_event)


def deliver_all(deliverer, db, source_event_id):
    eventually(lambda: deliverer.run_once() is not None and db.deliveries.count_documents(
        {"source_event_id": source_event_id, "status": {"$in": ["pending", "sending"]}}) == 0, timeout=30)


# --- authentication and scoping ------------------------------------------------------------------

def test_every_endpoint_needs_a_token_and_another_organization_sees_nothing(client, repo, org_id, make_token):
    leader = contact(repo, org_id, "leader")
    path = f"/v1/people/{leader['person_id']}/preferences"
    assert client.get(path).status_code == 401
    assert client.get("/v1/deliveries").status_code == 401
    other_org = auth_header(make_token(f"org-{uuid.uuid4().hex[:8]}", "admin"))
    response = client.get(path, headers=other_org)
    assert response.status_code == 404 and response.json["status"] == 404  # as if the person did not exist (issue 9)
    assert client.get(f"/v1/people/{leader['person_id']}/inbox", headers=auth_header(
        make_token(org_id, "leader", leader_id="leader-other"))).status_code == 404
    assert client.get(path, headers=auth_header(make_token(org_id, "coordinator", sites=["site-9"]))).status_code == 404
    assert client.get(path, headers=auth_header(make_token(org_id, "coordinator", sites=["site-1"]))).status_code == 200
    assert client.get(path, headers=auth_header(make_token(org_id, "leader", leader_id=leader["person_id"]))).status_code == 200


def test_preferences_use_etags_and_name_bad_fields(client, repo, db, org_id, make_token):
    leader = contact(repo, org_id, "leader", time_zone="Europe/Madrid")
    admin = auth_header(make_token(org_id))
    path = f"/v1/people/{leader['person_id']}/preferences"
    first = client.get(path, headers=admin)
    assert first.json["effective_channels"] == ["email", "inapp"] and first.json["time_zone"] == "Europe/Madrid"
    body = {"channels": {"inapp": False}, "quiet_hours": {"start": "22:00", "end": "07:00"}, "digest": True}
    assert client.put(path, json=body, headers=admin).status_code == 428
    assert client.put(path, json=body, headers={**admin, "If-Match": '"stale"'}).status_code == 412
    bad = client.put(path, json={"quiet_hours": {"start": "25:00", "end": "07:00"}},
                     headers={**admin, "If-Match": first.headers["ETag"]})
    assert bad.status_code == 422 and "quiet_hours" in bad.json["errors"]
    assert bad.headers["Content-Type"].startswith("application/problem+json")
    ok = client.put(path, json=body, headers={**admin, "If-Match": first.headers["ETag"]})
    assert ok.status_code == 200, ok.json
    assert ok.json["effective_channels"] == ["email"] and ok.json["digest"] is True
    assert ok.headers["ETag"] != first.headers["ETag"]
    assert client.put(path, json=body, headers={**admin, "If-Match": first.headers["ETag"]}).status_code == 412
    [entry] = list(db.audit_log.find({"organization_id": org_id, "resource_id": leader["person_id"]}))
    assert entry["action"] == "update" and entry["actor_role"] == "admin" and "quiet_hours" in entry["details"]["fields"]


# --- inbox and delivery log ------------------------------------------------------------------------

def test_the_inbox_lists_and_marks_read_and_the_log_shows_deliveries(client, repo, db, deliverer, org_id, make_token):
    member = contact(repo, org_id, "member", site_ids=("site-2",))
    leader = contact(repo, org_id, "leader", site_ids=("site-2",), language="es")
    consent(repo, org_id, member, ["notify:inapp"])
    evt = accepted(repo, org_id, member["person_id"], leader["person_id"], site_id="site-2")
    deliver_all(deliverer, db, evt.id)

    coordinator = auth_header(make_token(org_id, "coordinator", sites=["site-2"]))
    member_inbox = client.get(f"/v1/people/{member['person_id']}/inbox", headers=coordinator).json
    assert member_inbox["total"] == 1
    entry = db.audit_log.find_one({"organization_id": org_id, "resource_id": member["person_id"], "action": "read"})
    assert entry["resource_type"] == "inapp_inbox" and entry["actor_role"] == "coordinator"
    as_leader = auth_header(make_token(org_id, "leader", leader_id=leader["person_id"]))
    inbox = client.get(f"/v1/people/{leader['person_id']}/inbox", headers=as_leader).json
    assert inbox["total"] == 1 and inbox["items"][0]["title"] == "Tu acompañamiento entre pares está confirmado"
    message_id = inbox["items"][0]["id"]
    read = client.post(f"/v1/people/{leader['person_id']}/inbox/{message_id}/read", headers=as_leader)
    assert read.status_code == 200 and read.json["read_at"]
    assert client.get(f"/v1/people/{leader['person_id']}/inbox?unread_only=true", headers=as_leader).json["total"] == 0
    assert client.post(f"/v1/people/{leader['person_id']}/inbox/nope/read", headers=as_leader).status_code == 404
    assert client.get(f"/v1/people/{leader['person_id']}/inbox?limit=0", headers=as_leader).status_code == 422

    admin = auth_header(make_token(org_id))
    log = client.get(f"/v1/deliveries?source_event_id={evt.id}", headers=admin).json
    # member: in-app only (consent); leader: email + in-app
    assert sorted((d["recipient_id"], d["channel"], d["status"]) for d in log["items"]) == sorted([
        (member["person_id"], "inapp", "delivered"), (leader["person_id"], "email", "delivered"),
        (leader["person_id"], "inapp", "delivered")])
    one = client.get(f"/v1/deliveries/{log['items'][0]['id']}", headers=admin)
    assert one.status_code == 200 and "event_data" not in one.json
    coordinator_elsewhere = auth_header(make_token(org_id, "coordinator", sites=["site-1"]))
    assert client.get(f"/v1/deliveries?source_event_id={evt.id}", headers=coordinator_elsewhere).json["total"] == 0
    assert client.get(f"/v1/deliveries/{log['items'][0]['id']}", headers=coordinator_elsewhere).status_code == 404
    coordinator_here = auth_header(make_token(org_id, "coordinator", sites=["site-2"]))
    assert client.get(f"/v1/deliveries?source_event_id={evt.id}", headers=coordinator_here).json["total"] == 3
    other = auth_header(make_token(f"org-{uuid.uuid4().hex[:8]}"))
    assert client.get(f"/v1/deliveries/{log['items'][0]['id']}", headers=other).status_code == 404
    assert client.get("/v1/deliveries?status=bogus", headers=admin).status_code == 422
    assert client.get("/v1/deliveries", headers=as_leader).status_code == 403


def test_the_delivery_log_is_filtered_by_when_each_delivery_was_created(client, repo, db, deliverer, org_id, make_token):
    member = contact(repo, org_id, "member", site_ids=("site-3",))
    leader = contact(repo, org_id, "leader", site_ids=("site-3",))
    consent(repo, org_id, member, ["notify:inapp"])
    evt = accepted(repo, org_id, member["person_id"], leader["person_id"], site_id="site-3")
    deliver_all(deliverer, db, evt.id)
    admin = auth_header(make_token(org_id))
    created = [d["created_at"] for d in db.deliveries.find({"source_event_id": evt.id})]
    first = min(created).replace(tzinfo=timezone.utc)

    def total(**bounds):
        params = "&".join(f"{k}={v.isoformat().replace('+', '%2B')}" for k, v in bounds.items())
        answer = client.get(f"/v1/deliveries?source_event_id={evt.id}&{params}", headers=admin)
        assert answer.status_code == 200, answer.json
        return answer.json["total"]

    assert total(created_from=first - timedelta(minutes=1)) == len(created) == 3
    assert total(created_from=first - timedelta(days=2), created_to=first - timedelta(days=1)) == 0
    assert total(created_to=first + timedelta(hours=1)) == 3
    assert total(created_from=first + timedelta(hours=1)) == 0
    assert client.get("/v1/deliveries?created_from=yesterday", headers=admin).status_code == 422


# --- webhooks and templates administration ---------------------------------------------------------

def test_webhooks_are_managed_by_admins(client, org_id, make_token):
    admin = auth_header(make_token(org_id))
    assert client.post("/v1/webhooks", json={"url": "http://example.org/h"},
                       headers=auth_header(make_token(org_id, "coordinator", sites=["s"]))).status_code == 403
    bad = client.post("/v1/webhooks", json={"url": "not a url"}, headers=admin)
    assert bad.status_code == 422 and "url" in bad.json["errors"]
    unknown = client.post("/v1/webhooks", json={"url": "http://example.org/h", "event_types": ["nope"]}, headers=admin)
    assert unknown.status_code == 422 and "event_types" in unknown.json["errors"]
    created = client.post("/v1/webhooks", json={"url": "http://example.org/h"}, headers=admin)
    assert created.status_code == 201 and len(created.json["secret"]) >= 32
    listed = client.get("/v1/webhooks", headers=admin).json
    assert [w["id"] for w in listed] == [created.json["id"]] and "secret" not in listed[0]
    other = auth_header(make_token(f"org-{uuid.uuid4().hex[:8]}"))
    assert client.delete(f"/v1/webhooks/{created.json['id']}", headers=other).status_code == 404
    assert client.delete(f"/v1/webhooks/{created.json['id']}", headers=admin).status_code == 204
    assert client.get("/v1/webhooks", headers=admin).json == []


def test_an_organization_overrides_wording_per_language(client, repo, db, deliverer, mail, org_id, make_token):
    admin = auth_header(make_token(org_id))
    path = "/v1/templates/match_accepted/email/es"
    broken = client.put(path, json={"subject": "{% if %}"}, headers=admin)
    assert broken.status_code == 422 and "subject" in broken.json["errors"]
    assert client.put("/v1/templates/nope/email/es", json={"subject": "x"}, headers=admin).status_code == 422
    assert client.put("/v1/templates/match_accepted/sms/es", json={"html": "<p>x</p>"}, headers=admin).status_code == 422
    assert client.put(path, json={"subject": "x"}, headers=auth_header(
        make_token(org_id, "leader", leader_id="l"))).status_code == 403
    saved = client.put(path, json={"subject": "¡{{ name }}, ya tiene compañero!"}, headers=admin)
    assert saved.status_code == 200 and saved.json["parts"] == {"subject": "¡{{ name }}, ya tiene compañero!"}
    assert [t["language"] for t in client.get("/v1/templates", headers=admin).json] == ["es"]

    leader_es = contact(repo, org_id, "leader", language="es", name="Rosa")
    leader_en = contact(repo, org_id, "leader", language="en", name="Tom")
    evt_es = accepted(repo, org_id, "member-x", leader_es["person_id"])
    evt_en = accepted(repo, org_id, "member-y", leader_en["person_id"])
    deliver_all(deliverer, db, evt_es.id)
    deliver_all(deliverer, db, evt_en.id)
    assert mail.messages(to=leader_es["email"])[0]["subject"] == "¡Rosa, ya tiene compañero!"
    assert mail.messages(to=leader_en["email"])[0]["subject"] == "Your peer support match is confirmed"
    assert client.delete(path, headers=admin).status_code == 204
    assert client.delete(path, headers=admin).status_code == 404


# --- digest and SMS over HTTP ----------------------------------------------------------------------

def test_low_priority_messages_wait_for_a_daily_digest(client, repo, db, deliverer, settings, mail, org_id, make_token):
    member = contact(repo, org_id, "member", time_zone="Asia/Tokyo", name="Kei")
    consent(repo, org_id, member, ["notify:email"])
    admin = auth_header(make_token(org_id))
    path = f"/v1/people/{member['person_id']}/preferences"
    etag = client.get(path, headers=admin).headers["ETag"]
    assert client.put(path, json={"digest": True}, headers={**admin, "If-Match": etag}).status_code == 200
    meeting = {"organization_id": org_id, "meeting_id": "mt-1", "site_id": "site-1", "facilitator_id": "l-1",
               "name": "Evening circle", "language": "en", "attendance_mode": "online", "capacity": 10,
               "is_open": True, "is_public": False, "time_zone": "Asia/Tokyo", "rrule": "FREQ=WEEKLY",
               "first_start_local": "2026-12-01T19:00:00", "duration_minutes": 60,
               "registrant_ids": [member["person_id"]]}
    first = apply(repo, scheduling.MeetingUpdated, meeting, handlers.on_notifiable_event)
    apply(repo, scheduling.MeetingUpdated, {**meeting, "name": "Evening circle (new room)"}, handlers.on_notifiable_event)
    assert db.deliveries.count_documents({"recipient_id": member["person_id"], "status": "digest"}) == 2
    assert deliverer.run_once() >= 0 and mail.messages(to=member["email"]) == []

    # the latest 09:00 in Tokyo that has passed (the digest made then is due now, whatever the hour of the run)
    tokyo_now = datetime.now(ZoneInfo("Asia/Tokyo"))
    tokyo_morning = tokyo_now.replace(hour=9, minute=0, second=0, microsecond=0)
    if tokyo_morning > tokyo_now:
        tokyo_morning -= timedelta(days=1)
    tokyo_morning = tokyo_morning.astimezone(timezone.utc)
    assert handlers.run_digests(settings, repo, now=tokyo_morning - timedelta(hours=2)) == 0  # 07:00: not yet
    assert handlers.run_digests(settings, repo, now=tokyo_morning) == 1
    assert handlers.run_digests(settings, repo, now=tokyo_morning + timedelta(hours=1)) == 0  # once a day
    digest = db.deliveries.find_one({"recipient_id": member["person_id"], "template": "digest"})
    deliver_all(deliverer, db, digest["source_event_id"])
    [message] = mail.messages(to=member["email"])
    assert message["subject"] == "Your Recovery Network updates"
    assert "- Evening circle was updated" in message["text"] and "- Evening circle (new room) was updated" in message["text"]
    assert db.deliveries.find_one({"source_event_id": first.id})["status"] == "digested"


class SmsProvider:
    def __init__(self):
        self.received = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                owner.received.append((dict(self.headers), json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"


def test_sms_goes_through_the_http_provider_adapter(repo, db, settings, org_id):
    provider = SmsProvider()
    try:
        http_settings = replace(settings, sms_provider="http", sms_http_url=provider.url, sms_http_token="tok-123")
        deliverer = handlers.Deliverer(http_settings, repo, Channels(http_settings))
        member = contact(repo, org_id, "member", phone="+34600000001", language="es")
        consent(repo, org_id, member, ["notify:sms"])
        evt = accepted(repo, org_id, member["person_id"], "leader-unknown")
        eventually(lambda: deliverer.run_once() is not None and provider.received, timeout=30)
        headers, body = provider.received[0]
        assert body["to"] == "+34600000001" and body["text"] == "Recovery Network: tu acompañamiento está confirmado."
        assert headers["Authorization"] == "Bearer tok-123"
        assert db.deliveries.find_one({"source_event_id": evt.id, "channel": "sms"})["status"] == "delivered"
    finally:
        provider.server.shutdown()
        provider.server.server_close()


# --- the mail catcher as the local runner starts it ------------------------------------------------

def test_the_mail_catcher_process_keeps_and_lists_what_it_receives(tmp_path):
    smtp_port, http_port = free_port(), free_port()
    folder = tmp_path / "mail"
    process = subprocess.Popen([sys.executable, "-m", "shared.devstack.mailcatcher", "--smtp-port", str(smtp_port),
                                "--http-port", str(http_port), "--dir", str(folder), "--host", "127.0.0.1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def listening():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/messages", timeout=1) as response:
                    return json.load(response) == []
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()
                return False
        eventually(listening, timeout=20)
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "a@example.org", "b@example.org", "Hello there"
        msg.set_content("plain body")
        msg.add_alternative("<p>html body</p>", subtype="html")
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            smtp.send_message(msg)
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/messages?to=b@example.org", timeout=5) as response:
            [listed] = json.load(response)
        assert listed["subject"] == "Hello there" and listed["to"] == ["b@example.org"] and listed["date"]
        assert listed["text"].strip() == "plain body" and "html body" in listed["html"]
        assert [p.name for p in folder.glob("*.eml")] == [f"{listed['id']}.eml"]
    finally:
        process.terminate()
        process.wait(10)


# --- who is told: registrants, coordinators ---------------------------------------------------------

def test_a_moved_occurrence_reaches_each_registrant_in_their_language_and_zone(repo, db, deliverer, mail, org_id):
    ana = contact(repo, org_id, "member", language="es", time_zone="America/Bogota", name="Ana")
    ben = contact(repo, org_id, "member", language="en", time_zone="Europe/London", name="Ben")
    for person in (ana, ben):
        consent(repo, org_id, person, ["notify:email"])
    evt = apply(repo, scheduling.OccurrenceMoved, {
        "organization_id": org_id, "meeting_id": "mt-2", "site_id": "site-1", "occurrence_id": "occ-1",
        "name": "Morning group", "time_zone": "UTC", "original_start": "2026-12-05T14:00:00Z",
        "new_start": "2026-12-06T14:00:00Z", "new_end": "2026-12-06T15:00:00Z",
        "registrant_ids": [ana["person_id"], ben["person_id"]]}, handlers.on_notifiable_event)
    deliver_all(deliverer, db, evt.id)
    [to_ana] = mail.messages(to=ana["email"])
    [to_ben] = mail.messages(to=ben["email"])
    assert to_ana["subject"] == "Morning group cambió de fecha" and "06/12/2026 09:00 (America/Bogota)" in to_ana["text"]
    assert to_ben["subject"] == "Morning group has moved" and "2026-12-06 14:00 (Europe/London)" in to_ben["text"]


def test_waiting_members_reach_the_coordinators_of_their_site_only(repo, db, deliverer, mail, org_id):
    here = contact(repo, org_id, "staff", site_ids=("site-w",))
    elsewhere = contact(repo, org_id, "staff", site_ids=("site-z",))
    apply(repo, intake.CoordinatorAssigned, {"organization_id": org_id, "staff_id": here["person_id"],
                                             "site_ids": ["site-w"]}, handlers.on_coordinator_assigned)
    apply(repo, intake.CoordinatorAssigned, {"organization_id": org_id, "staff_id": elsewhere["person_id"],
                                             "site_ids": ["site-z"]}, handlers.on_coordinator_assigned)
    evt = apply(repo, matching.MemberWaitingTooLong, {
        "organization_id": org_id, "member_id": "member-w", "site_id": "site-w", "reason": "no leader speaks Tagalog",
        "waiting_since": "2026-10-01T00:00:00Z", "days_waiting": 21}, handlers.on_notifiable_event)
    deliver_all(deliverer, db, evt.id)
    [message] = mail.messages(to=here["email"])
    assert message["subject"] == "A member has waited 21 days for a peer leader"
    assert mail.messages(to=elsewhere["email"]) == []



def test_admins_and_the_sites_coordinators_see_who_hears_of_a_site(client, repo, org_id, make_token):
    staff = contact(repo, org_id, "staff", site_ids=("site-c",))
    apply(repo, intake.CoordinatorAssigned, {"organization_id": org_id, "staff_id": staff["person_id"],
                                             "site_ids": ["site-c"]}, handlers.on_coordinator_assigned)
    listed = client.get("/v1/sites/site-c/coordinators", headers=auth_header(make_token(org_id))).json
    assert listed == [{"staff_id": staff["person_id"], "in_directory": True, "has_email": True, "has_phone": False,
                       "time_zone": "UTC"}]
    assert client.get("/v1/sites/site-c/coordinators", headers=auth_header(
        make_token(org_id, "coordinator", sites=["site-x"]))).status_code == 404
    # Another organization's site and a made-up one are not found, as on every other route.
    other_org = f"org-{uuid.uuid4().hex[:8]}"
    apply(repo, intake.SiteCreated, site(other_org, "site-theirs", "Their site"), handlers.on_site_changed)
    for org, site_id in ((other_org, "site-c"), (org_id, "site-theirs"), (org_id, f"site-{uuid.uuid4().hex[:8]}")):
        response = client.get(f"/v1/sites/{site_id}/coordinators", headers=auth_header(make_token(org)))
        assert response.status_code == 404 and response.json["status"] == 404
    # A site intake announced (SiteCreated) with nobody named yet: found, and nobody would be told.
    apply(repo, intake.SiteCreated, site(org_id, "site-new", "New site"), handlers.on_site_changed)
    response = client.get("/v1/sites/site-new/coordinators", headers=auth_header(make_token(org_id)))
    assert response.status_code == 200 and response.json == []
    assert client.get("/v1/sites/site-theirs/coordinators", headers=auth_header(make_token(other_org))).json == []


def site(org, site_id, name):
    return {"organization_id": org, "site_id": site_id, "name": name, "time_zone": "UTC", "virtual_only": False,
            "location": None}


def test_a_failure_shown_to_coordinators_names_the_site_and_keeps_its_id_apart(client, repo, db, org_id, make_token):
    apply(repo, intake.SiteCreated, site(org_id, "site-nobody-here", "Eastside"), handlers.on_site_changed)
    apply(repo, intake.SiteUpdated, site(org_id, "site-nobody-here", "Eastside Commons"), handlers.on_site_changed)
    flag = apply(repo, intake.MemberRiskFlagged, {
        "organization_id": org_id, "member_id": "member-e", "site_id": "site-nobody-here", "screening_id": "s",
        "instrument": "PHQ-2", "band": "positive", "reason": "PHQ-2 positive"}, handlers.on_notifiable_event)
    [failed] = client.get(f"/v1/deliveries?source_event_id={flag.id}", headers=auth_header(make_token(org_id))).json["items"]
    assert failed["status"] == "failed" and 'the site "Eastside Commons"' in failed["last_error"]
    assert "site-nobody-here" not in failed["last_error"]
    assert (failed["site_id"], failed["site_name"]) == ("site-nobody-here", "Eastside Commons")
    # A site whose name never arrived is not named by its id either.
    unnamed = apply(repo, intake.MemberRiskFlagged, {
        "organization_id": org_id, "member_id": "member-f", "site_id": "site-unnamed", "screening_id": "s",
        "instrument": "PHQ-2", "band": "positive", "reason": "PHQ-2 positive"}, handlers.on_notifiable_event)
    doc = db.deliveries.find_one({"source_event_id": unnamed.id})
    assert "site-unnamed" not in doc["last_error"] and doc["site_id"] == "site-unnamed"


def test_several_worker_copies_send_each_delivery_once(repo, db, settings, mail, org_id):
    members = [contact(repo, org_id, "member", name=f"M{i}") for i in range(12)]
    for member in members:
        consent(repo, org_id, member, ["notify:email"])
    evt = apply(repo, scheduling.OccurrenceCancelled, {
        "organization_id": org_id, "meeting_id": "mt-3", "site_id": "site-1", "occurrence_id": "occ-3",
        "name": "Big group", "time_zone": "UTC", "original_start": "2026-12-07T18:00:00Z",
        "registrant_ids": [m["person_id"] for m in members]}, handlers.on_notifiable_event)
    copies = [handlers.Deliverer(settings, repo) for _ in range(3)]
    threads = [threading.Thread(target=copy.run_once) for copy in copies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    deliver_all(copies[0], db, evt.id)
    for member in members:
        assert len(mail.messages(to=member["email"])) == 1
    assert db.deliveries.count_documents({"source_event_id": evt.id, "status": "delivered"}) == 12


def test_a_delivery_left_sending_by_a_dead_worker_is_taken_again_after_its_lease(repo, db, deliverer, mail, org_id):
    leader = contact(repo, org_id, "leader")
    evt = accepted(repo, org_id, "member-z", leader["person_id"])
    which = {"source_event_id": evt.id, "channel": "email", "recipient_id": leader["person_id"]}
    # A worker claimed the email under its lease and died mid-send: the lease runs out.
    dead = {**db.deliveries.find_one(which), "lease_id": "dead-worker"}
    db.deliveries.update_one(which, {"$set": {"status": "sending", "lease_id": "dead-worker",
                                              "lease_until": datetime.now(timezone.utc) - timedelta(seconds=1)}})
    deliver_all(deliverer, db, evt.id)
    assert len(mail.messages(to=leader["email"])) == 1
    doc = db.deliveries.find_one(which)
    assert doc["status"] == "delivered" and doc["takeovers"] >= 1, doc
    assert mail.messages(to=leader["email"])[0]["message_id"] == f"<{doc['_id']}@recoverynet.local>"
    # The first holder's late outcome does not count: the lease it held is gone.
    assert repo.transaction(lambda uow: Repository.finish_delivery(uow, dead, {"status": "failed"})) is False
    assert db.deliveries.find_one(which)["status"] == "delivered"


def test_a_delivery_whose_lease_still_runs_is_not_taken_whatever_its_next_attempt_says(repo, db, deliverer, mail, org_id):
    # Claimed by the version before (which left next_attempt_at as it was, past), by a sender that is alive:
    # the look-up finds it on the due index, and the claim, which checks the lease itself, leaves it alone.
    leader = contact(repo, org_id, "leader")
    evt = accepted(repo, org_id, "member-y", leader["person_id"])
    which = {"source_event_id": evt.id, "channel": "email", "recipient_id": leader["person_id"]}
    now = datetime.now(timezone.utc)
    db.deliveries.update_one(which, {"$set": {"status": "sending", "lease_id": "alive-worker",
                                              "lease_until": now + timedelta(minutes=5),
                                              "next_attempt_at": now - timedelta(seconds=5)}})
    doc = db.deliveries.find_one(which)
    assert {"_id": doc["_id"], "status": "sending"} in repo.reader().due_deliveries(datetime.now(timezone.utc), 1000)  # found
    deliverer.run_once()
    doc = db.deliveries.find_one(which)
    assert doc["status"] == "sending" and doc["lease_id"] == "alive-worker" and not doc.get("takeovers"), doc
    assert mail.messages(to=leader["email"]) == []


class AnswerLostAfterClaim(Repository):
    """The database applies the claim of a batch holding ``victim``, then the connection drops before its
    answer arrives."""

    victim = None

    def claim_batch(self, due, *args):
        taken = super().claim_batch(due, *args)
        if any(d["_id"] == self.victim for d in due):
            raise AutoReconnect("connection closed")
        return taken


def test_a_claim_whose_answer_is_lost_gives_the_delivery_back_unsent(repo, db, settings, deliverer, mail, org_id):
    leader = contact(repo, org_id, "leader")
    evt = accepted(repo, org_id, "member-y", leader["person_id"])
    which = {"source_event_id": evt.id, "channel": "email", "recipient_id": leader["person_id"]}
    losing = AnswerLostAfterClaim(repo.client, db)
    losing.victim = db.deliveries.find_one(which)["_id"]
    db.deliveries.update_one(which, {"$set": {"next_attempt_at": datetime(2000, 1, 1, tzinfo=timezone.utc)}})  # first
    with pytest.raises(AutoReconnect):
        handlers.Deliverer(settings, losing).run_once()
    doc = db.deliveries.find_one(which)
    assert doc["status"] == "pending" and "lease_id" not in doc, doc  # not left 'sending' for a whole lease
    deliver_all(deliverer, db, evt.id)
    assert len(mail.messages(to=leader["email"])) == 1
    assert db.deliveries.find_one(which).get("takeovers", 0) == 0  # given back, not taken over


def test_a_claim_retried_after_it_was_applied_still_holds_the_lease(repo, db, org_id):
    leader = contact(repo, org_id, "leader")
    evt = accepted(repo, org_id, "member-w", leader["person_id"])
    due = db.deliveries.find_one({"source_event_id": evt.id, "channel": "email"}, {"_id": 1, "status": 1})
    now = datetime.now(timezone.utc)
    assert repo.claim(due, now, 60, "lease-1")["lease_id"] == "lease-1"
    # the driver's retry of the same write matches nothing now, yet the lease is ours
    assert repo.claim(due, now, 60, "lease-1")["lease_id"] == "lease-1"
    assert repo.claim(due, now, 60, "lease-2") is None


def test_a_malformed_address_fails_at_once_without_retries(repo, db, deliverer, org_id):
    leader = contact(repo, org_id, "leader")
    db.contacts.update_one({"_id": leader["person_id"]}, {"$set": {"email": "not-an-address"}})
    evt = accepted(repo, org_id, "member-q", leader["person_id"])
    deliver_all(deliverer, db, evt.id)
    doc = db.deliveries.find_one({"source_event_id": evt.id, "recipient_id": leader["person_id"], "channel": "email"})
    assert doc["status"] == "failed" and doc["attempts"] == 1 and "not valid" in doc["last_error"]
    inapp = db.deliveries.find_one({"source_event_id": evt.id, "recipient_id": leader["person_id"], "channel": "inapp"})
    assert inapp["status"] == "delivered"  # other channels are not held up


def test_the_openapi_document_describes_the_api(client):
    spec = client.get("/openapi.json").json
    assert {"/v1/unsubscribe", "/v1/people/{person_id}/preferences", "/v1/deliveries", "/v1/webhooks",
            "/v1/templates/{kind}/{channel}/{language}"} <= set(spec["paths"])
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'recoverynet_notifications_deliveries{status="pending"}' in metrics
    assert "recoverynet_notifications_oldest_due_seconds" in metrics


def test_a_registration_is_confirmed_naming_the_meeting(repo, db, deliverer, mail, org_id):
    member = contact(repo, org_id, "member", language="es")
    consent(repo, org_id, member, ["notify:email"])
    meeting_id = f"mt-{uuid.uuid4().hex[:6]}"
    apply(repo, scheduling.MeetingCreated, {
        "organization_id": org_id, "meeting_id": meeting_id, "site_id": "site-1", "facilitator_id": "l-1",
        "name": "Círculo de los martes", "language": "es", "attendance_mode": "in_person", "capacity": 1,
        "is_open": True, "is_public": True, "time_zone": "Europe/Madrid", "rrule": "FREQ=WEEKLY;BYDAY=TU",
        "first_start_local": "2026-12-01T19:00:00", "duration_minutes": 90}, handlers.on_meeting_snapshot)
    evt = apply(repo, scheduling.RegistrationCreated, {
        "organization_id": org_id, "registration_id": "reg-1", "meeting_id": meeting_id, "site_id": "site-1",
        "member_id": member["person_id"], "status": "waitlisted", "waitlist_position": 3},
        handlers.on_notifiable_event)
    deliver_all(deliverer, db, evt.id)
    [message] = mail.messages(to=member["email"])
    assert message["subject"] == "Estás en la lista de espera de Círculo de los martes"
    assert "número 3" in message["text"]


def test_an_admin_previews_wording_and_retries_a_failed_delivery(client, repo, db, deliverer, mail, org_id, make_token):
    admin = auth_header(make_token(org_id))
    path = "/v1/templates/reminder/sms/es/preview"
    ok = client.post(path, json={"data": {"title": "Círculo", "starts_at": "2026-12-01T18:00:00Z"},
                                 "time_zone": "Europe/Madrid"}, headers=admin)
    assert ok.status_code == 200 and ok.json["text"] == "Recordatorio: Círculo el 01/12/2026 19:00 (Europe/Madrid)."
    missing = client.post(path, json={"data": {}}, headers=admin)
    assert missing.status_code == 422 and "data" in missing.json["errors"]
    draft = client.post(path, json={"data": {"title": "Círculo"}, "parts": {"text": "Hola {{ name }}: {{ data.title }}"}},
                        headers=admin)
    assert draft.status_code == 200 and draft.json["text"] == "Hola Alex: Círculo"
    assert db.templates.count_documents({"organization_id": org_id}) == 0  # a preview saves nothing
    broken = client.post(path, json={"parts": {"text": "{% if %}"}}, headers=admin)
    assert broken.status_code == 422 and "text" in broken.json["errors"]
    wrong_part = client.post(path, json={"parts": {"subject": "Hi"}}, headers=admin)
    assert wrong_part.status_code == 422 and "subject" in wrong_part.json["errors"]

    leader = contact(repo, org_id, "leader")
    db.contacts.update_one({"_id": leader["person_id"]}, {"$set": {"email": "broken"}})
    evt = accepted(repo, org_id, "member-r", leader["person_id"])
    deliver_all(deliverer, db, evt.id)
    failed = db.deliveries.find_one({"source_event_id": evt.id, "recipient_id": leader["person_id"], "channel": "email"})
    assert failed["status"] == "failed"
    delivered = db.deliveries.find_one({"source_event_id": evt.id, "recipient_id": leader["person_id"], "channel": "inapp"})
    assert client.post(f"/v1/deliveries/{delivered['_id']}/retry", headers=admin).status_code == 409
    assert client.post(f"/v1/deliveries/{failed['_id']}/retry", headers=auth_header(
        make_token(f"org-{uuid.uuid4().hex[:8]}"))).status_code == 404
    db.contacts.update_one({"_id": leader["person_id"]}, {"$set": {"email": leader["email"]}})  # fixed
    retried = client.post(f"/v1/deliveries/{failed['_id']}/retry", headers=admin)
    assert retried.status_code == 200 and retried.json["status"] == "pending"
    deliver_all(deliverer, db, evt.id)
    assert len(mail.messages(to=leader["email"])) == 1
    assert db.deliveries.find_one({"_id": failed["_id"]})["status"] == "delivered"


def test_a_batch_of_emails_shares_one_smtp_connection_and_a_dropped_one_is_replaced(settings, mail):
    proxy = TcpProxy(mail.smtp_port)  # counts the SMTP connections made through it
    sender = Channels(replace(settings, smtp_port=proxy.port)).email
    to = [f"batch-{uuid.uuid4().hex[:8]}@example.org" for _ in range(5)]

    def message(i):
        return sender.build(to=to[i], subject=f"batch {i}", text="hello", html="<p>hello</p>",
                            delivery_id=uuid.uuid4().hex, unsubscribe_url=None)
    try:
        with sender.connection_reuse():
            for i in range(3):
                sender.send(message(i))
            assert proxy.accepted == 1
            proxy.cut()  # the server drops the connection between two messages ...
            proxy.restore()
            sender.send(message(3))  # ... which costs no failed try: a new connection carries the next one
            assert proxy.accepted == 2
        sender.send(message(4))  # outside a batch: a connection of its own
        assert proxy.accepted == 3
        assert [len(mail.messages(to=address)) for address in to] == [1] * 5
    finally:
        proxy.close()
