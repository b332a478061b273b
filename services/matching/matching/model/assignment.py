"""The solver: the optimal capacitated assignment of many members to leaders at once, and the greedy
baseline it is measured against."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from matching.model.scoring import load_fraction

@dataclass
class Assignment:
    pairs: dict[int, int]        # member index -> leader index
    total_score: float
    scores: dict[int, float]     # member index -> score of its pair (including the slot's load part)


def assign(feasible: np.ndarray | list, base: np.ndarray | list, open_count: Sequence[int], capacity: Sequence[int],
           load_weight: float, *, candidates_per_member: int | None = None) -> Assignment:
    """The best total score under every leader's capacity.

    ``feasible`` and ``base`` are M x L (or a list of M (leader index array, base score array) pairs,
    the sparse form, when ``candidates_per_member`` trimmed them). A leader with ``r`` free places is
    expanded into ``r`` slots; slot ``k`` carries the load part the leader would have with ``k`` members
    more, so filling a leader costs more the fuller it gets (members are spread). Every member also has
    a private "stay waiting" column, so a full matching always exists and a member is left waiting only
    when that raises the total. Solved exactly on the sparse graph with scipy's LAPJVsp
    (min_weight_full_bipartite_matching)."""
    open_count = np.asarray(open_count, dtype=np.int64)
    capacity = np.asarray(capacity, dtype=np.int64)
    remaining = np.maximum(capacity - open_count, 0)
    slot_start = np.concatenate([[0], np.cumsum(remaining)]).astype(np.int64)
    n_slots = int(slot_start[-1])
    if isinstance(feasible, np.ndarray):
        rows_list = [(np.flatnonzero(feasible[m]), np.asarray(base[m], dtype=float)[feasible[m]])
                     for m in range(feasible.shape[0])]
    else:
        rows_list = list(feasible)
    n_members = len(rows_list)
    if n_members == 0:
        return Assignment({}, 0.0, {})
    # slot k of leader l: score = base + load_weight * (1 - (open + k) / capacity)
    slot_leader = np.repeat(np.arange(len(remaining)), remaining)
    slot_k = np.arange(n_slots) - slot_start[slot_leader]
    slot_load = load_weight * load_fraction(open_count[slot_leader] + slot_k, capacity[slot_leader])
    pair_m, pair_l, pair_s = [], [], []
    for m, (leaders, scores) in enumerate(rows_list):
        leaders = np.asarray(leaders, dtype=np.int64)
        scores = np.asarray(scores, dtype=float)
        if candidates_per_member and len(leaders) > candidates_per_member:
            top = np.argpartition(-scores, candidates_per_member - 1)[:candidates_per_member]
            leaders, scores = leaders[top], scores[top]
        pair_m.append(np.full(len(leaders), m, dtype=np.int64))
        pair_l.append(leaders)
        pair_s.append(scores)
    pm, pl, ps = (np.concatenate(pair_m), np.concatenate(pair_l), np.concatenate(pair_s))
    keep = remaining[pl] > 0
    pm, pl, ps = pm[keep], pl[keep], ps[keep]
    # Each candidate pair becomes one edge per free slot of its leader (vectorised expansion).
    counts = remaining[pl]
    n_edges = int(counts.sum())
    first_edge = np.cumsum(counts) - counts
    within = np.arange(n_edges, dtype=np.int64) - np.repeat(first_edge, counts)
    edge_cols = slot_start[np.repeat(pl, counts)] + within
    rows = [np.repeat(pm, counts)]
    cols = [edge_cols]
    vals = [np.repeat(ps, counts) + slot_load[edge_cols]]
    # Costs must be positive (explicit zeros would vanish from the sparse matrix): cost = BIG - score.
    big = 1000.0
    rows.append(np.arange(n_members, dtype=np.int64))
    cols.append(n_slots + np.arange(n_members, dtype=np.int64))
    vals.append(np.zeros(n_members))
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    graph = csr_matrix((big - v, (r, c)), shape=(n_members, n_slots + n_members))
    _, matched_col = min_weight_full_bipartite_matching(graph)
    graph.sort_indices()
    pairs, scores_out = {}, {}
    for m, col in enumerate(matched_col):
        col = int(col)
        if col < n_slots:
            pairs[m] = int(slot_leader[col])
            lo, hi = graph.indptr[m], graph.indptr[m + 1]
            at = lo + int(np.searchsorted(graph.indices[lo:hi], col))
            scores_out[m] = big - float(graph.data[at])
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
