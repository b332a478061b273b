"""Batch runs: every member who waits for a leader assigned optimally at once. Started by a person
(``start_batch_run``, a use case); planned in memory and written in small units of work by the job
(``jobs.run_batch``, the entry point), each unit re-checking its pairs (``write_chunk``)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from shared.clock import utcnow
from shared.unit_of_work import UnitOfWork

from matching import access, model
from matching.handlers.proposals import context, create_proposal, leader_table, waitlist
from matching.repository import Store, leader_from_doc, member_from_doc

BATCH_CANDIDATES_PER_MEMBER = None  # every feasible leader is a candidate: the min-cost flow solves 10,000 x 500
                                    # exactly (keeping each member's best 25 lost 41 points of 832,293 there)
BATCH_WRITE_CHUNK = 100


def start_batch_run(uow: UnitOfWork, org: str, principal, site_id: str | None, now: datetime | None = None) -> dict:
    now = now or utcnow()
    st = Store.of(uow)
    access.check_may_start_batch_run(st, org, principal, site_id)
    run = {"_id": str(uuid.uuid4()), "organization_id": org, "site_id": site_id, "status": "queued",
           "requested_by": principal.subject, "requested_by_role": principal.role, "created_at": now}
    st.insert_batch_run(run)
    return run


def waiting_members(st: Store, org: str, site_id: str | None, now: datetime) -> tuple[list[model.Member], set[str]]:
    """The members a run considers (no open match, consent, an eligible status), and those of them with a
    coordinator's pin (proposed one by one first: the pin decides when it passes the hard rules)."""
    members = [member_from_doc(d) for d in st.members_without_open_match(org, site_id)]
    members = [m for m in members if model.member_consent_ok(m, now) and m.status in model.ELIGIBLE_MEMBER_STATUSES]
    pinned_ids = {o["member_id"] for o in st.overrides(org, kinds=("pin",))}
    return members, pinned_ids


@dataclass
class Plan:
    """The in-memory assignment of a run: each member's leader (or none), and what the writes re-check."""
    org: str
    members: list[model.Member]
    pol: dict
    ctx: model.Context
    table: model.LeaderTable          # the leaders as planned
    write_table: model.LeaderTable    # the leaders as the writes find them (refreshed per chunk)
    pairs: dict[int, int]
    had_candidates: list[int]
    now: datetime

    def chunks(self) -> list[list[tuple[int, int | None]]]:
        plan = [(m_index, self.pairs.get(m_index)) for m_index in range(len(self.members))]
        return [plan[start:start + BATCH_WRITE_CHUNK] for start in range(0, len(plan), BATCH_WRITE_CHUNK)]


def plan(st: Store, org: str, members: list[model.Member], pol: dict, now: datetime) -> Plan:
    ctx = context(st, org, now)
    table = leader_table(st, org, now)
    rows, had_candidates = [], []
    for m in members:
        ev = model.evaluate(m, table, pol["weights"], ctx)
        rows.append((np.flatnonzero(ev.feasible), ev.base_score[ev.feasible]))
        had_candidates.append(int(ev.feasible.sum()))
    result = model.assign(rows, None, table.open_count, table.capacity, pol["weights"]["leader_load"],
                          candidates_per_member=BATCH_CANDIDATES_PER_MEMBER)
    return Plan(org, members, pol, ctx, table, leader_table(st, org, now), result.pairs, had_candidates, now)


def write_chunk(uow: UnitOfWork, p: Plan, chunk: list[tuple[int, int | None]]) -> list[tuple[str, str, object]]:
    """Propose the planned pairs of one chunk that still hold (a member may have been matched meanwhile, a
    leader may have filled up); waitlist the rest with the reason. Returns ("matched", member, score) or
    ("unmatched", member, entry) for each member written."""
    out: list[tuple[str, str, object]] = []
    st = Store.of(uow)
    org, pol, ctx, local = p.org, p.pol, p.ctx, p.write_table
    local.refresh_load({d["leader_id"]: leader_from_doc(d) for d in st.leaders(org)})
    deferred: list[dict] = []
    already = st.members_with_open_match(org, [p.members[m].member_id for m, _ in chunk])
    for m_index, l_index in chunk:
        member = p.members[m_index]
        if member.member_id in already:
            continue
        ev = model.evaluate(member, local, pol["weights"], ctx)
        target = None if l_index is None else local.index.get(p.table.leaders[l_index].leader_id)
        if target is not None and ev.feasible[target]:
            match = create_proposal(uow, st, org, member, local, ev, target, pol, ctx, "batch", p.now,
                                    deferred=deferred)
            local.remaining[target] -= 1
            out.append(("matched", member.member_id, match["score"]))
        else:
            if p.had_candidates[m_index] and ev.feasible.any():
                reason = ("Suitable leaders exist, but their places went to members the run could not "
                          "place elsewhere.")
                codes = ["no_capacity"]
            else:
                reason, codes = model.waitlist_reason(ev, local, ctx)
            waitlist(uow, st, org, member, reason, codes, now=p.now)
            out.append(("unmatched", member.member_id, {"member_id": member.member_id, "site_id": member.site_id,
                                                        "reason": reason, "reason_codes": codes}))
    st.write_proposals(org, deferred)
    return out
