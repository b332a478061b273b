"""Matching at scale: the batch assignment (an exact min-cost flow over the candidate pairs, OR-tools)
against an exact dense solver (scipy's linear_sum_assignment on the problem expanded to one column per
free place), round one's solver (sparse LAPJV over capacity slots: time and peak memory, each measured in
a fresh process) and a greedy pass; the time to propose for one new member in a large organization against scoring one pair; and a whole batch run
through the database (every proposal, leader load, waitlist entry and outbox event written) against
raw inserts of the same match documents."""
from __future__ import annotations

import ctypes
import gc
import json
import random
import subprocess
import sys
import time
import tracemalloc
from datetime import datetime, timezone

import numpy as np
from pymongo.errors import PyMongoError
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from bench.common import Figure, repeat, seconds
from shared.repository import read_model_key
from matching import model

LANGUAGES = ["en"] * 6 + ["es"] * 3 + ["fr"]
SUBSTANCES = ["alcohol", "opioids", "stimulants", "cannabis", "benzodiazepines"]
PATHWAYS = ["12-step", "smart", "medication-assisted", "faith-based", "harm-reduction"]
TOPICS = ["parenting", "incarceration", "veterans", "lgbtq", "grief", "homelessness", "chronic-pain"]
ZONES = ["America/New_York", "America/Los_Angeles"]


def _windows(rng: random.Random) -> list[model.Window]:
    days = rng.sample(range(7), rng.randint(2, 5))
    start = rng.choice([8, 9, 12, 17, 18])
    return [model.Window(d, f"{start:02d}:00", f"{start + rng.choice([2, 3, 4]):02d}:00") for d in days]


def population(members: int, leaders: int, seed: int = 7):
    rng = random.Random(seed)
    sites = [f"site-{i}" for i in range(max(2, leaders // 25))]
    people = [model.Member(
        member_id=f"m{i}", site_id=rng.choice(sites), time_zone=rng.choice(ZONES),
        languages=[rng.choice(LANGUAGES)], meeting_mode=rng.choice(["either", "either", "virtual", "in_person"]),
        availability=_windows(rng), substances=rng.sample(SUBSTANCES, rng.randint(1, 2)),
        pathways=rng.sample(PATHWAYS, 1), co_occurring_mental_health=rng.choice(["yes", "no", "prefer_not_to_say"]),
        lived_experience_topics=rng.sample(TOPICS, rng.randint(0, 2)), matching_consent=True) for i in range(members)]
    guides = [model.Leader(
        leader_id=f"l{i}", site_ids=[rng.choice(sites)], time_zone=rng.choice(ZONES),
        languages=["en"] + (["es"] if rng.random() < 0.35 else []) + (["fr"] if rng.random() < 0.1 else []),
        gender=rng.choice(["woman", "man", "nonbinary"]), meets_virtually=rng.random() < 0.7,
        availability=_windows(rng) + _windows(rng), capacity=rng.randint(20, 25),
        substances=rng.sample(SUBSTANCES, 3), pathways=rng.sample(PATHWAYS, 2),
        lived_experience_areas=rng.sample(TOPICS, 3), co_occurring_mental_health_experience=rng.random() < 0.5,
        certified=True) for i in range(leaders)]
    return people, guides


def _problem(members: int, leaders: int):
    people, guides = population(members, leaders)
    now = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
    ctx = model.Context(now=now)
    weights = model.normalise_weights(None)
    table = model.LeaderTable(guides, now)
    evaluations = [model.evaluate(p, table, weights, ctx) for p in people]
    feasible = np.vstack([e.feasible for e in evaluations])
    base = np.vstack([e.base_score for e in evaluations])
    return people, guides, table, weights, ctx, feasible, base


def _dense_exact(feasible, base, table, load_weight) -> float:
    """The same expanded problem, solved densely by scipy's exact Hungarian-style solver."""
    remaining = table.remaining
    slot_leader = np.repeat(np.arange(len(remaining)), remaining)
    slot_k = np.arange(len(slot_leader)) - np.concatenate([[0], np.cumsum(remaining)])[slot_leader]
    slot_load = load_weight * model.load_fraction(table.open_count[slot_leader] + slot_k, table.capacity[slot_leader])
    m = feasible.shape[0]
    score = np.where(feasible[:, slot_leader], base[:, slot_leader] + slot_load[None, :], -1e6)
    score = np.hstack([score, np.where(np.eye(m, dtype=bool), 0.0, -1e6)])  # "stay waiting" columns
    rows, cols = linear_sum_assignment(score, maximize=True)
    return float(score[rows, cols].sum())


def slots_lapjv_total(feasible, base, open_count, capacity, load_weight) -> float:
    """Round one's solver, kept as a baseline: every candidate pair expanded to one edge per free place of
    its leader (slot k carries the load part at open + k), a "stay waiting" column per member, solved
    exactly by scipy's LAPJVsp (min_weight_full_bipartite_matching). Its total is the optimum too."""
    open_count, capacity = np.asarray(open_count, dtype=np.int64), np.asarray(capacity, dtype=np.int64)
    remaining = np.maximum(capacity - open_count, 0)
    slot_start = np.concatenate([[0], np.cumsum(remaining)]).astype(np.int64)
    n_slots, n_members = int(slot_start[-1]), feasible.shape[0]
    slot_leader = np.repeat(np.arange(len(remaining)), remaining)
    slot_load = load_weight * model.load_fraction(open_count[slot_leader] + np.arange(n_slots) - slot_start[slot_leader],
                                                  capacity[slot_leader])
    pm, pl = np.nonzero(feasible & (remaining > 0)[None, :])
    ps = base[pm, pl]
    counts = remaining[pl]
    within = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    cols = slot_start[np.repeat(pl, counts)] + within
    rows = np.concatenate([np.repeat(pm, counts), np.arange(n_members)])
    cols = np.concatenate([cols, n_slots + np.arange(n_members)])
    vals = np.concatenate([np.repeat(ps, counts) + slot_load[cols[:len(within)]], np.zeros(n_members)])
    graph = csr_matrix((1000.0 - vals, (rows, cols)), shape=(n_members, n_slots + n_members))
    matched_rows, matched_cols = min_weight_full_bipartite_matching(graph)
    return float((1000.0 - np.asarray(graph[matched_rows, matched_cols]).ravel()).sum())


def _solve_in_fresh_process(solver: str, members: int, leaders: int) -> dict:
    """Time and peak memory of one solver call in a new process (python -m bench.bench_matching): the
    resident set's high-water mark is reset just before the call (/proc/self/clear_refs), so the growth
    counts what the solver holds at its peak, native memory (OR-tools, scipy) included."""
    out = subprocess.run([sys.executable, "-m", "bench.bench_matching", "solve", solver, str(members), str(leaders)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def _measure_one_solve(solver: str, members: int, leaders: int) -> dict:
    people, guides, table, weights, ctx, feasible, base = _problem(members, leaders)
    load_weight = weights["leader_load"]
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    before_kb = _status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")   # VmHWM := VmRSS
    started = time.perf_counter()
    if solver == "ours":
        total = model.assign(feasible, base, table.open_count, table.capacity, load_weight).total_score
    else:
        total = slots_lapjv_total(feasible, base, table.open_count, table.capacity, load_weight)
    took = time.perf_counter() - started
    peak_kb = _status_kb("VmHWM")
    return {"seconds": took, "total": total, "growth_mb": (peak_kb - before_kb) / 1024,
            "process_peak_mb": peak_kb / 1024, "before_mb": before_kb / 1024}


def objective(pairs: dict[int, int], base, table, load_weight) -> float:
    """The batch objective for any assignment: base scores plus each leader's load part slot by slot
    (the k-th member a leader takes is worth the load part at open + k), so greedy is judged fairly."""
    total = sum(float(base[m, l]) for m, l in pairs.items())
    taken = np.bincount(list(pairs.values()), minlength=len(table.capacity)) if pairs else np.zeros(len(table.capacity))
    for leader, n in enumerate(taken):
        ks = table.open_count[leader] + np.arange(int(n))
        total += float(load_weight * model.load_fraction(ks, np.full(len(ks), table.capacity[leader])).sum())
    return total


def _window_docs(windows) -> list[dict]:
    return [{"day": w.day, "start": w.start, "end": w.end} for w in windows]


def _seed_read_model(db, org: str, people, guides) -> None:
    """matching's read model as its handlers keep it from intake's events."""
    db.leaders.insert_many([{
        "_id": read_model_key(org, g.leader_id), "organization_id": org, "leader_id": g.leader_id, "site_ids": list(g.site_ids),
        "status": "active", "time_zone": g.time_zone, "languages": g.languages, "gender": g.gender,
        "meets_virtually": g.meets_virtually, "availability": _window_docs(g.availability), "capacity": g.capacity,
        "open_count": 0, "substances": g.substances, "pathways": g.pathways,
        "lived_experience_areas": g.lived_experience_areas, "certified": True, "certified_until": None,
        "co_occurring_mental_health_experience": g.co_occurring_mental_health_experience} for g in guides])
    for start in range(0, len(people), 1000):
        db.members.insert_many([{
            "_id": read_model_key(org, m.member_id), "organization_id": org, "member_id": m.member_id, "site_id": m.site_id,
            "status": "active", "time_zone": m.time_zone, "languages": m.languages,
            "leader_gender_preference": m.leader_gender_preference, "meeting_mode": m.meeting_mode,
            "availability": _window_docs(m.availability), "substances": m.substances, "pathways": m.pathways,
            "co_occurring_mental_health": m.co_occurring_mental_health,
            "lived_experience_topics": m.lived_experience_topics, "matching_consent": True,
            "matching_consent_expires_at": None} for m in people[start:start + 1000]])


def batch_run_through_database(runs: int, members: int, leaders: int, mongo_uri: str) -> Figure:
    """matching.handlers.jobs.run_batch on a fresh database per run (plan in memory, then proposals written in
    transactions of 100 that re-check each pair, with their events in the outbox), against insert_many
    of the match documents it wrote (100 a call, no transaction) into the same server."""
    from matching.handlers import jobs
    from matching.repository import ensure_indexes
    from shared.mongo import connect

    people, guides = population(members, leaders)
    client = connect(mongo_uri)
    ours, raw, notes = [], [], {}
    try:
        for i in range(runs):
            db = client[f"bench_batch_run_{i}"]
            client.drop_database(db.name)
            ensure_indexes(db)
            _seed_read_model(db, "org-bench", people, guides)
            batch = {"_id": "run-1", "organization_id": "org-bench", "site_id": None, "status": "running"}
            db.batch_runs.insert_one(batch)
            result = {}
            ours.append(seconds(lambda: result.update(jobs.run_batch(client, db, batch))))
            written = list(db.matches.find({}, {"_id": 0}))
            target = db["raw_baseline"]
            raw.append(seconds(lambda: [target.insert_many([dict(d) for d in written[at:at + 100]])
                                        for at in range(0, len(written), 100)]))
            notes = {"members_considered": result["members_considered"], "matched": result["matched"],
                     "solve_seconds": round(result["solve_seconds"], 2),
                     "write_seconds": round(result["seconds"] - result["solve_seconds"], 2), "match_documents": len(written),
                     "outbox_events": db.outbox.count_documents({})}
            try:   # clean-up only: a drop that times out on a loaded machine must not lose the figures
                client.drop_database(db.name)
            except PyMongoError as exc:
                notes["clean_up_failed"] = repr(exc)[:200]
    finally:
        client.close()
    return Figure(f"matching.batch run {members}x{leaders} (database)", "time", "s", ours,
                  "raw insert_many of the same match documents", raw, higher_is_better=False, notes=notes)


def run(runs: int, quick: bool, mongo_uri: str | None = None) -> list[Figure]:
    figures = []
    sizes = [(1000, 50), (3000, 150)] if quick else [(1000, 50), (10000, 500)]
    for members, leaders in sizes:
        people, guides, table, weights, ctx, feasible, base = _problem(members, leaders)
        load_weight = weights["leader_load"]
        label = f"matching.batch {members}x{leaders}"
        result = {}

        def ours():
            result["a"] = model.assign(feasible, base, table.open_count, table.capacity, load_weight)

        ours_times = repeat(runs, lambda: seconds(ours))
        tracemalloc.start()
        ours()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        fresh = {solver: _solve_in_fresh_process(solver, members, leaders) for solver in ("ours", "slots")}
        exact = {}
        exact_times = repeat(1 if members > 5000 else runs, lambda: seconds(
            lambda: exact.setdefault("total", _dense_exact(feasible, base, table, load_weight))))
        # batch runs solve every candidate since round two; round one kept each member's best 25 (memory)
        trimmed = model.assign(feasible, base, table.open_count, table.capacity, load_weight,
                               candidates_per_member=25)
        greedy = model.greedy_assign(feasible, base + load_weight, table.remaining)
        greedy_total = objective(greedy.pairs, base, table, load_weight)
        assignment = result["a"]
        ours_total = objective(assignment.pairs, base, table, load_weight)
        counts = np.bincount(list(assignment.pairs.values()), minlength=len(guides))
        assert (counts <= table.remaining).all(), "capacity exceeded"
        assert all(feasible[m, l] for m, l in assignment.pairs.items()), "a hard rule was broken"
        figures.append(Figure(label, "time", "s", ours_times, "exact dense solver (scipy LSA)", exact_times,
                              higher_is_better=False,
                              notes={"peak_memory_mb": round(peak / 2**20, 1), "matched": len(assignment.pairs),
                                     "total_score": round(assignment.total_score, 6),
                                     "exact_optimum": round(exact["total"], 6),
                                     "difference": float(assignment.total_score - exact["total"]),
                                     "equals_optimum": abs(assignment.total_score - exact["total"]) < 1e-6,
                                     "round_one_total": round(fresh["slots"]["total"], 6),
                                     "greedy_total": round(greedy_total, 3),
                                     "total_with_25_candidates_per_member (round one's batch runs)": round(
                                         objective(trimmed.pairs, base, table, load_weight), 3)}))
        figures.append(Figure(label, "time, fresh process", "s", [fresh["ours"]["seconds"]],
                              "round one: sparse LAPJV over capacity slots", [fresh["slots"]["seconds"]],
                              higher_is_better=False))
        figures.append(Figure(label, "peak memory of the solve", "MB", [fresh["ours"]["growth_mb"]],
                              "round one: sparse LAPJV over capacity slots", [fresh["slots"]["growth_mb"]],
                              higher_is_better=False,
                              notes={"what": "growth of the resident set (VmHWM reset before the call), native included",
                                     "python_heap_peak_mb (tracemalloc, ours)": round(peak / 2**20, 1),
                                     "process_peak_mb": {k: round(v["process_peak_mb"], 1) for k, v in fresh.items()},
                                     "before_the_call_mb": {k: round(v["before_mb"], 1) for k, v in fresh.items()}}))
        figures.append(Figure(label, "total score", "points", [ours_total], "greedy first-come pass",
                              [greedy_total], notes={"exact_optimum": round(exact["total"], 3),
                                                     "greedy_matched": len(greedy.pairs)}))

    # One new member in an organization of 10,000 members and 500 leaders: score against every leader.
    people, guides = population(200, 500, seed=11)
    now = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
    ctx, weights = model.Context(now=now), model.normalise_weights(None)

    def propose_one():
        table = model.LeaderTable(guides, now)  # the use case builds the table per proposal
        evaluation = model.evaluate(people[0], table, weights, ctx)
        return int(np.argmax(np.where(evaluation.feasible, evaluation.score, -1)))

    single_table = model.LeaderTable(guides[:1], now)
    figures.append(Figure("matching.propose one member (500 leaders)", "time", "s",
                          repeat(max(runs, 5), lambda: seconds(propose_one)), "score one pair",
                          repeat(max(runs, 5), lambda: seconds(lambda: model.evaluate(people[0], single_table, weights, ctx))),
                          higher_is_better=False))
    if mongo_uri:
        members, leaders = (1000, 50) if quick else (10000, 500)
        figures.append(batch_run_through_database(runs if quick else 1, members, leaders, mongo_uri))
    return figures


if __name__ == "__main__":   # python -m bench.bench_matching solve ours|slots MEMBERS LEADERS (one fresh process)
    _, _, which, m_count, l_count = sys.argv
    print(json.dumps(_measure_one_solve(which, int(m_count), int(l_count))))
