"""The outcome report through the real broker and database: a realistic organization's six months of
back-dated events (published as intake, matching, scheduling and notifications publish them: back-dated
activity cannot be made through their APIs, so the events carry the past times), each figure checked
against counts made here from the same inputs; suppression in JSON and CSV; redelivery; the audit log;
who may see what; rebuild equality; erasure leaves no identifier."""
import csv
import io
import json
import logging
import math
import random
import statistics
from datetime import datetime, timedelta, timezone

import pytest

from shared.events.intake import (LeaderRegistered, MemberErased, MemberRegistered, MemberRiskFlagged,
                                  MemberRiskResolved, MemberStatusChanged, ScreeningRecorded)
from shared.events.matching import MatchAccepted, MatchDeclined, MatchProposed, MemberWaitlisted
from shared.events.notifications import ChannelUnsubscribed, NotificationDelivered, NotificationFailed
from shared.events.scheduling import AttendanceRecorded, MeetingCreated, SessionHeld
from shared.testing import eventually

from reporting import model
from reporting.handlers.rebuild import rebuild

pytestmark = [pytest.mark.timeout(600), pytest.mark.usefixtures("worker")]

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
Q = {"from": "2025-01-01", "to": "2025-06-30"}
HIDDEN = "fewer than 11"


def nearest_rank(values, q):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def build(feed, rng):
    w = {"members": [], "site_a": "site-a", "site_b": "site-b"}
    day = lambda d, h=10: START + timedelta(days=d, hours=h)  # noqa: E731
    for i in range(6):
        feed.add(LeaderRegistered, day(0, 8), leader_id=f"ldr-{i}-{feed.org[-6:]}", site_ids=[w["site_a"]],
                 status="active", time_zone="UTC", languages=["en"], meets_virtually=True, availability=[], capacity=5)
    feed.add(MeetingCreated, day(0, 8), meeting_id="mtg-1", site_id=w["site_a"], facilitator_id="ldr-0",
             name="Tuesday Circle", language="en", attendance_mode="in_person", capacity=40, is_open=True,
             is_public=True, time_zone="UTC", rrule="FREQ=WEEKLY", first_start_local="2025-01-07T18:00",
             duration_minutes=60)
    for i in range(65):
        site = w["site_a"] if i < 60 else w["site_b"]
        lang = "en" if i < 40 or i >= 60 else "es"
        mid = f"mem-{i:03d}-{feed.org[-6:]}"
        onboard = day(rng.randrange(0, 100))
        m = {"id": mid, "site": site, "lang": lang, "onboarded": onboard, "pathways": ["smart"] if i % 2 else ["12-step"]}
        feed.add(MemberRegistered, onboard, member_id=mid, site_id=site, status="active", time_zone="UTC",
                 languages=[lang], meeting_mode="either", availability=[], pathways=m["pathways"], consents=[])
        if i < 50:  # proposed after 1-20 days; 40 accept, 10 decline
            m["proposed"] = onboard + timedelta(days=rng.randrange(1, 21), hours=rng.randrange(0, 12))
            feed.add(MatchProposed, m["proposed"], match_id=f"mt-{mid}", member_id=mid, leader_id="ldr-1", site_id=site,
                     score=70, breakdown=[], rules_passed=[], expires_at=m["proposed"] + timedelta(days=3))
            if i < 40:
                m["accepted"] = m["proposed"] + timedelta(days=rng.randrange(0, 3), hours=1)
                feed.add(MatchAccepted, m["accepted"], match_id=f"mt-{mid}", member_id=mid, leader_id="ldr-1",
                         site_id=site, accepted_by_role="member")
                m["sessions"] = []
                for s in range(rng.randrange(1, 6)):
                    start = m["accepted"] + timedelta(days=7 * (s + 1))
                    if start < day(180):
                        m["sessions"].append(start)
                        feed.add(SessionHeld, start + timedelta(hours=1), session_id=f"ses-{mid}-{s}",
                                 match_id=f"mt-{mid}", member_id=mid, leader_id="ldr-1", site_id=site,
                                 start=start, end=start + timedelta(hours=1))
            else:
                m["declined"] = "schedule" if i % 2 else "language"
                feed.add(MatchDeclined, m["proposed"] + timedelta(days=1), match_id=f"mt-{mid}", member_id=mid,
                         leader_id="ldr-1", site_id=site, declined_by_role="member", reason=m["declined"])
        elif i < 60:  # waiting
            m["waiting"] = onboard + timedelta(hours=1)
            feed.add(MemberWaitlisted, m["waiting"], member_id=mid, site_id=site, reason="no leader",
                     waiting_since=m["waiting"])
        if i < 30:  # two BARC-10 screenings
            first, latest = rng.randrange(20, 40), rng.randrange(20, 50)
            m["barc"] = (first, latest)
            for n, (total, at) in enumerate(((first, onboard + timedelta(days=1)), (latest, day(170)))):
                feed.add(ScreeningRecorded, at, member_id=mid, site_id=site, screening_id=f"scr-{mid}-{n}",
                         instrument="BARC-10", total=total, band="x", flagged=False)
        if i % 5 == 0:  # a risk flag, resolved after some hours
            m["flag"] = onboard + timedelta(days=2)
            m["resolved_hours"] = rng.randrange(1, 48)
            feed.add(MemberRiskFlagged, m["flag"], member_id=mid, site_id=site, screening_id=f"scr-r-{mid}",
                     instrument="PHQ-2", band="positive", reason="PHQ-2 positive screen")
            feed.add(MemberRiskResolved, m["flag"] + timedelta(hours=m["resolved_hours"]), member_id=mid,
                     site_id=site, flag="risk")
        if i in (3, 7):
            m["graduated"] = day(150)
            feed.add(MemberStatusChanged, day(150), member_id=mid, site_id=site, from_status="active",
                     to_status="graduated")
        for channel, ok in (("email", True), ("inapp", True), ("sms", i % 4 != 0)):
            feed.add(NotificationDelivered if ok else NotificationFailed, onboard + timedelta(hours=2),
                     delivery_id=f"d-{mid}-{channel}", recipient_id=mid, recipient_kind="member", channel=channel,
                     source_event_id="x", source_event_type="y", attempts=1,
                     **({} if ok else {"reason": "bounced"}))
        if i < 12:
            feed.add(ChannelUnsubscribed, onboard + timedelta(days=3), recipient_id=mid, channel="email")
        w["members"].append(m)
    # Weekly meeting: 26 occurrences; members of site A onboarded before it come with probability 0.6.
    w["attendance"] = []
    for week in range(26):
        start = START + timedelta(days=6 + 7 * week, hours=18)
        eligible = [m for m in w["members"] if m["site"] == w["site_a"] and m["onboarded"] < start and m["id"] < "mem-045"]
        present = [m["id"] for m in eligible if rng.random() < 0.6]
        absent = [m["id"] for m in eligible if m["id"] not in present]
        occ = f"mtg-1:{start.strftime('%Y%m%dT%H%M%SZ')}"
        feed.add(AttendanceRecorded, start + timedelta(hours=2), meeting_id="mtg-1", site_id=w["site_a"],
                 occurrence_id=occ, present_member_ids=present, absent_member_ids=absent)
        w["attendance"].append((start, present, absent))
    return w


@pytest.fixture(scope="module")
def world(module_feed, db):
    """A realistic organization: 65 members (60 at site A: 40 en, 20 es; 5 at site B), 6 leaders, a weekly
    meeting, matching, sessions, screenings, flags and messages from January to June 2025."""
    w = build(module_feed, random.Random(18))
    module_feed.flush()
    module_feed.wait_applied(db)
    w["org"] = module_feed.org
    return w


def report(client, make_token, org, role="admin", **kw):
    from shared.testing.fixtures import auth_header
    query = {**Q, **kw.pop("query", {})}
    resp = client.get("/v1/reports/outcomes", query_string=query, headers=auth_header(make_token(org, role, **kw)))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def in_range(t):
    return START <= t < datetime(2025, 7, 1, tzinfo=timezone.utc)


def test_each_figure_matches_counts_made_from_the_inputs(world, client, make_token):
    got = report(client, make_token, world["org"])
    ms = world["members"]
    onboarded = [m for m in ms if in_range(m["onboarded"])]
    reach = got["reach"]
    assert reach["onboarded"] == len(onboarded) == 65
    assert reach["by_language"] == {"en": 45, "es": 20}
    assert reach["by_pathway"] == {p: sum(1 for m in ms if m["pathways"] == [p]) for p in ("12-step", "smart")}
    assert reach["graduated"] == HIDDEN  # 2 graduated
    assert reach["active_at_end"] == 63
    assert reach["leaders_active_at_end"] == HIDDEN  # 6 leaders
    monthly = {row["month"]: row["onboarded"] for row in reach["monthly"]}
    for month in range(1, 7):
        n = sum(1 for m in ms if m["onboarded"].month == month)
        assert monthly[f"2025-{month:02d}"] == (n if n >= 11 or n == 0 else HIDDEN) or monthly[f"2025-{month:02d}"] == HIDDEN

    to_proposal = [(m["proposed"] - m["onboarded"]).total_seconds() / 86400 for m in ms if "proposed" in m]
    to_match = [(m["accepted"] - m["onboarded"]).total_seconds() / 86400 for m in ms if "accepted" in m]
    access = got["access"]
    assert access["days_to_first_proposal"] == {"n": 50, "median": round(statistics.median(to_proposal), 1),
                                                "p90": round(nearest_rank(to_proposal, 90), 1)}
    assert access["days_to_accepted_match"] == {"n": 40, "median": round(statistics.median(to_match), 1),
                                                "p90": round(nearest_rank(to_match, 90), 1)}
    assert access["declined"] == HIDDEN  # 10 declines (5 schedule, 5 language)
    assert access["declined_by_reason"] == {"language": HIDDEN, "schedule": HIDDEN}
    assert access["waiting_at_end"]["members"] == HIDDEN  # 10 waiting
    assert access["waiting_at_end"]["median"] == HIDDEN

    sessions = [s for m in ms for s in m.get("sessions", []) if in_range(s)]
    eng = got["engagement"]
    with_sessions = sum(1 for m in ms if any(in_range(s) for s in m.get("sessions", [])))
    assert eng["sessions_held"] == len(sessions)
    assert eng["members_with_sessions"] == with_sessions
    assert eng["sessions_per_member"] == round(len(sessions) / with_sessions, 2)
    present = sum(len(p) for start, p, _ in world["attendance"] if in_range(start))
    recorded = sum(len(p) + len(a) for start, p, a in world["attendance"] if in_range(start))
    assert eng["meeting_attendances"] == present
    [series] = eng["attendance_by_series"]
    assert series["meeting"] == "Tuesday Circle" and series["present"] == present and series["recorded"] == recorded
    assert series["attendance_rate"] == round(present / recorded, 3)

    def engaged(m, n):
        lo, hi = m["onboarded"] + timedelta(days=n - 30), m["onboarded"] + timedelta(days=n)
        times = list(m.get("sessions", [])) + [start for start, p, _ in world["attendance"] if m["id"] in p]
        return any(lo <= t < hi for t in times)
    for n in (30, 90, 180):
        cohort = [m for m in ms if m["onboarded"] + timedelta(days=n) <= datetime(2025, 7, 1, tzinfo=timezone.utc)]
        row = eng["retention"][f"day_{n}"]
        yes = sum(1 for m in cohort if engaged(m, n))
        expected_cohort = len(cohort) if len(cohort) >= 11 or not cohort else HIDDEN
        assert row["cohort"] == expected_cohort
        if len(cohort) >= 11 and yes >= 11 and len(cohort) - yes >= 11:
            assert (row["engaged"], row["share"]) == (yes, round(yes / len(cohort), 3))
        elif cohort:
            assert HIDDEN in (row["engaged"], row["not_engaged"], row["cohort"])

    changes = [m["barc"][1] - m["barc"][0] for m in ms if "barc" in m]
    barc = got["recovery_capital"]["BARC-10"]
    assert barc["members"] == 30 and barc["mean_change"] == round(statistics.fmean(changes), 2)
    for name, test in (("improved", lambda c: c > 0), ("unchanged", lambda c: c == 0), ("worse", lambda c: c < 0)):
        n = sum(1 for c in changes if test(c))
        assert barc[name] == n or barc[name] == HIDDEN, (name, n, barc)
    assert list(barc.values()).count(HIDDEN) != 1  # never one hidden figure of a sum alone

    flagged = [m for m in ms if "flag" in m]
    safety = got["safety"]
    assert safety["flags_raised"] == safety["resolved"] == len(flagged) == 13
    hours = [m["resolved_hours"] for m in flagged]
    assert safety["hours_to_resolve"] == {"n": 13, "median": float(statistics.median(hours)),
                                          "p90": float(nearest_rank(hours, 90))}

    comm = got["communication"]
    failed = sum(1 for i in range(65) if i % 4 == 0)
    assert comm["by_channel"]["email"] == {"delivered": 65, "failed": 0, "unsubscribed": 12}
    assert comm["by_channel"]["sms"] == {"delivered": 65 - failed, "failed": failed, "unsubscribed": 0}
    assert (comm["delivered"], comm["failed"], comm["unsubscribed"]) == (65 * 3 - failed, failed, 12)


def test_no_id_of_a_person_in_a_report_json_or_csv_and_csv_is_the_same_figures(world, client, make_token):
    from shared.testing.fixtures import auth_header
    h = auth_header(make_token(world["org"], "admin"))
    body = client.get("/v1/reports/outcomes", query_string=Q, headers=h).get_data(as_text=True)
    by_accept = client.get("/v1/reports/outcomes", query_string=Q, headers={**h, "Accept": "text/csv"})
    by_route = client.get("/v1/reports/outcomes.csv", query_string=Q, headers=h)
    assert by_accept.mimetype == by_route.mimetype == "text/csv"
    text = by_route.get_data(as_text=True)
    for m in world["members"]:
        assert m["id"] not in body and m["id"] not in text
    assert "ldr-" not in body and "ldr-" not in text
    rows = {(r["section"], r["figure"], r["detail"]): r["value"] for r in csv.DictReader(io.StringIO(text))}
    assert rows[("reach", "onboarded", "")] == "65"
    assert rows[("access", "declined", "")] == HIDDEN
    assert rows[("reach", "by_language", "es")] == "20"
    assert rows[("engagement", "attendance_by_series", "Tuesday Circle.attendance_rate")]


def test_coordinators_see_their_sites_only_others_are_refused_and_every_pull_is_audited(world, client, make_token,
                                                                                          db):
    site_b = report(client, make_token, world["org"], "coordinator", sites=[world["site_b"]])
    assert site_b["reach"]["onboarded"] == HIDDEN and site_b["sites"] == [world["site_b"]]
    site_a = report(client, make_token, world["org"], "coordinator", sites=[world["site_a"]])
    assert site_a["reach"]["onboarded"] == 60
    assert site_a["communication"]["by_channel"]["email"]["delivered"] == 60
    # A site they do not hold: nobody in it, as if it did not exist.
    other = report(client, make_token, world["org"], "coordinator", sites=[world["site_b"]],
                   query={"site_id": world["site_a"]})
    assert other["reach"]["onboarded"] == 0
    from shared.testing.fixtures import auth_header
    for role, kw in (("leader", {"leader_id": "ldr-1"}), ("member", {"member_id": "mem-000"})):
        resp = client.get("/v1/reports/outcomes", headers=auth_header(make_token(world["org"], role, **kw)))
        assert resp.status_code == 403
    assert client.get("/v1/reports/outcomes").status_code == 401
    entries = list(db.audit_log.find({"organization_id": world["org"], "resource_type": "outcome_report"}))
    assert len(entries) >= 4 and {e["actor_role"] for e in entries} == {"admin", "coordinator"}


def test_redelivered_and_out_of_order_events_change_nothing(world, module_feed, client, make_token, db):
    before = report(client, make_token, world["org"])
    # The same records again (same ids), and a proposal for a member intake has not registered yet.
    module_feed.flush(again=module_feed.sent[:200])
    late = module_feed.add(MatchProposed, START + timedelta(days=3), match_id="mt-late", member_id="mem-late",
                           leader_id="ldr-1", site_id=world["site_a"], score=50, breakdown=[], rules_passed=[],
                           expires_at=START + timedelta(days=6))
    module_feed.flush()
    module_feed.wait_applied(db)
    after = report(client, make_token, world["org"])
    strip = lambda r: {k: v for k, v in r.items() if k != "generated_at"}  # noqa: E731
    assert strip(after) == strip(before)
    assert late.id


def _aggregates(db, org):
    """Every aggregate document's counters (day- and month-level, timelines; a document whose counters all
    came back to zero is the same as none) and every member's facts."""
    out = {}
    for coll in ("monthly", "timelines"):
        for d in db[coll].find({"organization_id": org}):
            if json.loads(d["j"]):
                out[d["_id"]] = json.loads(d["j"])
    for d in db.members.find({"organization_id": org, "erased": {"$ne": True}}):
        out[d["_id"]] = d
    return out


def test_rebuild_gives_identical_figures(world, settings, client, make_token, db, caplog):
    before = report(client, make_token, world["org"])
    stored = _aggregates(db, world["org"])
    caplog.set_level(logging.INFO, logger="shared.messaging.consumer")
    result = rebuild(settings)
    # every batch applied folded (a batch that fails is applied again one event at a time, unfolded)
    assert not [r for r in caplog.records if "not applied together" in r.getMessage()]
    assert result["events"] >= len(world["members"])
    assert result["folded_batches"] >= 1 and result["folded_events"] >= result["events"] // 2, result
    after = report(client, make_token, world["org"])
    strip = lambda r: {k: v for k, v in r.items() if k != "generated_at"}  # noqa: E731
    assert strip(after) == strip(before)
    # the batches folded in memory write the same counters and facts as the worker's event-by-event path
    assert _aggregates(db, world["org"]) == stored and any(":m:" in k for k in stored)
    assert db.audit_log.count_documents({"organization_id": world["org"]}) > 0  # the audit log survives


def test_an_erased_member_leaves_no_identifier_and_their_counts_stay(world, module_feed, settings, client,
                                                                      make_token, db, caplog):
    before = report(client, make_token, world["org"])
    gone = world["members"][0]
    module_feed.add(MemberErased, member_id=gone["id"], site_id=gone["site"])
    module_feed.flush()
    module_feed.wait_applied(db)
    pseudonym = model.pseudonym(settings.pseudonym_key, world["org"], gone["id"])
    # A late message about them (notifications may still report one) is dropped.
    module_feed.add(NotificationDelivered, delivery_id="d-late", recipient_id=gone["id"], recipient_kind="member",
                    channel="email", source_event_id="x", source_event_type="y", attempts=1)
    module_feed.flush()
    module_feed.wait_applied(db)
    for name in db.list_collection_names():
        if name in ("inbox",):
            continue  # event ids only
        for doc in db[name].find():
            text = json.dumps(doc, default=str)
            assert gone["id"] not in text and pseudonym not in text, (name, text[:300])
    after = report(client, make_token, world["org"])
    strip = lambda r: {k: v for k, v in r.items() if k not in ("generated_at",)}  # noqa: E731
    assert strip(after)["reach"] == strip(before)["reach"]
    assert after["recovery_capital"] == before["recovery_capital"]
    assert db.members.count_documents({"organization_id": world["org"], "erased": True}) == 1
    # the same through a rebuild (batches folded in memory: the erasure writes what its batch changed first)
    caplog.set_level(logging.INFO, logger="shared.messaging.consumer")
    rebuild(settings)
    assert not [r for r in caplog.records if "not applied together" in r.getMessage()]
    for name in db.list_collection_names():
        if name in ("inbox",):
            continue
        for doc in db[name].find():
            text = json.dumps(doc, default=str)
            assert gone["id"] not in text and pseudonym not in text, (name, text[:300])
    assert db.members.count_documents({"organization_id": world["org"], "erased": True}) == 1
    rebuilt = report(client, make_token, world["org"])
    assert rebuilt["reach"] == after["reach"] and rebuilt["recovery_capital"] == after["recovery_capital"]
