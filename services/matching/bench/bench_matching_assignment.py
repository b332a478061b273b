"""Benchmark of matching's batch assignment (scoring + optimal capacitated assignment), pure, no servers.

    .venv/bin/python services/matching/bench/bench_matching_assignment.py [--json out.json]

Every figure is a ratio against a baseline measured in the same run: an exact dense solver
(scipy.optimize.linear_sum_assignment over every capacity slot) where it fits in memory, and the
greedy first-come pass for quality. Prints a table and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from matching import model  # noqa: E402

NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)
SUBSTANCES = ["alcohol", "opioids", "stimulants", "cannabis", "benzodiazepines"]
PATHWAYS = ["12-step", "smart", "faith", "medication-assisted", "harm-reduction"]
TOPICS = ["parenting", "grief", "trauma", "justice", "housing", "employment", "lgbtq"]
ZONES = ["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"]
LANGS = [["en"]] * 8 + [["es"], ["en", "es"]]


def population(n_members: int, n_leaders: int, seed: int = 1):
    rng = random.Random(seed)

    def windows(count=3):
        out = []
        for day in rng.sample(range(7), count):
            start = rng.choice([8, 10, 12, 14, 17, 18, 19])
            out.append(model.Window(day, f"{start:02d}:00", f"{start + 3:02d}:00"))
        return out

    sites = [f"site-{i}" for i in range(max(1, n_leaders // 25))]
    leaders = [model.Leader(
        leader_id=f"l{i}", site_ids=[rng.choice(sites)], time_zone=rng.choice(ZONES), languages=rng.choice(LANGS),
        gender=rng.choice(["female", "male"]), meets_virtually=rng.random() < 0.7, availability=windows(6),
        capacity=rng.randint(20, 25), substances=rng.sample(SUBSTANCES, 2), pathways=rng.sample(PATHWAYS, 1),
        lived_experience_areas=rng.sample(TOPICS, 3), certified=True,
        co_occurring_mental_health_experience=rng.random() < 0.5) for i in range(n_leaders)]
    members = [model.Member(
        member_id=f"m{i}", site_id=rng.choice(sites), time_zone=rng.choice(ZONES), languages=rng.choice(LANGS),
        leader_gender_preference=rng.choice([None, None, "female", "male"]),
        meeting_mode=rng.choice(["either", "virtual", "in_person"]), availability=windows(),
        substances=rng.sample(SUBSTANCES, 1), pathways=rng.sample(PATHWAYS, 1),
        lived_experience_topics=rng.sample(TOPICS, 2), co_occurring_mental_health=rng.choice(["yes", "no"]),
        matching_consent=True) for i in range(n_members)]
    return members, leaders


def score_all(members, leaders):
    table = model.LeaderTable(leaders, NOW)
    weights = model.normalise_weights(None)
    ctx = model.Context(now=NOW)
    rows = []
    for member in members:
        ev = model.evaluate(member, table, weights, ctx)
        rows.append((np.flatnonzero(ev.feasible), ev.base_score[ev.feasible]))
    return table, weights, rows


def dense_exact(rows, table, load_weight):
    remaining = np.maximum(table.capacity - table.open_count, 0)
    columns = [(l, k) for l in range(len(remaining)) for k in range(remaining[l])]
    n = len(rows)
    cost = np.full((n, len(columns) + n), 0.0)
    slot_of = {}
    for j, (l, k) in enumerate(columns):
        slot_of.setdefault(l, []).append((j, load_weight * max(0.0, 1 - (table.open_count[l] + k) / max(table.capacity[l], 1))))
    forbidden = -1e6
    cost[:, :len(columns)] = forbidden
    for m, (leaders, scores) in enumerate(rows):
        for l, s in zip(leaders, scores):
            for j, load in slot_of.get(int(l), []):
                cost[m, j] = s + load
    r, c = linear_sum_assignment(cost, maximize=True)
    return float(cost[r, c].sum())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", default="bench-matching-assignment.json")
    args = parser.parse_args()
    results = []

    # 1. Against the exact dense solver, where it fits in memory.
    members, leaders = population(1500, 60)
    table, weights, rows = score_all(members, leaders)
    t = time.perf_counter()
    exact = dense_exact(rows, table, weights["leader_load"])
    dense_s = time.perf_counter() - t
    t = time.perf_counter()
    ours = model.assign(rows, None, table.open_count, table.capacity, weights["leader_load"], candidates_per_member=25)
    ours_s = time.perf_counter() - t
    results.append({"case": "1500 members x 60 leaders", "baseline": "dense linear_sum_assignment (exact)",
                    "score_ratio": ours.total_score / exact, "time_ratio": ours_s / dense_s,
                    "ours_seconds": ours_s, "baseline_seconds": dense_s})

    # 2. The size the issue asks for: 10,000 members x 500 leaders (capacity 20-25).
    members, leaders = population(10_000, 500)
    t = time.perf_counter()
    table, weights, rows = score_all(members, leaders)
    score_s = time.perf_counter() - t
    t = time.perf_counter()
    ours = model.assign(rows, None, table.open_count, table.capacity, weights["leader_load"], candidates_per_member=25)
    assign_s = time.perf_counter() - t
    wide = model.assign(rows, None, table.open_count, table.capacity, weights["leader_load"], candidates_per_member=60)
    # Greedy baseline on the same slot scores (dense M x L score is fine at this size: 5M floats).
    feasible = np.zeros((len(rows), len(leaders)), dtype=bool)
    base = np.zeros((len(rows), len(leaders)))
    for m, (ls, ss) in enumerate(rows):
        feasible[m, ls] = True
        base[m, ls] = ss
    t = time.perf_counter()
    greedy = model.greedy_assign(feasible, base + weights["leader_load"] * 0.5, table.remaining)
    greedy_s = time.perf_counter() - t
    results.append({"case": "10000 members x 500 leaders", "baseline": "greedy first-come pass",
                    "score_ratio": ours.total_score / max(greedy.total_score, 1e-9),
                    "matched": len(ours.pairs), "greedy_matched": len(greedy.pairs),
                    "score_ratio_vs_60_candidates": ours.total_score / wide.total_score,
                    "time_ratio": (score_s + assign_s) / max(greedy_s, 1e-9),
                    "scoring_seconds": score_s, "assign_seconds": assign_s, "baseline_seconds": greedy_s})

    print(f"{'case':32} {'baseline':40} {'score ratio':>12} {'time ratio':>11}")
    for r in results:
        print(f"{r['case']:32} {r['baseline']:40} {r['score_ratio']:12.4f} {r['time_ratio']:11.2f}")
    print(f"10k x 500: scoring {results[1]['scoring_seconds']:.2f}s, assignment {results[1]['assign_seconds']:.2f}s, "
          f"matched {results[1]['matched']} (greedy {results[1]['greedy_matched']}), "
          f"25 vs 60 candidates/member: {results[1]['score_ratio_vs_60_candidates']:.6f}")
    Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
