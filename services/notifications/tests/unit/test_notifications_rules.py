"""Domain rules of notifications (no I/O): recipients, channels and consent, quiet hours, retries,
languages, signatures."""
from datetime import datetime, timedelta, timezone

import pytest

from shared.events import intake, matching, scheduling

from notifications import model

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


def test_a_match_proposal_tells_the_member_and_the_leader():
    plan = model.plan_for(matching.MatchProposed.type, {"member_id": "m1", "leader_id": "l1"})
    assert plan.template == "match_proposed" and plan.priority == "normal"
    assert [(r.person_id, r.kind) for r in plan.recipients] == [("m1", "member"), ("l1", "leader")]


def test_a_risk_flag_is_urgent_and_goes_to_the_site_coordinators():
    plan = model.plan_for(intake.MemberRiskFlagged.type, {"member_id": "m1", "site_id": "s1"})
    assert plan.priority == "urgent"
    assert plan.recipients[0].person_id == model.COORDINATORS


def test_meeting_changes_go_to_each_registrant_once():
    plan = model.plan_for(scheduling.OccurrenceMoved.type, {"registrant_ids": ["a", "b", "a"]})
    assert [r.person_id for r in plan.recipients] == ["a", "b"]


def test_events_that_tell_nobody_have_no_plan():
    assert model.plan_for(intake.MemberStatusChanged.type, {}) is None


CONTACT = {"email": "a@example.org", "phone": "+15555550100", "channels": []}


def test_a_member_gets_only_consented_channels():
    consents = [{"purpose": "notify:email"}, {"purpose": "matching"}]
    assert model.channels_for(CONTACT, "member", consents, None, NOW) == ["email"]


def test_an_expired_consent_does_not_count():
    consents = [{"purpose": "notify:sms", "expires_at": (NOW - timedelta(days=1)).isoformat()},
                {"purpose": "notify:email", "expires_at": (NOW + timedelta(days=1)).isoformat()}]
    assert model.channels_for(CONTACT, "member", consents, None, NOW) == ["email"]


def test_leaders_are_reached_where_they_have_an_address_unless_they_turn_a_channel_off():
    assert model.channels_for(CONTACT, "leader", [], None, NOW) == ["email", "sms", "inapp"]
    prefs = {"channels": {"sms": False}}
    assert model.channels_for(CONTACT, "leader", [], prefs, NOW) == ["email", "inapp"]
    assert model.channels_for({"email": None, "phone": None}, "leader", [], None, NOW) == ["inapp"]


def test_intake_channel_choice_applies_until_preferences_say_otherwise():
    contact = {**CONTACT, "channels": ["sms"]}
    assert model.channels_for(contact, "leader", [], None, NOW) == ["sms"]
    assert model.channels_for(contact, "leader", [], {"channels": {"email": True}}, NOW) == ["email", "sms"]


def test_no_contact_no_channel():
    assert model.channels_for(None, "leader", [], None, NOW) == []


@pytest.mark.parametrize("local_now, quiet, expected_local_end", [
    ("2026-01-15T23:30", {"start": "22:00", "end": "07:00"}, "2026-01-16T07:00"),   # evening: next morning
    ("2026-01-16T03:00", {"start": "22:00", "end": "07:00"}, "2026-01-16T07:00"),   # night: this morning
    ("2026-01-15T12:00", {"start": "22:00", "end": "07:00"}, None),                 # daytime: not quiet
    ("2026-01-15T13:30", {"start": "13:00", "end": "14:00"}, "2026-01-15T14:00"),   # same-day window
])
def test_quiet_hours_end_in_the_persons_zone(local_now, quiet, expected_local_end):
    tz = model.zone("America/Chicago")
    now = datetime.fromisoformat(local_now).replace(tzinfo=tz).astimezone(timezone.utc)
    until = model.quiet_until(now, "America/Chicago", quiet)
    if expected_local_end is None:
        assert until is None
    else:
        assert until == datetime.fromisoformat(expected_local_end).replace(tzinfo=tz).astimezone(timezone.utc)


def test_urgent_ignores_quiet_hours_and_low_priority_waits_for_the_digest():
    night = datetime(2026, 1, 16, 9, 0, tzinfo=timezone.utc)  # 03:00 in Chicago
    prefs = {"quiet_hours": {"start": "22:00", "end": "07:00"}, "digest": True}
    assert model.when_to_send("urgent", night, "America/Chicago", prefs) == ("pending", night)
    assert model.when_to_send("low", night, "America/Chicago", prefs)[0] == "digest"
    status, at = model.when_to_send("normal", night, "America/Chicago", prefs)
    assert status == "held" and at == datetime(2026, 1, 16, 13, 0, tzinfo=timezone.utc)


def test_digest_is_due_once_a_day_after_the_local_hour():
    morning = datetime(2026, 1, 16, 15, 0, tzinfo=timezone.utc)  # 09:00 Chicago
    assert model.digest_due(morning, "America/Chicago", 8, None) == "2026-01-16"
    assert model.digest_due(morning, "America/Chicago", 8, "2026-01-16") is None
    assert model.digest_due(morning, "America/Chicago", 10, None) is None


def test_failures_back_off_then_give_up():
    assert model.after_failure(1, 3, NOW, 10, 2) == ("pending", NOW + timedelta(seconds=10))
    assert model.after_failure(2, 3, NOW, 10, 2) == ("pending", NOW + timedelta(seconds=20))
    assert model.after_failure(3, 3, NOW, 10, 2) == ("failed", None)


def test_language_falls_back_to_the_base_language_then_english():
    assert model.language_candidates("es-MX") == ["es-mx", "es", "en"]
    assert model.language_candidates(None) == ["en"]


def test_unsubscribe_tokens_are_signed():
    token = model.sign_unsubscribe("s" * 40, "org1", "p1", "email")
    assert model.verify_unsubscribe("s" * 40, token) == {"organization_id": "org1", "person_id": "p1", "channel": "email"}
    with pytest.raises(model.BadToken):
        model.verify_unsubscribe("t" * 40, token)
    payload, _, mac = token.partition(".")
    forged = model.sign_unsubscribe("s" * 40, "org2", "p1", "email").partition(".")[0] + "." + mac
    with pytest.raises(model.BadToken):
        model.verify_unsubscribe("s" * 40, forged)
    with pytest.raises(model.BadToken):
        model.verify_unsubscribe("s" * 40, "garbage")


def test_webhook_signatures_cover_timestamp_and_body():
    ts = str(int(NOW.timestamp()))
    sig = model.webhook_signature("secret", ts, b'{"a":1}')
    assert sig.startswith("sha256=")
    assert model.verify_webhook_signature("secret", ts, b'{"a":1}', sig, now=NOW)
    assert not model.verify_webhook_signature("secret", ts, b'{"a":2}', sig, now=NOW)
    assert not model.verify_webhook_signature("secret", ts, b'{"a":1}', sig, now=NOW + timedelta(hours=1))


def test_every_subscribed_event_that_tells_someone_has_a_plan_and_templates():
    from notifications import handlers, templates
    from notifications.subscriptions import SUBSCRIPTIONS

    notifying = {decl.type for decl, handler in SUBSCRIPTIONS.items()
                 if handler in (handlers.on_notifiable_event, handlers.on_meeting_snapshot)}
    assert notifying - {scheduling.MeetingCreated.type} == set(model.NOTIFIABLE_TYPES)
    assert {template for template, _, _ in model.PLANS.values()} <= set(templates.KINDS)
