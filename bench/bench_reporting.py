"""Reporting (issue 18) on the bare broker and database:

- ``reporting.outcomes``: GET /v1/reports/outcomes (reporting's Flask app, in-process test client, a real
  token) for an organization of 10,000 members (2,000 quick) with a year of activity: the organization,
  one site, one month. The report reads the aggregates the handlers keep (reporting.aggregates). Baseline:
  reading the same organization's fact documents with a bare pymongo ``find`` (what a report computed from
  the members' facts, as before the aggregates, had at least to fetch).
- ``reporting.rebuild``: ``python -m reporting rebuild``'s events/s over a realistic mix of the platform's
  events (registrations, status changes, proposals, matches, declines, waitlist, sessions, attendance,
  screenings, risk flags, deliveries). Baseline: a bare kafka-python consumer reading the same topics.

The year of activity for the report figures is written as the facts the event handlers keep (built with
reporting.model's own functions, the ones the handlers call) and the aggregates they add up to (written by
the handlers' own Store.add_counts from aggregates.contribution), because feeding 10,000 members' year of events
through the broker would take the rebuild's own time (reported by the second figure) many times over.
"""
from __future__ import annotations

import random
import statistics
import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.common import Figure
from shared.config import PlatformSettings
from shared.events import intake as ie
from shared.events import matching as me
from shared.events import notifications as ne
from shared.events import scheduling as se
from shared.messaging.envelope import encode_value, new_event, record_headers
from shared.mongo import connect

YEAR_END = datetime(2026, 11, 1, tzinfo=timezone.utc)
YEAR_START = YEAR_END - timedelta(days=365)
SITES = [f"site-{i}" for i in range(8)]
LANGS = ["en", "en", "en", "es", "es", "pt", "vi", "ht"]
PATHWAYS = ["smart", "twelve_step", "faith_based", "medication_assisted", "secular"]
REASONS = ["schedule", "not_a_fit", "language", "other"]


def _member_history(rng: random.Random, i: int):
    """One member's year as (kind, time, data) tuples: what intake, matching, scheduling and notifications
    would publish about them."""
    onboarded = YEAR_START + timedelta(seconds=rng.uniform(0, 330 * 86400))
    site, lang = rng.choice(SITES), rng.choice(LANGS)
    out = [("registered", onboarded, {"site_id": site, "languages": [lang], "pathways": rng.sample(PATHWAYS, 1)})]
    t = onboarded + timedelta(hours=rng.uniform(1, 24 * 20))
    if rng.random() < 0.2:
        out.append(("waitlisted", t, {}))
        t += timedelta(days=rng.uniform(1, 30))
    for k in range(rng.choice([1, 1, 1, 2])):
        match = f"mt-{i}-{k}"
        out.append(("proposed", t, {"match_id": match}))
        t += timedelta(hours=rng.uniform(2, 72))
        if k == 0 and rng.random() < 0.3:
            out.append(("declined", t, {"match_id": match, "reason": rng.choice(REASONS)}))
            match = f"mt-{i}-x"
            out.append(("proposed", t, {"match_id": match}))
        out.append(("accepted", t, {"match_id": match}))
    engaged_until = min(YEAR_END, onboarded + timedelta(days=rng.uniform(20, 365)))
    s = t + timedelta(days=2)
    n = 0
    while s < engaged_until:
        n += 1
        out.append(("session", s, {"session_id": f"se-{i}-{n}"}))
        out.append(("delivered", s - timedelta(hours=24), {"channel": rng.choice(["email", "sms", "inapp"])}))
        if rng.random() < 0.6:
            out.append(("attended", s + timedelta(days=3), {"meeting_id": f"mtg-{site}", "present": rng.random() < 0.8,
                                                            "occurrence": f"mtg-{site}:{n}"}))
        s += timedelta(days=rng.uniform(6, 16))
    screening = onboarded
    k = 0
    while screening < YEAR_END:
        k += 1
        out.append(("screening", screening, {"screening_id": f"sc-{i}-{k}", "instrument": "BARC-10",
                                             "total": max(10, min(60, 30 + k * rng.randint(-2, 4)))}))
        screening += timedelta(days=90)
    if rng.random() < 0.05:
        flagged = onboarded + timedelta(days=rng.uniform(0, 60))
        out.append(("flagged", flagged, {"screening_id": f"sc-{i}-f"}))
        out.append(("resolved", flagged + timedelta(hours=rng.uniform(1, 72)), {}))
    if engaged_until < YEAR_END and rng.random() < 0.5:
        out.append(("status", engaged_until, {"to_status": rng.choice(["discharged", "graduated"])}))
    return site, out


def facts(org: str, members: int, seed: int = 18):
    """(member fact documents as the handlers keep them, the messages they count (for the reference
    model.outcomes), events represented)."""
    from reporting import aggregates, model

    rng = random.Random(seed)
    docs, messages, events = [], [], 0
    for i in range(members):
        site, history = _member_history(rng, i)
        events += len(history)
        doc = model.new_member(org)
        for kind, at, data in history:
            if kind == "registered":
                doc = model.registered(doc, {**data, "status": "active"}, at)
            elif kind == "status":
                doc = model.status(doc, data["to_status"], at)
            elif kind == "waitlisted":
                doc = model.add(doc, "waitlisted", {"at": at}, "at")
            elif kind in ("proposed", "accepted"):
                doc = model.add(doc, "proposals" if kind == "proposed" else "accepted", {"id": data["match_id"], "at": at}, "id")
            elif kind == "declined":
                doc = model.add(doc, "declines", {"id": data["match_id"], "at": at, "reason": data["reason"]}, "id")
            elif kind == "session":
                doc = model.add(doc, "sessions", {"id": data["session_id"], "at": at}, "id")
            elif kind == "attended":
                doc = model.attend(doc, {"id": data["occurrence"], "meeting_id": data["meeting_id"], "at": at,
                                         "present": data["present"], "recorded_at": at})
            elif kind == "screening":
                doc = model.add(doc, "screenings", {"id": data["screening_id"], "at": at, "instrument": "BARC-10",
                                                    "total": data["total"]}, "id")
            elif kind == "flagged":
                doc = model.add(doc, "flags", {"id": data["screening_id"], "at": at}, "id")
            elif kind == "resolved":
                doc = model.add(doc, "resolved", {"at": at}, "at")
            elif kind == "delivered":  # kept on the member's facts, as the handler does
                messages.append({"at": at, "channel": data["channel"], "outcome": "delivered"})
                key = aggregates.message_key(at, data["channel"], "delivered")
                doc = {**doc, "messages": {**(doc.get("messages") or {}), key: (doc.get("messages") or {}).get(key, 0) + 1}}
        pseudonym = f"p{i}"
        docs.append(aggregates.as_stored({**doc, "_id": f"{org}:{pseudonym}", "pseudonym": pseudonym}))
    return docs, messages, events


def events_of(org: str, members: int, seed: int = 18) -> list:
    """The same kind of year as the platform's events (for the rebuild)."""
    rng = random.Random(seed)
    out = []
    for i in range(members):
        member = f"mb-{uuid.uuid4().hex[:10]}"
        site, history = _member_history(rng, i)
        for kind, at, data in history:
            base = {"organization_id": org, "member_id": member}
            if kind == "registered":
                evt = (ie.MemberRegistered, {**base, "site_id": site, "status": "active", "time_zone": "America/New_York",
                                             "languages": data["languages"], "meeting_mode": "either", "availability": [], "consents": [],
                                             "pathways": data["pathways"]})
            elif kind == "status":
                evt = (ie.MemberStatusChanged, {**base, "site_id": site, "from_status": "active",
                                                "to_status": data["to_status"]})
            elif kind == "waitlisted":
                evt = (me.MemberWaitlisted, {**base, "site_id": site, "waiting_since": at.isoformat(), "reason": "no_leader"})
            elif kind == "proposed":
                evt = (me.MatchProposed, {**base, "match_id": data["match_id"], "leader_id": "ld-1", "site_id": site,
                                          "score": 80.0, "breakdown": [], "rules_passed": [],
                                          "expires_at": (at + timedelta(days=3)).isoformat()})
            elif kind == "accepted":
                evt = (me.MatchAccepted, {**base, "match_id": data["match_id"], "leader_id": "ld-1", "site_id": site,
                                          "accepted_by_role": "leader"})
            elif kind == "declined":
                evt = (me.MatchDeclined, {**base, "match_id": data["match_id"], "leader_id": "ld-1", "site_id": site,
                                          "reason": data["reason"], "declined_by_role": "leader"})
            elif kind == "session":
                evt = (se.SessionHeld, {**base, "session_id": data["session_id"], "match_id": "mt", "leader_id": "ld-1",
                                        "site_id": site, "start": at.isoformat(), "end": (at + timedelta(hours=1)).isoformat()})
            elif kind == "attended":
                ids = {"present_member_ids": [member] if data["present"] else [],
                       "absent_member_ids": [] if data["present"] else [member]}
                evt = (se.AttendanceRecorded, {"organization_id": org, "meeting_id": data["meeting_id"],
                                               "occurrence_id": f"{data['meeting_id']}:{at.strftime('%Y%m%dT%H%M%SZ')}",
                                               "site_id": site, **ids})
            elif kind == "screening":
                evt = (ie.ScreeningRecorded, {**base, "site_id": site, "screening_id": data["screening_id"],
                                              "instrument": "BARC-10", "total": data["total"], "band": "moderate",
                                              "flagged": False})
            elif kind == "flagged":
                evt = (ie.MemberRiskFlagged, {**base, "site_id": site, "screening_id": data["screening_id"],
                                              "instrument": "PHQ-2", "band": "positive",
                                              "reason": "PHQ-2 positive screen"})
            elif kind == "resolved":
                evt = (ie.MemberRiskResolved, {**base, "site_id": site, "flag": "risk"})
            else:  # delivered
                evt = (ne.NotificationDelivered, {"organization_id": org, "recipient_id": member, "delivery_id": uuid.uuid4().hex,
                                                  "recipient_kind": "member", "channel": data["channel"],
                                                  "source_event_id": uuid.uuid4().hex, "attempts": 1,
                                                  "source_event_type": "org.recoverynet.scheduling.session.reminder_due.v1"})
            out.append(new_event(evt[0], evt[1], source="/bench", time=at))
    return out


def _publish(bootstrap: str, events: list) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), linger_ms=20, batch_size=256 * 1024)
    for evt in events:
        producer.send(evt.topic, key=evt.key.encode(), value=encode_value(evt), headers=record_headers(evt))
    producer.flush()
    producer.close()


def _bare_consume(bootstrap: str, topics: list[str], n: int) -> float:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False, group_id=None)
    partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or [0])]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    end = consumer.end_offsets(partitions)
    total = sum(end.values())
    seen, started = 0, time.perf_counter()
    while seen < total:
        for records in consumer.poll(timeout_ms=500).values():
            seen += len(records)
    elapsed = time.perf_counter() - started
    consumer.close()
    return seen / elapsed


def _pct(values, q):
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def run(runs: int, quick: bool, bootstrap: str, mongo_uri: str) -> list[Figure]:
    from reporting.app import create_app
    from reporting.config import Settings
    from reporting.handlers.rebuild import rebuild
    from reporting import aggregates
    from reporting.repository import Store, ensure_indexes
    from reporting.subscriptions import SUBSCRIPTIONS
    from shared.auth import issue_token
    from shared.testing.fixtures import test_keys

    members = 2000 if quick else 10_000
    requests_per_run = 10
    client = connect(mongo_uri)
    database = f"bench_reporting_{uuid.uuid4().hex[:6]}"
    org = "org-bench"
    platform = PlatformSettings(service_name="reporting", kafka_bootstrap_servers=bootstrap, mongo_uri=mongo_uri,
                                mongo_database=database, auth_audience="recoverynet", public_base_url="http://bench",
                                log_level="WARNING", mongo_timeout_ms=5000,
                                auth_public_keys_file=test_keys().public_keys_file)
    settings = Settings(platform=platform)
    db = client[database]
    ensure_indexes(db)
    docs, _messages, represented = facts(org, members)
    for i in range(0, len(docs), 1000):
        db.members.insert_many(docs[i:i + 1000])
    # the aggregates the handlers would have kept: every member's contribution, written by the handlers' Store
    total: Counter = Counter()
    for doc in docs:
        total.update(aggregates.contribution(doc))
    Store(db).add_counts(org, total)
    app = create_app(settings)
    http = app.test_client()
    token = issue_token(test_keys().signing_key, organization_id=org, role="admin", ttl_seconds=3600)
    headers = {"Authorization": f"Bearer {token}"}
    scopes = {"organization, 12 months": {"from": "2025-11-01", "to": "2026-10-31"},
              "one site, 12 months": {"from": "2025-11-01", "to": "2026-10-31", "site_id": SITES[0]},
              "organization, one month": {"from": "2026-06-01", "to": "2026-06-30"}}
    figures = []

    bare_client = connect(mongo_uri, timeout_ms=60_000)  # the bare read of 10,000 members' facts can pass 30 s here

    def bare_read():
        started = time.perf_counter()
        list(bare_client[database].members.find({"organization_id": org}))
        return time.perf_counter() - started

    base = [bare_read() * 1000 for _ in range(runs)]  # once per run, the same baseline for the three scopes
    bare_client.close()

    for label, query in scopes.items():
        first = http.get("/v1/reports/outcomes", query_string=query, headers=headers)
        assert first.status_code == 200, first.get_data(as_text=True)[:500]
        p50s, p95s = [], []
        for _ in range(runs):
            times = []
            for _ in range(requests_per_run):
                started = time.perf_counter()
                response = http.get("/v1/reports/outcomes", query_string=query, headers=headers)
                times.append(time.perf_counter() - started)
                assert response.status_code == 200
            p50s.append(statistics.median(times) * 1000)
            p95s.append(_pct(times, 95) * 1000)
        notes = {"members": members, "events_represented": represented, "requests_per_run": requests_per_run,
                 "onboarded_in_report": first.get_json()["reach"]["onboarded"]}
        figures.append(Figure(f"reporting.outcomes {label}", "p50", "ms", p50s, "bare find of the org's facts",
                              base, higher_is_better=False, notes=notes))
        figures.append(Figure(f"reporting.outcomes {label}", "p95", "ms", p95s, "bare find of the org's facts",
                              base, higher_is_better=False))
    client.drop_database(database)

    # -- rebuild's events/s vs a bare consumer on the same topics --------------------------------------
    # (600 members before the aggregates; each event now also rewrites the aggregates it changes, so the
    # replay is slower and a smaller year keeps the run within minutes: events/s hardly depends on its size)
    rebuild_members = 50 if quick else 100
    topics = sorted({d.topic for d in SUBSCRIPTIONS})
    ours, bare, counts, folded = [], [], [], []
    for _ in range(runs):
        org_r = f"org-rebuild-{uuid.uuid4().hex[:6]}"
        events = events_of(org_r, rebuild_members)
        _publish(bootstrap, events)
        bare.append(_bare_consume(bootstrap, topics, len(events)))
        rebuild_settings = replace(settings, platform=replace(platform, mongo_database=f"bench_rebuild_{uuid.uuid4().hex[:6]}"))
        result = rebuild(rebuild_settings, idle_polls=2)
        # the group join and the idle polls that prove it caught up are not throughput: time from the first
        # event applied is not observable from outside, so the whole rebuild is timed (a conservative figure)
        ours.append(result["events"] / result["seconds"])
        counts.append(result["events"])
        folded.append(result.get("folded_batches"))
        client.drop_database(rebuild_settings.platform.mongo_database)
    figures.append(Figure("reporting.rebuild", "throughput", "events/s", ours, "bare kafka-python consumer", bare,
                          notes={"events_applied_per_run": counts, "members_per_run": rebuild_members,
                                 "folded_batches_per_run": folded,
                                 "note": "every run replays the topics from offset 0, earlier runs' events included; "
                                         "the bare consumer reads the same topics end to end"}))
    client.close()
    return figures
