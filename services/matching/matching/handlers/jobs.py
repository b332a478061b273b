"""Matching's periodic work. Each job is an entry point: it opens its own units of work (one per change,
so each re-checks the state it read: safe in every worker copy) through the shared ``Repository``."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from shared.clock import utcnow
from shared.events.matching import MemberWaitingTooLong
from shared.repository import Repository

from matching.handlers import batch_runs
from matching.handlers.matches import expire_proposal, recheck_leader, recheck_member
from matching.handlers.proposals import iso, propose_for_member
from matching.handlers.settings import policy
from matching.repository import SOURCE, Store

log = logging.getLogger(__name__)


def repository(client, db) -> Repository:
    return Repository(client, db, source=SOURCE, store=Store)


def expire_due_proposals(client, db, now: datetime | None = None) -> int:
    now = now or utcnow()
    repo = repository(client, db)
    done = 0
    for doc in repo.reader().expired_proposals(now):
        if repo.transaction(lambda uow, mid=doc["_id"]: expire_proposal(uow, mid, now)):
            done += 1
    return done


def end_lapsed(client, db, now: datetime | None = None) -> int:
    """Certifications and matching consents expire with time, without any event: end those matches."""
    now = now or utcnow()
    today = datetime(now.year, now.month, now.day, tzinfo=now.tzinfo)
    repo = repository(client, db)
    st = repo.reader()
    lapsed_leaders = st.leaders_with_lapsed_certification(today)
    lapsed_members = st.members_with_lapsed_consent(now)
    for member in lapsed_members:
        st.remove_from_waitlist(member["organization_id"], member["member_id"])  # no wait without consent
    count = 0
    for leader in lapsed_leaders:
        repo.transaction(lambda uow, l=leader: recheck_leader(uow, l["organization_id"], l["leader_id"], now))
        count += 1
    for member in lapsed_members:
        if st.open_match(member["organization_id"], member["member_id"]):
            repo.transaction(lambda uow, m=member: recheck_member(uow, m["organization_id"], m["member_id"], now))
            count += 1
    return count


def alert_waiting_too_long(client, db, now: datetime | None = None) -> int:
    now = now or utcnow()
    repo = repository(client, db)
    st = repo.reader()
    sent = 0
    for org in st.organizations_with_unalerted_waits():
        days = policy(st, org)["waitlist_alert_days"]
        for entry in st.waiting_too_long(org, now - timedelta(days=days)):
            def work(uow, org=org, entry=entry):
                if not Store.of(uow).mark_alerted(entry, now):
                    return False
                uow.emit(MemberWaitingTooLong, {
                    "organization_id": org, "member_id": entry["member_id"], "site_id": entry["site_id"],
                    "reason": entry["reason"], "waiting_since": iso(entry["since"]),
                    "days_waiting": (now - entry["since"]).days})
                return True
            sent += bool(repo.transaction(work))
    return sent


def run_batch(client, db, run: dict, now: datetime | None = None) -> dict:
    """Assign every member of the organization (or site) who waits for a leader, optimally at once.
    Planned in memory, then written in small transactions that re-check each pair (a member may have
    been matched meanwhile, a leader may have filled up)."""
    started = time.perf_counter()
    now = now or utcnow()
    org, site_id = run["organization_id"], run.get("site_id")
    repo = repository(client, db)
    st = repo.reader()
    pol = policy(st, org)
    members, pinned_ids = batch_runs.waiting_members(st, org, site_id, now)
    considered = len(members)
    matched, total, unmatched = 0, 0.0, []
    for member in [m for m in members if m.member_id in pinned_ids]:
        made = repo.transaction(lambda uow, mid=member.member_id: propose_for_member(
            uow, org, mid, origin="batch", now=now))
        if made is not None:
            matched, total = matched + 1, total + made["score"]
        else:
            entry = st.waitlist_entry(org, member.member_id)
            if entry is not None:
                unmatched.append({"member_id": member.member_id, "site_id": member.site_id, "reason": entry["reason"],
                                  "reason_codes": entry.get("reason_codes", [])})
    plan = batch_runs.plan(st, org, [m for m in members if m.member_id not in pinned_ids], pol, now)
    solved = time.perf_counter()
    for chunk in plan.chunks():
        for kind, _member_id, value in repo.transaction(lambda uow, chunk=chunk: batch_runs.write_chunk(uow, plan, chunk)):
            if kind == "matched":
                matched += 1
                total += value
            else:
                unmatched.append(value)
    fields = {"status": "done", "finished_at": utcnow(), "members_considered": considered, "matched": matched,
              "total_score": round(total, 2), "unmatched_count": len(unmatched), "unmatched": unmatched[:5000],
              "solve_seconds": round(solved - started, 3), "seconds": round(time.perf_counter() - started, 3)}
    st.finish_batch_run(run["_id"], fields)
    return {**run, **fields}


def run_queued_batches(client, db, owner: str = "worker", now: datetime | None = None) -> int:
    st = repository(client, db).reader()
    st.requeue_stale_runs((now or utcnow()) - timedelta(minutes=30))
    done = 0
    while (run := st.claim_batch_run(now or utcnow(), owner)) is not None:
        try:
            run_batch(client, db, run, now)
        except Exception as exc:  # noqa: BLE001 - a failed run is recorded, the job goes on
            log.exception("batch run failed", extra={"run_id": run["_id"]})
            st.finish_batch_run(run["_id"], {"status": "failed", "error": repr(exc)[:500], "finished_at": utcnow()})
        done += 1
    return done
