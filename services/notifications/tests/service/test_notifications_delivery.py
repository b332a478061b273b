"""The issue's "Done when", through the real broker, database and a real SMTP server (the mail catcher):
match proposed -> one email each to member and leader in their languages; a redelivered event sends
nothing more; quiet hours hold a reminder until morning while an urgent flag goes at once; a revoked
consent stops that channel; a webhook that fails twice then succeeds gets exactly one accepted, validly
signed delivery; the unsubscribe link turns the channel off."""
from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from kafka import KafkaProducer

from shared.devstack.servers import free_port
from shared.events import intake, matching, scheduling
from shared.events.notifications import DELIVERIES, NotificationDelivered, NotificationFailed
from shared.messaging.envelope import encode_value, record_headers
from shared.mongo import utcnow
from shared.testing import eventually
from shared.testing.events import EventTap, publish
from shared.testing.fixtures import auth_header

from notifications import model
from notifications.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER

pytestmark = pytest.mark.timeout(240)


def proposal(org, member, leader, **extra):
    return {"organization_id": org, "match_id": f"match-{uuid.uuid4().hex[:8]}", "member_id": member["person_id"],
            "leader_id": leader["person_id"], "site_id": "site-1", "score": 81.5,
            "breakdown": [{"part": "language", "points": 10, "max_points": 10, "explanation": "same language"}],
            "rules_passed": ["capacity"], "expires_at": "2026-12-01T18:00:00Z", **extra}


def emails_to(mail, person) -> list[dict]:
    return mail.messages(to=person["email"])


def republish(bootstrap, evt) -> None:
    """The same event again (same ce_id), as a producer retrying after a lost ack would send it."""
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","))
    producer.send(evt.topic, key=evt.key.encode(), value=encode_value(evt), headers=record_headers(evt))
    producer.flush(timeout=30)
    producer.close(timeout=5)


def test_a_match_proposal_emails_member_and_leader_once_each_in_their_languages(people, mail, kafka_bootstrap, db,
                                                                                 org_id):
    member = people.contact("member", language="es-MX", time_zone="America/Mexico_City", name="Lucía")
    leader = people.contact("leader", language="en", time_zone="America/Chicago", name="Sam")
    people.consents(member, ["matching", "notify:email"])
    with EventTap(kafka_bootstrap, [DELIVERIES]) as tap:
        evt = publish(kafka_bootstrap, matching.MatchProposed, proposal(org_id, member, leader))
        to_member = eventually(lambda: emails_to(mail, member), timeout=60)
        to_leader = eventually(lambda: emails_to(mail, leader), timeout=60)
        delivered = tap.wait_for(lambda e: e.type == NotificationDelivered.type and e.data["source_event_id"] == evt.id
                                 and e.data["channel"] == "email", count=2)
    assert len(to_member) == 1 and len(to_leader) == 1
    assert to_member[0]["subject"] == "Hemos encontrado un líder de apoyo para ti"
    assert "Hola Lucía" in to_member[0]["text"] and "01/12/2026 12:00 (America/Mexico_City)" in to_member[0]["text"]
    assert to_leader[0]["subject"] == "A new member was proposed to you"
    assert "Hello Sam" in to_leader[0]["text"] and "2026-12-01 12:00 (America/Chicago)" in to_leader[0]["text"]
    for message in to_member + to_leader:  # multipart: plain text and HTML, with a working unsubscribe link
        assert message["html"] and "<p>" in message["html"]
        assert message["list_unsubscribe"].startswith("<http://testserver/v1/unsubscribe?token=")
    assert {e.data["recipient_id"] for e in delivered} == {member["person_id"], leader["person_id"]}
    # The events carry ids only: no address or name leaves the service.
    for e in delivered:
        assert member["email"] not in json.dumps(e.data) and "Lucía" not in json.dumps(e.data)
    # Member consented to email only: no in-app message for them; the leader gets one in the inbox.
    assert db.deliveries.count_documents({"source_event_id": evt.id, "recipient_id": member["person_id"]}) == 1
    eventually(lambda: db.inapp_messages.find_one({"person_id": leader["person_id"]}), timeout=30)


def test_a_redelivered_event_sends_nothing_more(people, mail, kafka_bootstrap, db, org_id, repo):
    member = people.contact("member", language="en")
    leader = people.contact("leader", language="es")
    people.consents(member, ["notify:email"])
    data = proposal(org_id, member, leader)
    evt = publish(kafka_bootstrap, matching.MatchProposed, data)
    eventually(lambda: len(emails_to(mail, member)) == 1 and len(emails_to(mail, leader)) == 1, timeout=60)
    republish(kafka_bootstrap, evt)
    # A later event for the same member (same key, same partition) shows the redelivery was handled.
    accepted = publish(kafka_bootstrap, matching.MatchAccepted, {
        "organization_id": org_id, "match_id": data["match_id"], "member_id": member["person_id"],
        "leader_id": leader["person_id"], "site_id": "site-1", "accepted_by_role": "member"})
    eventually(lambda: db.deliveries.count_documents({"source_event_id": accepted.id, "status": "delivered",
                                                      "channel": "email"}) == 2, timeout=60)
    eventually(lambda: len(emails_to(mail, member)) == 2 and len(emails_to(mail, leader)) == 2, timeout=30)
    subjects = [m["subject"] for m in emails_to(mail, member) + emails_to(mail, leader)]
    assert sorted(subjects) == sorted(["We found a peer leader for you", "Your peer support match is confirmed",
                                       "Te hemos propuesto un nuevo miembro",
                                       "Tu acompañamiento entre pares está confirmado"])
    assert db.deliveries.count_documents({"source_event_id": evt.id}) == 3  # member email, leader email + inapp

    # Even a handler run twice for the same event (no inbox in front) records nothing more:
    # the idempotency key is unique per (event, recipient, channel).
    from notifications.handlers import on_notifiable_event
    repo.transaction(lambda uow: on_notifiable_event(evt, uow))
    assert db.deliveries.count_documents({"source_event_id": evt.id}) == 3


def _zone_at_daytime_hours() -> str:
    """A zone where it is now between 09:00 and 20:00, so 'quiet from an hour ago until 07:00' is tonight's."""
    for name in ("UTC", "America/Los_Angeles", "Asia/Tokyo", "Europe/Berlin", "America/New_York", "Asia/Kolkata",
                 "Pacific/Auckland", "America/Sao_Paulo"):
        if 9 <= datetime.now(ZoneInfo(name)).hour < 20:
            return name
    raise AssertionError("no zone found")


def test_quiet_hours_hold_a_reminder_until_morning_while_an_urgent_flag_goes_at_once(
        people, mail, kafka_bootstrap, db, org_id, client, make_token, settings):
    tz = _zone_at_daytime_hours()
    local_now = datetime.now(ZoneInfo(tz))
    quiet = {"start": (local_now - timedelta(hours=1)).strftime("%H:%M"), "end": "07:00"}
    leader = people.contact("leader", time_zone=tz)
    coordinator = people.coordinator("site-q", time_zone=tz)
    admin = auth_header(make_token(org_id, "admin"))
    for person in (leader, coordinator):  # both are in their quiet hours now
        etag = client.get(f"/v1/people/{person['person_id']}/preferences", headers=admin).headers["ETag"]
        response = client.put(f"/v1/people/{person['person_id']}/preferences", json={"quiet_hours": quiet},
                              headers={**admin, "If-Match": etag})
        assert response.status_code == 200, response.json

    reminder = publish(kafka_bootstrap, scheduling.ReminderDue, {
        "organization_id": org_id, "reminder_id": f"r-{uuid.uuid4().hex[:6]}", "person_id": leader["person_id"],
        "person_kind": "leader", "subject_kind": "session", "session_id": "sess-1", "site_id": "site-q",
        "title": "one-on-one session", "starts_at": (utcnow() + timedelta(days=1)).isoformat(), "time_zone": tz,
        "offset_minutes": 1440})
    flag = publish(kafka_bootstrap, intake.MemberRiskFlagged, {
        "organization_id": org_id, "member_id": "member-at-risk", "site_id": "site-q", "screening_id": "scr-1",
        "instrument": "PHQ-2", "band": "positive", "reason": "PHQ-2 positive screen"})

    urgent = eventually(lambda: emails_to(mail, coordinator), timeout=60)
    assert urgent[0]["subject"].startswith("URGENT") and "member-at-risk" in urgent[0]["text"]
    held = eventually(lambda: db.deliveries.find_one({"source_event_id": reminder.id, "channel": "email"}), timeout=30)
    morning = (local_now + timedelta(days=1)).replace(hour=7, minute=0, second=0, microsecond=0)
    assert held["status"] == "held"
    assert held["held_until"] == morning.astimezone(timezone.utc)
    assert emails_to(mail, leader) == []
    # recorded with the rest of its batch just after the server took it: the email can arrive first
    eventually(lambda: db.deliveries.find_one({"source_event_id": flag.id, "channel": "email"})["status"] == "delivered",
               timeout=30)

    # Morning comes (we move the hold's end into the past): the release job frees it and it goes out.
    db.deliveries.update_many({"source_event_id": reminder.id}, {"$set": {"next_attempt_at": utcnow() - timedelta(seconds=1)}})
    sent = eventually(lambda: emails_to(mail, leader), timeout=60)
    assert sent[0]["subject"].startswith("Reminder: one-on-one session")


def test_a_revoked_channel_consent_stops_that_channel(people, mail, kafka_bootstrap, db, org_id, settings):
    member = people.contact("member", phone="+15555550123")
    leader = people.contact("leader")
    people.consents(member, ["notify:email", "notify:sms"])
    outbox = Path(settings.sms_outbox_path)

    def sms_to_member():
        if not outbox.exists():
            return []
        return [json.loads(line) for line in outbox.read_text().splitlines() if member["phone"] in line]

    session = {"organization_id": org_id, "session_id": f"s-{uuid.uuid4().hex[:6]}", "match_id": "m-1",
               "member_id": member["person_id"], "leader_id": leader["person_id"], "site_id": "site-1",
               "start": "2026-12-02T15:00:00Z", "end": "2026-12-02T16:00:00Z", "time_zone": "UTC"}
    publish(kafka_bootstrap, scheduling.SessionBooked, {**session, "booked_by_role": "leader"})
    eventually(lambda: len(sms_to_member()) == 1 and len(emails_to(mail, member)) == 1, timeout=60)
    assert sms_to_member()[0]["text"].startswith("Recovery Network: session booked")

    people.consents(member, ["notify:email"], changed="notify:sms", granted=False)
    moved = publish(kafka_bootstrap, scheduling.SessionRescheduled, {
        **session, "start": "2026-12-03T15:00:00Z", "end": "2026-12-03T16:00:00Z",
        "previous_start": "2026-12-02T15:00:00Z", "rescheduled_by_role": "member"})
    eventually(lambda: len(emails_to(mail, member)) == 2, timeout=60)
    assert len(sms_to_member()) == 1
    channels = {d["channel"] for d in db.deliveries.find({"source_event_id": moved.id, "recipient_id": member["person_id"]})}
    assert channels == {"email"}


class FlakyEndpoint:
    """A webhook receiver that answers 500 to the first ``failures`` requests, then 200."""

    def __init__(self, failures: int):
        self.failures = failures
        self.requests: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = 500 if len(owner.requests) < owner.failures else 200
                owner.requests.append({"headers": dict(self.headers), "body": body, "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_webhook_that_fails_twice_then_succeeds_gets_exactly_one_signed_delivery(
        people, kafka_bootstrap, db, org_id, client, make_token):
    endpoint = FlakyEndpoint(failures=2)
    secret = "whsec-" + uuid.uuid4().hex
    admin = auth_header(make_token(org_id, "admin"))
    try:
        created = client.post("/v1/webhooks", json={"url": endpoint.url, "secret": secret,
                                                    "event_types": [matching.MatchAccepted.type]}, headers=admin)
        assert created.status_code == 201, created.json
        with EventTap(kafka_bootstrap, [DELIVERIES]) as tap:
            accepted = publish(kafka_bootstrap, matching.MatchAccepted, {
                "organization_id": org_id, "match_id": "match-w", "member_id": "member-w", "leader_id": "leader-w",
                "site_id": "site-1", "accepted_by_role": "leader"})
            delivered = tap.wait_for(lambda e: e.type == NotificationDelivered.type and e.data["channel"] == "webhook"
                                     and e.data["source_event_id"] == accepted.id, timeout=60)
        assert [r["status"] for r in endpoint.requests] == [500, 500, 200]
        ok = [r for r in endpoint.requests if r["status"] == 200]
        assert len(ok) == 1
        headers, body = ok[0]["headers"], ok[0]["body"]
        assert model.verify_webhook_signature(secret, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER],
                                              now=utcnow())
        assert not model.verify_webhook_signature("wrong-secret-xxxxxxxx", headers[TIMESTAMP_HEADER], body,
                                                  headers[SIGNATURE_HEADER], now=utcnow())
        payload = json.loads(body)
        assert payload["id"] == accepted.id and payload["data"]["match_id"] == "match-w"
        assert len({r["headers"]["X-RecoveryNet-Delivery"] for r in endpoint.requests}) == 1  # one delivery, 3 tries
        assert delivered[0].data["attempts"] == 3
        log = client.get(f"/v1/deliveries?channel=webhook&source_event_id={accepted.id}", headers=admin).json
        assert log["total"] == 1 and log["items"][0]["status"] == "delivered" and log["items"][0]["attempts"] == 3
        assert len(endpoint.requests) == 3
    finally:
        endpoint.close()


def test_a_channel_that_keeps_failing_is_marked_failed_with_a_delivery_failed_event(
        people, kafka_bootstrap, db, org_id, client, make_token):
    endpoint = FlakyEndpoint(failures=100)
    admin = auth_header(make_token(org_id, "admin"))
    try:
        assert client.post("/v1/webhooks", json={"url": endpoint.url}, headers=admin).status_code == 201
        with EventTap(kafka_bootstrap, [DELIVERIES]) as tap:
            ended = publish(kafka_bootstrap, matching.MatchEnded, {
                "organization_id": org_id, "match_id": "match-f", "member_id": "member-f", "leader_id": "leader-f",
                "site_id": "site-1", "ended_by_role": "member", "reason_code": "member_choice",
                "re_proposal_follows": False})
            failed = tap.wait_for(lambda e: e.type == NotificationFailed.type and e.data["source_event_id"] == ended.id
                                  and e.data["channel"] == "webhook", timeout=60)
        assert failed[0].data["attempts"] == 4 and "status 500" in failed[0].data["reason"]
        doc = db.deliveries.find_one({"source_event_id": ended.id, "channel": "webhook"})
        assert doc["status"] == "failed" and "status 500" in doc["last_error"]
        assert len(endpoint.requests) == 4
    finally:
        endpoint.close()


def accepted_match(bootstrap, org, member, leader):
    return publish(bootstrap, matching.MatchAccepted, {
        "organization_id": org, "match_id": f"m-{uuid.uuid4().hex[:6]}", "member_id": member["person_id"],
        "leader_id": leader["person_id"], "site_id": "site-1", "accepted_by_role": "member"})


def name_organization(bootstrap, db, org, name):
    publish(bootstrap, intake.OrganizationCreated, {"organization_id": org, "name": name})
    eventually(lambda: db.organizations.find_one({"_id": org}), timeout=60, message="organization name stored")


def test_opening_the_unsubscribe_link_changes_nothing_and_its_button_unsubscribes(people, mail, kafka_bootstrap, db,
                                                                                   org_id, client, make_token):
    name_organization(kafka_bootstrap, db, org_id, "Harbor & Hope Recovery")
    member = people.contact("member")
    leader = people.contact("leader")
    people.consents(member, ["notify:email", "notify:inapp"])
    admin = auth_header(make_token(org_id))
    publish(kafka_bootstrap, matching.MatchProposed, proposal(org_id, member, leader))
    message = eventually(lambda: emails_to(mail, member), timeout=60)[0]
    link = re.search(r"http://testserver(/v1/unsubscribe\?token=\S+)", message["text"]).group(1)
    assert link in message["html"].replace("&amp;", "&")

    # Opening the link (a mail scanner, a link preview, or the person) only shows a page: nothing changes.
    for _ in range(2):
        page = client.get(link)  # no bearer token: the link itself is the credential
        assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<html lang="en">' in html and '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "You will no longer get emails from Harbor &amp; Hope Recovery" in html
    assert "http" not in html and "src=" not in html  # nothing loaded from another host (or any host)
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "no-referrer"
    form = re.search(r'<form method="post">(.*?)</form>', html, re.S).group(1)  # posts to this same URL
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
    assert fields == {"List-Unsubscribe": "One-Click"} and "<button" in form
    prefs = client.get(f"/v1/people/{member['person_id']}/preferences", headers=admin).json
    assert prefs["channels"] == {} and "email" in prefs["effective_channels"]
    assert db.audit_log.find_one({"organization_id": org_id, "resource_id": member["person_id"], "action": "update"}) is None
    accepted_match(kafka_bootstrap, org_id, member, leader)
    eventually(lambda: len(emails_to(mail, member)) == 2, timeout=60, message="the next message still reaches them")

    # The page's button: a form POST to the same URL.
    done = client.post(link, data=fields)
    assert done.status_code == 200 and "You are unsubscribed" in done.get_data(as_text=True)
    assert "You will no longer get emails from Harbor &amp; Hope Recovery." in done.get_data(as_text=True)
    prefs = client.get(f"/v1/people/{member['person_id']}/preferences", headers=admin).json
    assert prefs["channels"]["email"] is False and prefs["effective_channels"] == ["inapp"]
    assert db.audit_log.find_one({"organization_id": org_id, "resource_id": member["person_id"],
                                  "action": "update"})["details"] == {"via": "unsubscribe_link", "fields": ["channels.email"]}
    assert client.post(link, data=fields).status_code == 200  # again: still unsubscribed, nothing more
    # ChannelUnsubscribed (issue 18: reporting counts unsubscribes) is emitted once, for the change only.
    assert db.outbox.count_documents({"type": "org.recoverynet.notifications.channel.unsubscribed.v1",
                                      "key": member["person_id"]}) == 1

    tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    bad = client.get(tampered)
    assert bad.status_code == 400 and "token" in bad.json["errors"]
    assert client.post(tampered, data=fields).status_code == 400

    third = accepted_match(kafka_bootstrap, org_id, member, leader)
    eventually(lambda: db.inapp_messages.find_one({"person_id": member["person_id"], "source_event_id": third.id}),
               timeout=60)
    eventually(lambda: len(emails_to(mail, leader)) == 3, timeout=60)
    assert len(emails_to(mail, member)) == 2
    assert db.deliveries.count_documents({"source_event_id": third.id, "recipient_id": member["person_id"],
                                          "channel": "email"}) == 0


def _raw_header(raw: bytes, name: str) -> list[str]:
    """The values of a header as the SMTP server received them, unfolded (RFC 5322 2.2.3), nothing decoded."""
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0].decode("ascii")
    unfolded = re.sub(r"\r?\n(?=[ \t])", "", head)
    return [line.split(":", 1)[1].strip() for line in re.split(r"\r?\n", unfolded)
            if line.split(":", 1)[0].lower() == name.lower()]


def test_emails_carry_a_plain_list_unsubscribe_header_and_one_click_post_unsubscribes(
        people, mail, kafka_bootstrap, db, org_id, client, make_token, settings):
    member = people.contact("member")
    leader = people.contact("leader")
    people.consents(member, ["notify:email"])
    publish(kafka_bootstrap, matching.MatchProposed, proposal(org_id, member, leader))
    message = eventually(lambda: emails_to(mail, member), timeout=60)[0]
    url = re.search(r"(http://testserver/v1/unsubscribe\?token=\S+)", message["text"]).group(1)
    assert len(url) > 78  # long enough that the default email policy used to encode it

    raw = (mail.folder / f"{message['id']}.eml").read_bytes()
    [list_unsubscribe] = _raw_header(raw, "List-Unsubscribe")
    assert list_unsubscribe == f"<{url}>" and "=?" not in list_unsubscribe
    parsed = urlsplit(list_unsubscribe[1:-1])
    assert (parsed.scheme, parsed.netloc, parsed.path) == ("http", "testserver", "/v1/unsubscribe")
    token = parse_qs(parsed.query)["token"][0]
    assert model.verify_unsubscribe(settings.link_secret, token)["person_id"] == member["person_id"]
    assert _raw_header(raw, "List-Unsubscribe-Post") == ["List-Unsubscribe=One-Click"]

    # What a mail client does for one-click unsubscribe (RFC 8058): POST the body to the header's URL.
    done = client.post(f"{parsed.path}?{parsed.query}", data=b"List-Unsubscribe=One-Click",
                       content_type="application/x-www-form-urlencoded")
    assert done.status_code == 200 and "You are unsubscribed" in done.get_data(as_text=True)
    assert "from your peer support program" in done.get_data(as_text=True)  # no organization name known here
    prefs = client.get(f"/v1/people/{member['person_id']}/preferences", headers=auth_header(make_token(org_id))).json
    assert prefs["channels"]["email"] is False


def test_erasure_removes_the_contact_and_cancels_waiting_messages(people, kafka_bootstrap, db, org_id):
    member = people.contact("member")
    people.consents(member, ["notify:email"])
    db.deliveries.insert_one({"_id": uuid.uuid4().hex, "key": f"x|{member['person_id']}|email", "organization_id": org_id,
                              "recipient_id": member["person_id"], "channel": "email", "status": "held",
                              "next_attempt_at": utcnow() + timedelta(hours=5), "created_at": utcnow()})
    publish(kafka_bootstrap, intake.MemberErased, {"organization_id": org_id, "member_id": member["person_id"]})
    eventually(lambda: db.contacts.find_one({"_id": member["person_id"]}) is None, timeout=60)
    assert db.consents.find_one({"_id": member["person_id"]}) is None
    assert db.deliveries.find_one({"recipient_id": member["person_id"]})["status"] == "cancelled"
    # A late contact update (the contacts topic lagging behind) does not bring the person back,
    # and later events about them tell nobody.
    publish(kafka_bootstrap, intake.ContactChanged, {**member, "display_name": "Late"})
    late = publish(kafka_bootstrap, intake.MemberRiskFlagged, {
        "organization_id": org_id, "member_id": member["person_id"], "site_id": "site-1", "screening_id": "s",
        "instrument": "PHQ-2", "band": "positive", "reason": "late"})
    eventually(lambda: db.inbox.find_one({"_id": late.id}), timeout=60)
    assert db.contacts.find_one({"_id": member["person_id"]}) is None


def test_a_risk_flag_at_a_site_without_coordinator_is_a_visible_failure(people, kafka_bootstrap, db, org_id):
    publish(kafka_bootstrap, intake.SiteCreated, {"organization_id": org_id, "site_id": "site-nobody", "name": "Riverside",
                                                  "time_zone": "UTC", "virtual_only": False})
    eventually(lambda: db.sites.find_one({"organization_id": org_id, "site_id": "site-nobody"}), timeout=60,
               message="site name stored")
    with EventTap(kafka_bootstrap, [DELIVERIES]) as tap:
        flag = publish(kafka_bootstrap, intake.MemberRiskFlagged, {
            "organization_id": org_id, "member_id": "member-alone", "site_id": "site-nobody", "screening_id": "s",
            "instrument": "DAST-10", "band": "substantial", "reason": "DAST-10 substantial"})
        [failed] = tap.wait_for(lambda e: e.type == NotificationFailed.type and e.data["source_event_id"] == flag.id)
    assert "no coordinator" in failed.data["reason"] and failed.data["recipient_id"] == "coordinators-of:site-nobody"
    assert 'the site "Riverside"' in failed.data["reason"] and "site-nobody" not in failed.data["reason"]
    assert db.deliveries.find_one({"source_event_id": flag.id})["status"] == "failed"
