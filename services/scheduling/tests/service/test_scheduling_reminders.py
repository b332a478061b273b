"""Reminders: each ReminderDue exactly once per person, occurrence (or session) and offset, with two
workers running the reminder job at the same time against the same database."""
import threading
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from shared.events.matching import MatchActivated
from shared.events.scheduling import ReminderDue, SessionTimesSuggested

pytestmark = pytest.mark.timeout(240)

NY = ZoneInfo("America/New_York")
UTC = timezone.utc


@pytest.fixture(scope="module")
def settings(platform_settings):
    """This module's workers look for due reminders twice a second."""
    from scheduling.config import Settings
    from shared.messaging.kafka import dead_letter_topic, ensure_topics
    from shared.testing.service_fixtures import indexed_platform

    platform = indexed_platform(platform_settings, "scheduling")
    # Its own consumer group, so the two members of this module's group leave nothing behind for
    # the next module's single worker to wait out.
    group = f"recoverynet.scheduling.reminders-test-{uuid.uuid4().hex[:8]}"
    ensure_topics(platform.kafka, {dead_letter_topic(group): {}})
    return Settings(platform=platform, reminder_interval_seconds=0.5, reminder_offsets_minutes=(1440, 60),
                    consumer_group=group)


@pytest.fixture(scope="module")
def two_workers(settings):
    from scheduling.worker import build_worker
    from shared.testing.services import running

    with running(build_worker(settings), build_worker(settings)) as (first, second):
        yield first, second


def local_in(minutes: int) -> str:
    at = (datetime.now(UTC) + timedelta(minutes=minutes)).astimezone(NY)
    return at.replace(second=0, microsecond=0, tzinfo=None).isoformat(timespec="minutes")


def create_meeting(client, headers, site, leader, first_start_local, capacity=2, **kw):
    body = {"site_id": site, "facilitator_id": leader, "name": kw.pop("name", "Noon Hope"), "capacity": capacity,
            "attendance_mode": "in_person", "rrule": "FREQ=WEEKLY", "first_start_local": first_start_local,
            "duration_minutes": 60, **kw}
    resp = client.post("/v1/meetings", json=body, headers=headers())
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def registered_meeting(upstream, client, headers, first_start_local, *, registrants):
    """A weekly meeting at a new site, with its leader and ``registrants`` registered members."""
    site = upstream.site()
    leader = upstream.leader(site_id=site)
    members = [upstream.member(site_id=site) for _ in range(registrants)]
    upstream.known(sites=[site], leaders=[leader], members=members)
    meeting = create_meeting(client, headers, site, leader, first_start_local, capacity=10)
    for member in members:
        assert client.post(f"/v1/meetings/{meeting['id']}/registrations", json={"member_id": member},
                           headers=headers()).status_code == 201
    return leader, members, meeting


def test_each_reminder_is_emitted_exactly_once_with_two_workers(two_workers, upstream, client, headers, tap,
                                                                expect, db):
    site = upstream.site()
    leader = upstream.leader(site_id=site)
    members = [upstream.member(site_id=site) for _ in range(3)]
    upstream.known(sites=[site], leaders=[leader], members=members)

    # A meeting in 30 minutes: the 1 h reminder is due, the 24 h one's window has passed.
    meeting = create_meeting(client, headers, site, leader, local_in(30))
    for member in members:  # capacity 2: the third waits and gets no reminder
        assert client.post(f"/v1/meetings/{meeting['id']}/registrations", json={"member_id": member},
                           headers=headers()).status_code == 201
    # A session in 3 hours: its 24 h reminder is due for both people.
    match_id = f"match-{meeting['id'][:8]}"
    upstream.send(MatchActivated, match_id=match_id, member_id=members[2], leader_id=leader, site_id=site)
    tap.wait_for(expect.of(SessionTimesSuggested, match_id=match_id))
    start = (datetime.now(UTC) + timedelta(hours=3)).replace(second=0, microsecond=0)
    session = client.post("/v1/sessions", json={"match_id": match_id, "start": start.isoformat(),
                                                "outside_availability": True},  # in 3 h, whatever the hour
                          headers=headers())
    assert session.status_code == 201, session.get_json()
    session_id = session.get_json()["id"]

    mine = lambda e: e.type == ReminderDue.type and e.organization_id == upstream.org  # noqa: E731
    expected = {("occurrence", "leader", leader, 60), ("occurrence", "member", members[0], 60),
                ("occurrence", "member", members[1], 60), ("session", "member", members[2], 1440),
                ("session", "leader", leader, 1440)}
    tap.wait_for(mine, count=len(expected), timeout=60)

    # Later rounds of both workers send nothing again: wait until a marker meeting created now has
    # had its own reminder (so the job has run again since), then count.
    marker_leader = upstream.leader(site_id=site)
    upstream.known(leaders=[marker_leader])
    marker = create_meeting(client, headers, site, marker_leader, local_in(45), name="Marker")
    tap.wait_for(expect.of(ReminderDue, meeting_id=marker["id"]), timeout=60)
    events = [e for e in tap.matching(mine) if e.data.get("meeting_id") != marker["id"]]
    seen = Counter((e.data["subject_kind"], e.data["person_kind"], e.data["person_id"], e.data["offset_minutes"])
                   for e in events)
    assert set(seen) == expected and set(seen.values()) == {1}, seen
    occurrence_ids = {e.data["occurrence_id"] for e in events if e.data["subject_kind"] == "occurrence"}
    assert len(occurrence_ids) == 1 and next(iter(occurrence_ids)).startswith(meeting["id"])
    assert {e.data["session_id"] for e in events if e.data["subject_kind"] == "session"} == {session_id}
    assert len({e.data["reminder_id"] for e in events}) == len(expected)
    # ce_subject is the record key, the person, as docs/subscribing.md promises (not the occurrence).
    assert all(e.subject == e.key == e.data["person_id"] for e in events), [(e.subject, e.key) for e in events]
    one = next(e for e in events if e.data["person_id"] == members[0])
    assert one.data["title"] == "Noon Hope" and one.data["time_zone"] == "America/New_York"
    assert db.reminders.count_documents({"organization_id": upstream.org}) == len(expected) + 1


def test_racing_reminder_runs_send_each_reminder_once(two_workers, settings, upstream, client, headers, tap, db):
    """Four runs of the job at the same instant (a time the running workers have not reached)."""
    from scheduling.handlers.jobs import send_due_reminders
    from scheduling.repository import repository as Repository
    from shared.mongo import connect

    leader, members, meeting = registered_meeting(upstream, client, headers, "2027-06-01T18:00", registrants=2)
    occurrence_start = datetime(2027, 6, 1, 22, 0, tzinfo=UTC)  # 18:00 EDT
    at = occurrence_start - timedelta(hours=20)  # the 24 h reminder is due then

    results: list[int] = []
    barrier = threading.Barrier(4)

    def run():
        client_ = connect(settings.platform.mongo_uri)
        try:
            barrier.wait()
            results.append(send_due_reminders(Repository(client_, client_[settings.platform.mongo_database]),
                                              settings, now=at, organization_id=upstream.org))
        finally:
            client_.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # Three people (the leader and two members) x one offset, however the four runs interleaved.
    assert sum(results) == 3, results
    ours = lambda e: e.type == ReminderDue.type and e.data.get("meeting_id") == meeting["id"]  # noqa: E731
    tap.wait_for(ours, count=3)
    assert db.reminders.count_documents({"organization_id": upstream.org}) == 3
    # A restarted worker (a new run later in the same window) sends nothing again.
    again = send_due_reminders(Repository(db.client, db), settings, now=at + timedelta(hours=1),
                               organization_id=upstream.org)
    assert again == 0
    assert Counter(e.data["person_id"] for e in tap.matching(ours)) == Counter({leader: 1, members[0]: 1, members[1]: 1})


def test_a_worker_remembers_sent_reminders_until_their_start(two_workers, settings, upstream, client, headers, db):
    """The job runs every interval while a reminder is due; the worker keeps what it knows is sent, so it
    does not ask the database again (a 5,000-registrant meeting's $in took seconds a run), and forgets it
    once the occurrence has started."""
    from scheduling.handlers.jobs import send_due_reminders
    from scheduling.repository import repository as Repository

    leader, members, meeting = registered_meeting(upstream, client, headers, "2027-07-06T18:00", registrants=3)
    start = datetime(2027, 7, 6, 22, 0, tzinfo=UTC)  # 18:00 EDT
    repo, known = Repository(db.client, db), {}
    assert send_due_reminders(repo, settings, now=start - timedelta(minutes=30), organization_id=upstream.org,
                              known_sent=known) == 4  # the leader and three members, 1 h before
    assert len(known) == 4 and set(known.values()) == {start}
    assert send_due_reminders(repo, settings, now=start - timedelta(minutes=20), organization_id=upstream.org,
                              known_sent=known) == 0
    assert db.reminders.count_documents({"organization_id": upstream.org}) == 4
    send_due_reminders(repo, settings, now=start + timedelta(minutes=1), organization_id=upstream.org,
                       known_sent=known)
    assert known == {}
