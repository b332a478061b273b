"""Scheduling's registration as a meeting fills (issue 20): the time of one registration (scheduling's own
``register`` use case in its unit of work: the transaction the API runs, without HTTP) when the meeting
already holds k-1 registrations, for k = 5 and k = 5,000 (2,000 quick), on the bare embedded database.

The baseline is the same registration at k = 5, so the ratio says how much dearer the k-th registration
is than the 5th: 1 is flat. Before issue 20 a registration read every registration of the meeting to
decide seat or waitlist; now it reads the meeting's seat counts (one small document) and the member's
own registration. The meeting's earlier registrations are inserted directly (as the API would have
written them), and one registration before the measured ones builds the meeting's counts from them. The
two sizes are measured in turn, one registration each, so the machine's load weighs on both alike.
"""
from __future__ import annotations

import time
import uuid
from datetime import timedelta

from bench.common import Figure
from shared.auth import Principal
from shared.mongo import connect, utcnow
from shared.repository import read_model_key

SAMPLES = 20  # registrations timed per run at each k


def _seed(db, org: str, site: str, leaders: list[str], members: list[str]) -> None:
    db.sites.insert_one({"_id": read_model_key(org, site), "organization_id": org, "site_id": site,
                         "name": "Main", "time_zone": "America/Chicago", "virtual_only": False})
    db.leaders.insert_many([{"_id": read_model_key(org, leader), "organization_id": org, "leader_id": leader,
                             "site_ids": [site], "status": "active", "time_zone": "America/Chicago"} for leader in leaders])
    for i in range(0, len(members), 1000):
        db.members.insert_many([{"_id": read_model_key(org, m), "organization_id": org, "member_id": m,
                                 "site_id": site, "status": "active"} for m in members[i:i + 1000]])


def _prefill(db, org: str, site: str, meeting_id: str, members: list[str]) -> None:
    start = utcnow() - timedelta(hours=1)
    for i in range(0, len(members), 1000):
        db.registrations.insert_many([
            {"_id": uuid.uuid4().hex, "organization_id": org, "meeting_id": meeting_id, "site_id": site,
             "member_id": m, "occurrence_id": None, "occurrence_end": None, "status": "registered",
             "created_at": start + timedelta(milliseconds=i + j), "updated_at": start, "registrant_kind": "member"}
            for j, m in enumerate(members[i:i + 1000])])


def run(runs: int, quick: bool, bootstrap: str, mongo_uri: str) -> list[Figure]:
    from scheduling.config import Settings
    from scheduling.handlers.meetings import create_meeting
    from scheduling.handlers.registrations import register
    from scheduling.repository import ensure_indexes, repository

    big = 2000 if quick else 5000
    client = connect(mongo_uri)
    db = client[f"bench_seats_{uuid.uuid4().hex[:6]}"]
    ensure_indexes(db)
    repo = repository(client, db)
    org, site = f"bench-{uuid.uuid4().hex[:6]}", "site-1"
    admin = Principal(subject="bench", role="admin", organization_id=org)
    sizes = {5: [], big: []}
    members = {k: [f"m{k}-{i}" for i in range(k - 1 + 1 + SAMPLES * runs)] for k in sizes}
    _seed(db, org, site, [f"leader-{k}" for k in sizes], [m for ms in members.values() for m in ms])
    settings = Settings(platform=None)
    body = {"site_id": site, "name": "Thursday Circle", "capacity": 100000,
            "attendance_mode": "in_person", "rrule": "FREQ=WEEKLY;BYDAY=TH", "first_start_local": "2027-03-04T19:00",
            "duration_minutes": 60, "is_public": True, "is_open": True, "format": None, "types": [], "language": "en"}
    notes: dict = {"samples_per_run": SAMPLES, "capacity": 100000}
    try:
        meetings, queues = {}, {}
        for k in sizes:
            meetings[k] = repo.transaction(lambda uow: create_meeting(uow, settings, admin, {
                **body, "name": f"Circle {k}", "facilitator_id": f"leader-{k}"}))  # a facilitator each: no clash
            queue = list(members[k])
            _prefill(db, org, site, meetings[k]["_id"], queue[:k - 1])
            queues[k] = queue[k - 1:]
            one = queues[k].pop(0)  # the first registration after the prefill builds the meeting's counts
            started = time.perf_counter()
            repo.transaction(lambda uow: register(uow, admin, meetings[k]["_id"], one, None))
            notes[f"first_registration_at_k{k}_ms"] = round((time.perf_counter() - started) * 1000, 1)
        for _ in range(runs):
            times: dict[int, list[float]] = {k: [] for k in sizes}
            for _ in range(SAMPLES):
                for k in sizes:  # one at each size in turn: the machine's load moves both alike
                    member = queues[k].pop(0)
                    started = time.perf_counter()
                    repo.transaction(lambda uow: register(uow, admin, meetings[k]["_id"], member, None))
                    times[k].append((time.perf_counter() - started) * 1000)
            for k in sizes:
                sizes[k].append(sorted(times[k])[len(times[k]) // 2])
    finally:
        client.drop_database(db.name)
        client.close()
    return [Figure(f"seats.register at k={big}", "time", "ms", sizes[big], "the same at k=5", sizes[5],
                   higher_is_better=False, notes=notes)]
