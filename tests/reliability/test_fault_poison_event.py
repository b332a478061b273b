"""Fault: a poison event. A MatchActivated with a valid envelope and valid data that scheduling's handler
rejects: the member's profile (as published) carries a time zone that does not exist and the match's
site is not known to scheduling yet, so the zone the session times are shown in cannot be built and the
handler raises on every try. (The profile and the match travel on different topics; when the match is
handled first it waits for the profile, and the profile's event is then the one that fails: either is
the poison.) Guarantee: after its retries it goes to ``recoverynet.scheduling.dlq``
(with the reason and the number of tries in its headers), the events behind it keep flowing, and after
the fix (the site's SiteCreated arrives: its zone is used) re-driving the dead letters with
``python -m shared.messaging.consumer redrive`` applies it exactly once; a second re-drive sends nothing again.
"""
import subprocess
import sys
import uuid

import pytest

from shared.events import intake, matching
from shared.events.scheduling import SessionTimesSuggested
from shared.messaging.consumer import RetryPolicy
from shared.testing import eventually
from shared.testing.events import EventTap, publish

DLQ = "recoverynet.scheduling.dlq"
ALL_DAYS = [{"day": d, "start": "08:00", "end": "22:00"} for d in range(7)]


def redrive(platform) -> str:
    done = subprocess.run([sys.executable, "-m", "shared.messaging.consumer", "redrive", "--service", "scheduling",
                           "--bootstrap", platform.bootstrap_servers],
                          capture_output=True, text=True, timeout=120, env=platform.platform.environment("redrive"))
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_fault_poison_event_dead_lettered_others_flow_redrive_applies_once(fault_platform, fault_org):
    org = fault_org("poison event", leaders=1, capacity=5)
    leader_id = org.leaders[0]["id"]
    suffix = uuid.uuid4().hex[:8]
    poisoned_member, later_site, match_id = f"mem_poison{suffix}", f"site_later{suffix}", f"match_poison{suffix}"

    with EventTap(fault_platform.bootstrap_servers, [DLQ, matching.MatchActivated.topic,
                                                     SessionTimesSuggested.topic]) as tap:
        # scheduling learns of a member whose profile names a zone that does not exist (valid as data)
        profile = publish(fault_platform.bootstrap_servers, intake.MemberRegistered, {
            "organization_id": org.id, "member_id": poisoned_member, "site_id": later_site, "status": "active",
            "time_zone": "Mars/Olympus_Mons", "languages": ["en"], "meeting_mode": "either",
            "availability": ALL_DAYS, "consents": []})
        # ... and then of its match, at a site it does not know yet: the poison
        poison = publish(fault_platform.bootstrap_servers, matching.MatchActivated, {
            "organization_id": org.id, "match_id": match_id, "member_id": poisoned_member,
            "leader_id": leader_id, "site_id": later_site})

        # the events behind it keep flowing: a real member is matched, accepted, and scheduling suggests times
        org.register_many(range(3))
        org.wait_matched(timeout=90)
        for match in org.matches():
            leader = fault_platform.client("matching", fault_platform.token(org.id, "leader", leader_id=leader_id))
            leader.post(f"/v1/matches/{match['id']}/accept").expect(200)
        flowing = tap.wait_for(lambda e: e.type.endswith("session.times_suggested.v1")
                               and e.data["organization_id"] == org.id, count=3, timeout=90)
        assert {e.data["match_id"] for e in flowing} == {m["id"] for m in org.matches()}

        # the poison is in the dead-letter topic after its retries, with the reason
        def dead_lettered():
            for record in list(tap.records):
                headers = {k: v.decode() for k, v in record.headers or []}
                if record.topic == DLQ and headers.get("ce_id") in (poison.id, profile.id):
                    return headers
            return None
        headers = eventually(dead_lettered, timeout=60)
        print({k: v[:200] for k, v in headers.items() if k.startswith("x-dlq-") and k != "x-dlq-stacktrace"})
        assert int(headers["x-dlq-attempts"]) == RetryPolicy().attempts, headers
        # the two events travel on different topics: whichever scheduling handles second is the one that
        # fails (the match waits for the member's profile, or the profile completes a waiting match)
        poisoned = poison if headers["ce_id"] == poison.id else profile
        assert headers["x-dlq-original-topic"] == poisoned.topic
        assert headers["x-dlq-consumer-group"] == "recoverynet.scheduling"
        assert "Mars/Olympus_Mons" in headers["x-dlq-reason"], headers
        assert not [e for e in tap.events if e.type.endswith("session.times_suggested.v1")
                    and e.data["match_id"] == match_id], "the poison was not applied"

        # the fix: the site arrives (scheduling shows times in the site's zone)
        publish(fault_platform.bootstrap_servers, intake.SiteCreated, {
            "organization_id": org.id, "site_id": later_site, "name": "Later", "time_zone": "America/Denver",
            "virtual_only": False})
        admin_scheduling = org.scheduling
        site_feed = f"/v1/feeds/{org.id}/sites/{later_site}/meetings.ics"   # public: 404 until the site is known
        eventually(lambda: fault_platform.client("scheduling").get(site_feed).status_code == 200, timeout=60)

        # re-driving applies it, once
        out = redrive(fault_platform)
        assert "re-drove" in out, out
        applied = tap.wait_for(lambda e: e.type.endswith("session.times_suggested.v1") and e.data["match_id"] == match_id,
                               timeout=60)
        assert applied[0].data["time_zone"] == "America/Denver"
        again = redrive(fault_platform)
        assert "re-drove 0" in again, again
        suggestions = eventually(lambda: admin_scheduling.get(f"/v1/matches/{match_id}/suggestions").status_code == 200,
                                 timeout=30)
        assert suggestions
        # nothing more came of it: one SessionTimesSuggested, and the dead letter was not dead-lettered again
        eventually(lambda: tap.matching(lambda e: e.type.endswith("session.times_suggested.v1")
                                        and e.data["match_id"] == match_id), timeout=5)
        assert len({e.id for e in tap.matching(lambda e: e.type.endswith("session.times_suggested.v1")
                                               and e.data["match_id"] == match_id)}) == 1
        assert sum(1 for r in list(tap.records) if r.topic == DLQ
                   and dict(r.headers or []).get("ce_id", b"").decode() in (poison.id, profile.id)) == 1
