"""The delivery job at fan-out (issue 20): batches claimed under one lease, outcomes recorded in one
transaction, one SMTP session for many messages, several senders sharing the work without doubling a
delivery, and a sender that dies mid-batch doubling nothing. Against the real embedded database and our
mail catcher (a real SMTP server); events are applied by the service's own handlers in real transactions."""
from __future__ import annotations

import json
import threading
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from shared.devstack.servers import TcpProxy
from shared.events import intake, matching, scheduling
from shared.events.notifications import NotificationDelivered, NotificationFailed
from shared.messaging.envelope import new_event
from shared.mongo import connect
from shared.testing import eventually
from shared.testing.commands import SentCommands

from notifications import handlers
from notifications.channels import Channels
from notifications.repository import Repository

pytestmark = pytest.mark.timeout(300)


def apply(repo, declaration, data, handler):
    evt = new_event(declaration, data, source="/recoverynet/test")
    repo.transaction(lambda uow: handler(evt, uow))
    return evt


def person(repo, org, kind, *, email=None, purposes=("notify:email",), person_id=None):
    person_id = person_id or f"{kind}-{uuid.uuid4().hex[:10]}"
    data = {"organization_id": org, "person_id": person_id, "person_kind": kind, "display_name": "Sam",
            "email": email or f"{person_id}@example.org", "phone": None, "preferred_language": "en",
            "time_zone": "UTC", "site_ids": ["site-1"], "channels": []}
    apply(repo, intake.ContactChanged, data, handlers.on_contact_changed)
    if kind == "member":
        apply(repo, intake.MemberConsentChanged, {
            "organization_id": org, "member_id": person_id, "site_id": "site-1", "purpose": "notify:email",
            "granted": bool(purposes), "consents": [{"purpose": p} for p in purposes]}, handlers.on_member_snapshot)
    return data


def cancelled_meeting(repo, org, members):
    """One event that tells every member (an occurrence cancelled): one email delivery each."""
    return apply(repo, scheduling.OccurrenceCancelled, {
        "organization_id": org, "meeting_id": f"mt-{uuid.uuid4().hex[:6]}", "site_id": "site-1",
        "occurrence_id": f"occ-{uuid.uuid4().hex[:6]}", "name": "Evening Hope", "time_zone": "UTC",
        "original_start": "2026-12-07T18:00:00Z", "registrant_ids": [m["person_id"] for m in members]},
        handlers.on_notifiable_event)


def outbox_events(db, declaration, source_event_id) -> list[dict]:
    found = [json.loads(doc["value"]) for doc in db.outbox.find({"type": declaration.type})]
    return [data for data in found if data["source_event_id"] == source_event_id]


class CountingRepository(Repository):
    """The real repository, counting the transactions the delivery job opens."""

    transactions = 0

    def transaction(self, work):
        type(self).transactions += 1
        return super().transaction(work)


class WorkerDied(BaseException):
    """Stands in for the process being killed: nothing of ours runs after it (no except clause takes it)."""


def test_a_batch_is_recorded_in_one_transaction_and_each_delivery_gets_its_own_outcome(settings, db, org_id):
    repo = CountingRepository(db.client, db)
    ok = [person(repo, org_id, "member") for _ in range(3)]
    malformed = person(repo, org_id, "member", email="not-an-address")
    no_consent = person(repo, org_id, "member")
    leader = person(repo, org_id, "leader")  # a match accepted: email and in-app to the leader
    evt = cancelled_meeting(repo, org_id, [*ok, malformed, no_consent])
    match = apply(repo, matching.MatchAccepted, {
        "organization_id": org_id, "match_id": f"m-{uuid.uuid4().hex[:6]}", "member_id": ok[0]["person_id"],
        "leader_id": leader["person_id"], "site_id": "site-1", "accepted_by_role": "member"},
        handlers.on_notifiable_event)
    # the member's consent is withdrawn after the delivery was planned: the send-time check cancels it
    apply(repo, intake.MemberConsentChanged, {
        "organization_id": org_id, "member_id": no_consent["person_id"], "site_id": "site-1",
        "purpose": "notify:email", "granted": False, "consents": []}, handlers.on_member_snapshot)
    mine = {"source_event_id": {"$in": [evt.id, match.id]}}
    planned = db.deliveries.count_documents(mine)
    assert planned >= 7

    CountingRepository.transactions = 0
    done = handlers.Deliverer(replace(settings, delivery_senders=1, delivery_batch=50), repo).run_once()
    assert done == planned
    assert CountingRepository.transactions == 1  # every outcome of the batch, with its events, together

    def state(who, event=evt, channel="email"):
        return db.deliveries.find_one({"source_event_id": event.id, "recipient_id": who["person_id"],
                                       "channel": channel})
    for member in ok:
        doc = state(member)
        assert (doc["status"], doc["attempts"], doc["last_error"]) == ("delivered", 1, None)
        assert doc["delivered_at"] and doc["sent_at"] and "lease_id" not in doc and "lease_until" not in doc
    failed = state(malformed)
    assert (failed["status"], failed["attempts"]) == ("failed", 1) and "not valid" in failed["last_error"]
    cancelled = state(no_consent)
    assert cancelled["status"] == "cancelled" and "consent" in cancelled["last_error"]
    assert "sent_at" not in cancelled and "sent_at" not in failed
    assert state(leader, match, "email")["status"] == "delivered"
    assert state(leader, match, "inapp")["status"] == "delivered"
    assert db.inapp_messages.count_documents({"person_id": leader["person_id"], "source_event_id": match.id}) == 1
    # one event per settled outcome (none for a cancelled one), each naming its own delivery
    delivered = outbox_events(db, NotificationDelivered, evt.id)
    assert sorted(e["recipient_id"] for e in delivered) == sorted(m["person_id"] for m in ok)
    assert {e["delivery_id"] for e in delivered} == {state(m)["_id"] for m in ok}
    [failure] = outbox_events(db, NotificationFailed, evt.id)
    assert failure["delivery_id"] == failed["_id"] and "not valid" in failure["reason"]
    match_delivered = db.deliveries.count_documents({"source_event_id": match.id, "status": "delivered"})
    assert match_delivered >= 2 and len(outbox_events(db, NotificationDelivered, match.id)) == match_delivered


def test_one_smtp_session_carries_many_messages_and_a_dropped_one_is_reopened(settings, repo, db, mail, org_id):
    proxy = TcpProxy(mail.smtp_port)  # counts the SMTP connections made through it
    try:
        sending = replace(settings, smtp_port=proxy.port, delivery_senders=1, delivery_batch=50,
                          smtp_messages_per_connection=1000)
        deliverer = handlers.Deliverer(sending, repo)
        first = [person(repo, org_id, "member") for _ in range(12)]
        evt = cancelled_meeting(repo, org_id, first)
        assert deliverer.run_once() == 12
        assert proxy.accepted == 1  # twelve messages, one session
        # The server drops the idle connection between two runs; the next message opens a new one and
        # no delivery pays for it with a failed try.
        proxy.cut()
        proxy.restore()
        second = [person(repo, org_id, "member") for _ in range(5)]
        later = cancelled_meeting(repo, org_id, second)
        with deliverer.channels.email.connection_reuse():  # keep the session across the two batches
            assert deliverer.run_once() == 5
            assert proxy.accepted == 2
            third = [person(repo, org_id, "member") for _ in range(3)]
            last = cancelled_meeting(repo, org_id, third)
            assert deliverer.run_once() == 3
            assert proxy.accepted == 2  # the reopened session is kept between batches too
        for event, members in ((evt, first), (later, second), (last, third)):
            docs = list(db.deliveries.find({"source_event_id": event.id}))
            assert [d["status"] for d in docs] == ["delivered"] * len(members)
            assert all(d["attempts"] == 1 for d in docs)
        for member in first + second + third:
            [message] = mail.messages(to=member["email"])
            assert message["list_unsubscribe"].startswith("<http://testserver/v1/unsubscribe")
    finally:
        proxy.close()


def test_senders_and_worker_copies_share_a_fan_out_without_doubling_a_delivery(settings, repo, db, mail, org_id):
    members = [person(repo, org_id, "member") for _ in range(30)]
    evt = cancelled_meeting(repo, org_id, members)
    proxy = TcpProxy(mail.smtp_port)
    try:
        sharing = replace(settings, smtp_port=proxy.port, delivery_senders=3, delivery_batch=5)
        copies = [handlers.Deliverer(sharing, repo) for _ in range(2)]  # two worker copies, 3 senders each
        totals = []
        threads = [threading.Thread(target=lambda c=c: totals.append(c.run_once(budget_seconds=60))) for c in copies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        eventually(lambda: copies[0].run_once() is not None and db.deliveries.count_documents(
            {"source_event_id": evt.id, "status": {"$ne": "delivered"}}) == 0, timeout=60)
        assert proxy.accepted >= 2  # more than one sender sent (each has its own SMTP session)
    finally:
        proxy.close()
    docs = list(db.deliveries.find({"source_event_id": evt.id}))
    assert len(docs) == 30 and all(d["attempts"] == 1 and not d.get("takeovers") for d in docs)
    for member in members:
        [message] = mail.messages(to=member["email"])  # exactly one each
        [doc] = [d for d in docs if d["recipient_id"] == member["person_id"]]
        assert message["message_id"] == f"<{doc['_id']}@recoverynet.local>"
    assert len(outbox_events(db, NotificationDelivered, evt.id)) == 30


def test_a_sender_that_dies_mid_batch_doubles_no_email_and_loses_none(settings, repo, db, mail, org_id):
    members = [person(repo, org_id, "member") for _ in range(6)]
    evt = cancelled_meeting(repo, org_id, members)
    one_sender = replace(settings, delivery_senders=1, delivery_batch=50)
    channels = Channels(one_sender)
    real_send, sent = channels.email.send, []

    def send_then_die(msg):
        if len(sent) == 3:
            raise WorkerDied()  # killed after the server accepted three messages, before recording any
        real_send(msg)
        sent.append(msg["To"])
    channels.email.send = send_then_die
    with pytest.raises(WorkerDied):
        handlers.Deliverer(one_sender, repo, channels).run_once()
    mine = {"source_event_id": evt.id}
    assert db.deliveries.count_documents({**mine, "status": "sending"}) == 6  # all held by the dead lease
    eventually(lambda: db.deliveries.count_documents({**mine, "sent_at": {"$ne": None}}) == 3, timeout=30,
               message="the three accepted messages marked sent")
    # The dead sender's lease lapses (a claim sets the next attempt to the lease's end too); another sender
    # takes the batch over.
    lapsed = datetime.now(timezone.utc) - timedelta(seconds=1)
    db.deliveries.update_many({**mine, "status": "sending"}, {"$set": {"lease_until": lapsed, "next_attempt_at": lapsed}})
    assert handlers.Deliverer(one_sender, repo).run_once() == 6
    for member in members:
        assert len(mail.messages(to=member["email"])) == 1, member  # the three sent are not sent again
    docs = list(db.deliveries.find(mine))
    assert [d["status"] for d in docs] == ["delivered"] * 6 and all(d["takeovers"] == 1 for d in docs)
    assert len(outbox_events(db, NotificationDelivered, evt.id)) == 6


def test_a_delivery_waiting_for_its_recipient_goes_when_they_arrive_not_after_the_back_off(settings, repo, db, mail,
                                                                                           org_id):
    """The event that tells a member can reach notifications before the member's contact and consents (they
    come on other topics): the try fails as "not known yet", and the delivery is due again as soon as the
    contact and consents are applied, not after the channel's back-off (30 s by default: the ~31 s
    request -> email outliers at 10 registrations a second)."""
    patient = replace(settings, delivery_senders=1, retry_base_seconds=3600, recipient_wait_seconds=3600,
                      recipient_wait_limit_seconds=3600)
    deliverer = handlers.Deliverer(patient, repo)
    newcomer = f"member-{uuid.uuid4().hex[:10]}"
    evt = cancelled_meeting(repo, org_id, [{"person_id": newcomer}])
    mine = {"source_event_id": evt.id}
    assert deliverer.run_once() >= 1
    waiting = list(db.deliveries.find(mine))
    assert waiting and all((d["status"], d["attempts"], d["person_waits"], d["waiting_for_person"]) ==
                           ("pending", 0, 1, True) for d in waiting)   # no channel tried: no try counted
    assert "(yet)" in waiting[0]["last_error"]
    assert deliverer.run_once() == 0   # an hour's wait: nothing is due

    member = person(repo, org_id, "member", person_id=newcomer)   # contact, then consents (notify:email)
    assert deliverer.run_once() == len(waiting)
    email = db.deliveries.find_one({**mine, "channel": "email"})
    assert (email["status"], email["attempts"], email["last_error"], email["waiting_for_person"]) == \
        ("delivered", 1, None, False)
    assert all(d["status"] in ("delivered", "cancelled") for d in db.deliveries.find(mine))  # per the consents
    assert len(mail.messages(to=member["email"])) == 1


def test_a_recipient_who_never_arrives_is_waited_for_with_a_doubling_wait_then_counted_tries(settings, repo, db,
                                                                                            org_id):
    """Waiting for a person counts no try, and each wait is twice the last; once the delivery is older than
    the limit, the tries count with the channel's back-off (and end in 'failed' when they run out)."""
    deliverer = handlers.Deliverer(replace(settings, delivery_senders=1, recipient_wait_seconds=60,
                                           recipient_wait_limit_seconds=3600), repo)
    evt = cancelled_meeting(repo, org_id, [{"person_id": f"member-{uuid.uuid4().hex[:10]}"}])
    mine = {"source_event_id": evt.id, "channel": "email"}
    waits = []
    for _ in range(3):
        deliverer.run_once()
        doc = db.deliveries.find_one(mine)
        waits.append(round((doc["next_attempt_at"] - doc["updated_at"]).total_seconds()))
        db.deliveries.update_one(mine, {"$set": {"next_attempt_at": doc["updated_at"]}})   # its time came
    assert (doc["attempts"], doc["person_waits"]) == (0, 3) and waits == [60, 120, 240]   # up to 5 minutes
    late = replace(settings, delivery_senders=1, recipient_wait_limit_seconds=0, retry_base_seconds=3600)
    handlers.Deliverer(late, repo).run_once()
    doc = db.deliveries.find_one(mine)
    assert (doc["status"], doc["attempts"], doc["waiting_for_person"]) == ("pending", 1, True)
    assert round((doc["next_attempt_at"] - doc["updated_at"]).total_seconds()) == 3600


def test_a_recipient_who_arrives_while_their_try_is_being_recorded_is_not_left_to_wait(settings, repo, db, mail,
                                                                                     org_id):
    """The contact arrives after the batch read it (unknown) and before the batch's outcome is recorded: the
    contact's event found the delivery 'sending' and could not wake it, so the recording sees them and
    makes the delivery due at once."""
    patient = replace(settings, delivery_senders=1, retry_base_seconds=3600, recipient_wait_seconds=3600,
                      recipient_wait_limit_seconds=3600)
    deliverer = handlers.Deliverer(patient, repo)
    newcomer = f"member-{uuid.uuid4().hex[:10]}"
    evt = cancelled_meeting(repo, org_id, [{"person_id": newcomer}])
    record = deliverer._record

    def arrive_then_record(outcomes):   # the first batch only
        deliverer._record = record
        person(repo, org_id, "member", person_id=newcomer)
        record(outcomes)
    deliverer._record = arrive_then_record
    deliverer.run_once()   # the unknown try, then (due at once, not in an hour) the second one
    email = db.deliveries.find_one({"source_event_id": evt.id, "channel": "email"})
    assert (email["status"], email["attempts"], email["waiting_for_person"]) == ("delivered", 1, False)
    assert len(mail.messages(to=f"{newcomer}@example.org")) == 1


def test_a_delivery_that_failed_for_its_channel_is_not_woken_by_the_recipients_events(settings, repo, db, org_id):
    """Only a delivery waiting for its person is made due by their events; one that failed at the channel
    keeps its back-off."""
    patient = replace(settings, delivery_senders=1, retry_base_seconds=3600, smtp_port=1)  # nothing listens
    member = person(repo, org_id, "member")
    evt = cancelled_meeting(repo, org_id, [member])
    handlers.Deliverer(patient, repo).run_once()
    failed = db.deliveries.find_one({"source_event_id": evt.id, "channel": "email"})
    assert (failed["status"], failed["attempts"], failed["waiting_for_person"]) == ("pending", 1, False)
    person(repo, org_id, "member", person_id=member["person_id"])   # the same person's events again
    again = db.deliveries.find_one({"_id": failed["_id"]})
    assert again["next_attempt_at"] == failed["next_attempt_at"]


def statements_to_deliveries(writes: SentCommands) -> list[int]:
    """The number of statements of each write to the delivery log."""
    return [len(command.get("updates") or command.get("documents") or []) for name, command in writes.sent
            if command[name] == "deliveries"]


# The tests above drive the delivery job by hand; from here on the module's worker runs its own.

def test_a_batchs_deliveries_are_recorded_in_one_write_and_each_only_once(settings, db, org_id):
    """Reminders applied in one transaction, as the consumer applies a batch: one write records every delivery
    they plan (not one per recipient); applied again, they record nothing twice (the idempotency key)."""
    members = [person(Repository(db.client, db), org_id, "member") for _ in range(8)]
    events = [new_event(scheduling.ReminderDue, {
        "organization_id": org_id, "reminder_id": f"r-{uuid.uuid4().hex[:8]}", "person_id": m["person_id"],
        "person_kind": "member", "subject_kind": "occurrence", "meeting_id": "mt-w", "occurrence_id": "occ-w",
        "session_id": None, "site_id": "site-1", "title": "Evening Hope", "starts_at": "2026-12-07T18:00:00Z",
        "time_zone": "UTC", "offset_minutes": 60}, source="/recoverynet/test") for m in members]

    def batch(uow):
        handlers.on_notifiable_event.prepare(events, uow)
        for evt in events:
            handlers.on_notifiable_event(evt, uow)

    writes = SentCommands("update", "insert")
    client = connect(settings.platform.mongo_uri, event_listeners=[writes])
    try:
        repo = Repository(client, client[db.name])
        repo.transaction(batch)
        assert statements_to_deliveries(writes) == [len(members)]
        repo.transaction(batch)
    finally:
        client.close()
    recorded = list(db.deliveries.find({"source_event_id": {"$in": [e.id for e in events]}}))
    assert sorted(d["recipient_id"] for d in recorded) == sorted(m["person_id"] for m in members)
    assert {d["channel"] for d in recorded} == {"email"} and {d["status"] for d in recorded} == {"pending"}


def test_a_member_erased_later_in_the_batch_gets_none_of_its_messages(repo, db, org_id):
    """A reminder and the member's erasure in one batch: the delivery gathered for the batch is written before
    the erasure runs, so the erasure cancels it (as when each event had its own transaction)."""
    member = person(repo, org_id, "member")
    reminder = new_event(scheduling.ReminderDue, {
        "organization_id": org_id, "reminder_id": f"r-{uuid.uuid4().hex[:8]}", "person_id": member["person_id"],
        "person_kind": "member", "subject_kind": "occurrence", "meeting_id": "mt-e", "occurrence_id": "occ-e",
        "session_id": None, "site_id": "site-1", "title": "Evening Hope", "starts_at": "2026-12-07T18:00:00Z",
        "time_zone": "UTC", "offset_minutes": 60}, source="/recoverynet/test")
    erased = new_event(intake.MemberErased, {"organization_id": org_id, "member_id": member["person_id"],
                                             "site_id": "site-1"}, source="/recoverynet/test")

    def batch(uow):
        handlers.on_notifiable_event.prepare([reminder], uow)
        handlers.on_notifiable_event(reminder, uow)
        handlers.on_member_erased(erased, uow)

    repo.transaction(batch)
    [delivery] = db.deliveries.find({"source_event_id": reminder.id})
    assert (delivery["status"], delivery["last_error"]) == ("cancelled", "person erased")


def test_the_consumer_reads_a_batchs_recipients_at_once_and_plans_each_as_alone(kafka_bootstrap, repo, db, worker,
                                                                               org_id):
    """ReminderDue events through the broker to the worker: the consumer reads every recipient's contact,
    consents and preferences for its batch at once (``prepare_recipients``); each person's deliveries are
    the ones the rules give for what is known of them, as when read one by one."""
    from kafka import KafkaProducer

    from notifications import model
    from shared.messaging.envelope import encode_value, record_headers
    from shared.messaging.kafka import close_producer

    email_only = [person(repo, org_id, "member") for _ in range(6)]
    with_sms = [person(repo, org_id, "member", purposes=("notify:email", "notify:sms")) for _ in range(2)]
    for member in with_sms:
        db.contacts.update_one({"_id": member["person_id"]}, {"$set": {"phone": "+15555550100"}})
    none_given = [person(repo, org_id, "member", purposes=())]
    leader = person(repo, org_id, "leader")
    stranger = {"person_id": f"member-{uuid.uuid4().hex[:10]}"}  # not in the directory yet
    everyone = [(m, "member") for m in email_only + with_sms + none_given] + [(leader, "leader"), (stranger, "member")]
    events = [new_event(scheduling.ReminderDue, {
        "organization_id": org_id, "reminder_id": f"r-{uuid.uuid4().hex[:8]}", "person_id": p["person_id"],
        "person_kind": kind, "subject_kind": "occurrence", "meeting_id": "mt-r", "occurrence_id": "occ-r",
        "session_id": None, "site_id": "site-1", "title": "Evening Hope", "starts_at": "2026-12-07T18:00:00Z",
        "time_zone": "UTC", "offset_minutes": 60}, source="/recoverynet/test") for p, kind in everyone]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","), linger_ms=50)
    try:
        for evt in events:
            producer.send(evt.topic, key=evt.key.encode(), value=encode_value(evt), headers=record_headers(evt))
        producer.flush()
    finally:
        close_producer(producer)
    ids = [evt.id for evt in events]
    eventually(lambda: db.inbox.count_documents({"_id": {"$in": ids}}) == len(ids), timeout=90,
               message="every reminder applied")
    now = datetime.now(timezone.utc)
    for (p, kind), evt in zip(everyone, events):
        planned = sorted(d["channel"] for d in db.deliveries.find({"source_event_id": evt.id}))
        contact, consents, prefs = repo.reader().person_state(org_id, p["person_id"])
        expected = (sorted(model.CHANNELS) if contact is None
                    else sorted(model.channels_for(contact, kind, consents, prefs, now)))
        assert planned == expected, (p["person_id"], kind, planned, expected)
    assert sorted(d["channel"] for d in db.deliveries.find({"source_event_id": events[6].id})) == ["email", "sms"]
    assert db.deliveries.count_documents({"source_event_id": events[0].id}) == 1

