"""The member role in notifications: their own inbox and preferences (SMS off, quiet hours), their
export; another member's answers 404, staff routes 403."""
from __future__ import annotations

import uuid

import pytest

from shared.events import intake, matching
from shared.messaging.envelope import new_event
from shared.mongo import connect
from shared.testing import eventually
from shared.testing.commands import WRITES, SentCommands
from shared.testing.fixtures import auth_header

from notifications import handlers
from notifications.repository import Repository

pytestmark = pytest.mark.timeout(120)


def apply(repo, declaration, data, handler):
    evt = new_event(declaration, data, source="/recoverynet/test")
    repo.transaction(lambda uow: handler(evt, uow))
    return evt


def member(repo, org, purposes=("notify:inapp", "notify:sms", "notify:email")):
    person_id = f"member-{uuid.uuid4().hex[:10]}"
    data = {"organization_id": org, "person_id": person_id, "person_kind": "member", "display_name": "Robin",
            "email": f"{person_id}@example.org", "phone": f"+1617555{uuid.uuid4().int % 10000:04d}",
            "preferred_language": "en", "time_zone": "America/New_York", "site_ids": ["site-1"],
            "channels": ["inapp", "sms", "email"]}
    apply(repo, intake.ContactChanged, data, handlers.on_contact_changed)
    apply(repo, intake.MemberConsentChanged, {
        "organization_id": org, "member_id": person_id, "site_id": "site-1", "purpose": purposes[0],
        "granted": True, "consents": [{"purpose": p} for p in purposes]}, handlers.on_member_snapshot)
    return data


def accepted(repo, org, member_id, leader_id):
    return apply(repo, matching.MatchAccepted, {
        "organization_id": org, "match_id": f"m-{uuid.uuid4().hex[:6]}", "member_id": member_id,
        "leader_id": leader_id, "site_id": "site-1", "accepted_by_role": "member"}, handlers.on_notifiable_event)


@pytest.fixture(scope="module")
def deliverer(settings, repo):
    return handlers.Deliverer(settings, repo)


def test_member_reads_their_inbox_turns_sms_off_and_exports_only_their_own(client, repo, db, deliverer, org_id,
                                                                           make_token):
    me, other = member(repo, org_id), member(repo, org_id)
    events = [accepted(repo, org_id, p["person_id"], "leader-1") for p in (me, other)]
    eventually(lambda: deliverer.run_once() is not None and db.deliveries.count_documents(
        {"source_event_id": {"$in": [e.id for e in events]}, "status": {"$in": ["pending", "sending"]}}) == 0,
        timeout=30)
    mine = auth_header(make_token(org_id, "member", member_id=me["person_id"]))
    base, theirs = f"/v1/people/{me['person_id']}", f"/v1/people/{other['person_id']}"

    inbox = client.get(f"{base}/inbox", headers=mine)
    assert inbox.status_code == 200 and inbox.json["total"] == 1
    message_id = inbox.json["items"][0]["id"]
    assert client.post(f"{base}/inbox/{message_id}/read", headers=mine).json["read_at"]
    # Another member's inbox and preferences: as if they did not exist; staff routes: refused.
    assert client.get(f"{theirs}/inbox", headers=mine).status_code == 404
    assert client.post(f"{theirs}/inbox/{message_id}/read", headers=mine).status_code == 404
    assert client.get(f"{theirs}/preferences", headers=mine).status_code == 404
    assert client.put(f"{theirs}/preferences", json={"channels": {"sms": False}},
                      headers={**mine, "If-Match": '"x"'}).status_code == 404
    for path in ("/v1/deliveries", "/v1/webhooks", "/v1/templates", "/v1/sites/site-1/coordinators"):
        assert client.get(path, headers=mine).status_code in (403, 404), path

    prefs = client.get(f"{base}/preferences", headers=mine)
    assert prefs.status_code == 200 and "sms" in prefs.json["effective_channels"]
    changed = client.put(f"{base}/preferences", headers={**mine, "If-Match": prefs.headers["ETag"]},
                         json={"channels": {"sms": False}, "quiet_hours": {"start": "21:00", "end": "08:00"}})
    assert changed.status_code == 200, changed.json
    assert changed.json["channels"] == {"sms": False} and "sms" not in changed.json["effective_channels"]
    assert changed.json["quiet_hours"] == {"start": "21:00", "end": "08:00"}

    got = client.get("/v1/me/export", headers=mine)
    assert got.status_code == 200, got.json
    export = got.json
    assert export["service"] == "notifications" and export["member_id"] == me["person_id"]
    assert export["contact"]["person_id"] == me["person_id"] and export["contact"]["email"] == me["email"]
    assert export["preferences"]["channels"] == {"sms": False}
    assert sorted(c["purpose"] for c in export["consents"]) == ["notify:email", "notify:inapp", "notify:sms"]
    assert export["deliveries"] and {d["source_event_id"] for d in export["deliveries"]} == {events[0].id}
    assert [m["id"] for m in export["inbox"]] == [message_id] and export["inbox"][0]["title"]
    text = str(export)
    assert other["person_id"] not in text and other["email"] not in text and other["phone"] not in text
    assert db.audit_log.find_one({"organization_id": org_id, "resource_id": me["person_id"], "action": "export"})
    # Staff have no /me export; another organization's member token with the same id finds nothing.
    assert client.get("/v1/me/export", headers=auth_header(make_token(org_id))).status_code == 403
    stranger = auth_header(make_token("org-elsewhere", "member", member_id=me["person_id"]))
    assert client.get(f"{base}/inbox", headers=stranger).status_code == 404
    assert client.get("/v1/me/export", headers=stranger).json["contact"] is None



def test_a_consent_event_repeating_the_consents_held_writes_nothing(settings, db, org_id, repo):
    """A registration's consent events repeat the consents its snapshot brought: applied again they write
    nothing (nor look for deliveries waiting for them); a real change is saved."""
    person = member(repo, org_id)
    same = {"organization_id": org_id, "member_id": person["person_id"], "site_id": "site-1",
            "purpose": "notify:inapp", "granted": True,
            "consents": [{"purpose": p} for p in ("notify:inapp", "notify:sms", "notify:email")]}
    writes = SentCommands(*WRITES)
    client = connect(settings.platform.mongo_uri, event_listeners=[writes])
    try:
        listening = Repository(client, client[db.name])
        apply(listening, intake.MemberConsentChanged, same, handlers.on_member_snapshot)
        assert writes.collections == []
        fewer = {**same, "purpose": "notify:sms", "granted": False,
                 "consents": [{"purpose": p} for p in ("notify:inapp", "notify:email")]}
        apply(listening, intake.MemberConsentChanged, fewer, handlers.on_member_snapshot)
        assert "consents" in writes.collections
    finally:
        client.close()
    assert [c["purpose"] for c in db.consents.find_one({"_id": person["person_id"]})["consents"]] == \
        ["notify:inapp", "notify:email"]



def test_a_batch_of_member_events_reads_erasures_and_consents_once_and_an_erasure_in_it_holds(settings, db, org_id):
    """As the consumer applies a batch: whether each person is erased and their consents are read for the whole
    batch at once, not per event; a person erased earlier in the batch stays erased for its later events."""
    people = [f"member-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    consents = [{"purpose": "notify:email"}]

    def evt(declaration, **data):
        return new_event(declaration, {"organization_id": org_id, **data}, source="/recoverynet/test")

    batch = [evt(intake.MemberConsentChanged, member_id=p, site_id="site-1", purpose="notify:email", granted=True, consents=consents)
             for p in people]
    batch += [evt(intake.MemberConsentChanged, member_id=p, site_id="site-1", purpose="notify:email", granted=True, consents=consents)
              for p in people]  # the same again: nothing to write
    batch.append(evt(intake.MemberErased, member_id=people[0], site_id="site-1"))
    batch.append(evt(intake.ContactChanged, person_id=people[0], person_kind="member", display_name="Robin",
                     email="robin@example.org", preferred_language="en", time_zone="UTC", site_ids=["site-1"],
                     channels=["email"]))
    handler = {intake.MemberConsentChanged.type: handlers.on_member_snapshot,
               intake.MemberErased.type: handlers.on_member_erased,
               intake.ContactChanged.type: handlers.on_contact_changed}
    finds = SentCommands("find")
    client = connect(settings.platform.mongo_uri, event_listeners=[finds])
    try:
        def work(uow):
            handlers.on_member_snapshot.prepare([e for e in batch if e.type != intake.MemberErased.type], uow)
            for e in batch:
                handler[e.type](e, uow)
        Repository(client, client[db.name]).transaction(work)
    finally:
        client.close()
    assert (finds.collections.count("erased"), finds.collections.count("consents")) == (1, 1)
    assert db.contacts.find_one({"_id": people[0]}) is None and db.consents.find_one({"_id": people[0]}) is None
    assert [db.consents.find_one({"_id": p})["consents"] for p in people[1:]] == [batch[1].data["consents"]] * 2
