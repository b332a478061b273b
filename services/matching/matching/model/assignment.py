"""The solver: the optimal capacitated assignment of many members to leaders at once, and the greedy
baseline it is measured against."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from ortools.graph.python.min_cost_flow import SimpleMinCostFlow

from matching.model.scoring import load_fraction

# Scores are floats; the solver's costs are integers. Each arc's score is multiplied by a power of two
# and rounded, chosen as large as the solver's cost range allows (it multiplies every cost by the number
# of nodes + 1 inside, in 64 bits; COST_HEADROOM keeps a margin below that). See ``assign`` for why
# rounding cannot change the optimum by more than a few millionths of a point in all.
COST_HEADROOM = 2 ** 58


@dataclass
class Assignment:
    pairs: dict[int, int]        # member index -> leader index
    total_score: float
    scores: dict[int, float]     # member index -> score of its pair (including the slot's load part)


def _candidate_arcs(feasible, base, candidates_per_member: int | None):
    """Every candidate pair as three flat arrays (member, leader, base score), member by member and, within
    a member, by leader index: the order the solver is given them, so equal inputs give equal answers."""
    if isinstance(feasible, np.ndarray) and not candidates_per_member:
        pm, pl = np.nonzero(feasible)
        return pm.astype(np.int64), pl.astype(np.int64), np.asarray(base, dtype=float)[pm, pl], feasible.shape[0]
    if isinstance(feasible, np.ndarray):
        rows_list = [(np.flatnonzero(feasible[m]), np.asarray(base[m], dtype=float)[feasible[m]])
                     for m in range(feasible.shape[0])]
    else:
        rows_list = list(feasible)
    pair_m, pair_l, pair_s = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
    for m, (leaders, scores) in enumerate(rows_list):
        leaders = np.asarray(leaders, dtype=np.int64)
        scores = np.asarray(scores, dtype=float)
        if candidates_per_member and len(leaders) > candidates_per_member:
            top = np.sort(np.argpartition(-scores, candidates_per_member - 1)[:candidates_per_member])
            leaders, scores = leaders[top], scores[top]
        order = np.argsort(leaders, kind="stable")
        pair_m.append(np.full(len(leaders), m, dtype=np.int64))
        pair_l.append(leaders[order])
        pair_s.append(scores[order])
    return np.concatenate(pair_m), np.concatenate(pair_l), np.concatenate(pair_s), len(rows_list)


def assign(feasible: np.ndarray | list, base: np.ndarray | list, open_count: Sequence[int], capacity: Sequence[int],
           load_weight: float, *, candidates_per_member: int | None = None) -> Assignment:
    """The best total score under every leader's capacity.

    ``feasible`` and ``base`` are M x L (or a list of M (leader index array, base score array) pairs,
    the sparse form, when ``candidates_per_member`` trimmed them). The k-th member a leader with ``open``
    open matches takes is worth the load part at ``open + k`` on top of the pair's base score, so filling
    a leader is worth less the fuller it gets (members are spread).

    Solved exactly as a min-cost flow (OR-tools' SimpleMinCostFlow, cost scaling): each member supplies
    one unit; it flows to a leader over a candidate arc (cost -base) and from that leader to the sink over
    one of the leader's free places (place k costs -load part at open + k: the load part falls as k grows,
    so the cheapest places fill first and any n members of a leader are worth exactly its first n places),
    or straight to the sink over the member's "stay waiting" arc (cost 0), so a member waits only when
    that raises the total. The graph has one arc per candidate pair, not one per pair and free place.

    Exactness: costs are the scores times SCALE (a power of two), rounded, so each arc is off by at most
    1/(2*SCALE). A flow uses at most 2 costed arcs per member, so any assignment's integer total is
    within M/SCALE of its true total, and the integer optimum is within 2*M/SCALE of the true optimum
    (SCALE is 2**38 at 10,000 members x 500 leaders with scores up to 100: within 0.0000001 points in
    all; the total reported is computed from the float scores). Ties are resolved deterministically: the solver
    gets the arcs in one fixed order (member, then leader index) and is itself deterministic."""
    open_count = np.asarray(open_count, dtype=np.int64)
    capacity = np.asarray(capacity, dtype=np.int64)
    remaining = np.maximum(capacity - open_count, 0)
    pm, pl, ps, n_members = _candidate_arcs(feasible, base, candidates_per_member)
    keep = remaining[pl] > 0
    pm, pl, ps = pm[keep], pl[keep], ps[keep]
    if len(pm) == 0:
        return Assignment({}, 0.0, {})
    n_leaders = len(remaining)
    # place k of leader l: load part = load_weight * load_fraction(open + k, capacity)
    slot_start = np.concatenate([[0], np.cumsum(remaining)]).astype(np.int64)
    slot_leader = np.repeat(np.arange(n_leaders, dtype=np.int64), remaining)
    slot_k = np.arange(len(slot_leader), dtype=np.int64) - slot_start[slot_leader]
    slot_load = load_weight * load_fraction(open_count[slot_leader] + slot_k, capacity[slot_leader])

    # Nodes: the members that have a candidate (compacted), then the leaders with room, then the sink.
    members = np.unique(pm)
    member_node = np.full(n_members, -1, dtype=np.int64)
    member_node[members] = np.arange(len(members))
    leaders = np.flatnonzero(remaining > 0)
    leader_node = np.full(n_leaders, -1, dtype=np.int64)
    leader_node[leaders] = len(members) + np.arange(len(leaders))
    sink = len(members) + len(leaders)
    n_nodes = sink + 1
    biggest = max(float(np.abs(ps).max()), float(np.abs(slot_load).max()) if len(slot_load) else 0.0, 1.0)
    scale = 2.0 ** np.floor(np.log2(COST_HEADROOM / (n_nodes + 1) / biggest))

    def cost(score):
        return -np.rint(np.asarray(score) * scale).astype(np.int64)

    n_pairs, n_slots = len(pm), len(slot_leader)
    tails = np.concatenate([member_node[pm], leader_node[slot_leader], np.arange(len(members))])
    heads = np.concatenate([leader_node[pl], np.full(n_slots + len(members), sink)])
    costs = np.concatenate([cost(ps), cost(slot_load), np.zeros(len(members), dtype=np.int64)])
    flow = SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(tails, heads, np.ones(len(tails), dtype=np.int64), costs)
    del tails, heads, costs
    supplies = np.ones(n_nodes, dtype=np.int64)
    supplies[len(members):sink] = 0
    supplies[sink] = -len(members)
    flow.set_nodes_supplies(np.arange(n_nodes), supplies)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"the min-cost flow solver answered {status!r} instead of an optimum")
    used = np.flatnonzero(flow.flows(np.arange(n_pairs)) > 0)
    # The k-th member (in member order) a leader takes gets place k's load part: the same total as any
    # other order, since the solver fills a leader's cheapest places first.
    m_used, l_used = pm[used], pl[used]
    by_leader = np.lexsort((m_used, l_used))
    m_used, l_used, s_used = m_used[by_leader], l_used[by_leader], ps[used][by_leader]
    first = np.concatenate([[0], np.flatnonzero(np.diff(l_used)) + 1]) if len(l_used) else np.zeros(0, dtype=np.int64)
    rank = np.arange(len(l_used)) - np.repeat(first, np.diff(np.concatenate([first, [len(l_used)]])))
    pair_score = s_used + slot_load[slot_start[l_used] + rank]
    order = np.argsort(m_used, kind="stable")
    pairs = {int(m): int(l) for m, l in zip(m_used[order], l_used[order])}
    scores_out = {int(m): float(s) for m, s in zip(m_used[order], pair_score[order])}
    return Assignment(pairs, float(sum(scores_out.values())), scores_out)


def greedy_assign(feasible: np.ndarray, score: np.ndarray, capacity_left: Sequence[int]) -> Assignment:
    """First come, first served: each member in turn takes their best leader with room (the baseline
    the optimal assignment is measured against; never used to decide anything)."""
    left = np.array(capacity_left, dtype=np.int64)
    pairs, scores = {}, {}
    for m in range(feasible.shape[0]):
        options = np.flatnonzero(feasible[m] & (left > 0))
        if len(options):
            best = options[np.argmax(score[m][options])]
            pairs[m], scores[m] = int(best), float(score[m][best])
            left[best] -= 1
    return Assignment(pairs, float(sum(scores.values())), scores)
