"""A whole batch run on the real (embedded) database: plan + write every proposal and its event.

    .venv/bin/python services/matching/bench/bench_matching_batch_run.py 10000 500

Prints the run's result and timings, and the baseline of the same number of raw pymongo inserts of
the match documents on the same server, as a ratio (the database write cost dominates).
"""
import sys, time, tempfile
from pathlib import Path
sys.path.insert(0, "services/matching/bench"); sys.path.insert(0, "services/matching")
from bench_matching_assignment import population  # noqa: E402
from shared.testing.servers import EmbeddedMongo
from shared.mongo import connect
from matching.repository import ensure_indexes
from matching import handlers
d = tempfile.mkdtemp()
srv = EmbeddedMongo(storage_path=Path(d)/"data").start()
client = connect(srv.uri); db = client["bench"]; ensure_indexes(db)
N, L = int(sys.argv[1]), int(sys.argv[2])
members, leaders = population(N, L)
org = "org-bench"
def w(ws): return [{"day": x.day, "start": x.start, "end": x.end} for x in ws]
db.leaders.insert_many([{"_id": f"{org}/{l.leader_id}", "organization_id": org, "leader_id": l.leader_id, "site_ids": list(l.site_ids),
  "status": "active", "time_zone": l.time_zone, "languages": l.languages, "gender": l.gender, "meets_virtually": l.meets_virtually,
  "availability": w(l.availability), "capacity": l.capacity, "open_count": 0, "substances": l.substances, "pathways": l.pathways,
  "lived_experience_areas": l.lived_experience_areas, "certified": True, "certified_until": None,
  "co_occurring_mental_health_experience": l.co_occurring_mental_health_experience} for l in leaders])
db.members.insert_many([{"_id": f"{org}/{m.member_id}", "organization_id": org, "member_id": m.member_id, "site_id": m.site_id,
  "status": "active", "time_zone": m.time_zone, "languages": m.languages, "leader_gender_preference": m.leader_gender_preference,
  "meeting_mode": m.meeting_mode, "availability": w(m.availability), "substances": m.substances, "pathways": m.pathways,
  "co_occurring_mental_health": m.co_occurring_mental_health, "lived_experience_topics": m.lived_experience_topics,
  "matching_consent": True, "matching_consent_expires_at": None} for m in members])
run = {"_id": "r1", "organization_id": org, "site_id": None, "status": "running"}
db.batch_runs.insert_one(run)
t = time.perf_counter()
out = handlers.run_batch(client, db, run)
print({k: out[k] for k in ("members_considered", "matched", "total_score", "unmatched_count", "solve_seconds", "seconds")}, time.perf_counter() - t)
t = time.perf_counter()
raw = db["raw_baseline"]
docs = list(db.matches.find({}, {"_id": 0}))
for start in range(0, len(docs), 100):
    raw.insert_many([{**d} for d in docs[start:start + 100]])
baseline = time.perf_counter() - t
print(f"raw insert of {len(docs)} match documents: {baseline:.2f}s; batch run / raw inserts = {out['seconds'] / baseline:.2f}")
counts = {d["leader_id"]: (d["open_count"], d["capacity"]) for d in db.leaders.find()}
assert all(o <= c for o, c in counts.values())
print("outbox", db.outbox.count_documents({}))
client.close(); srv.stop()
