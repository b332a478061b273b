"""Intake write path: members registered per second through intake's HTTP API (its gunicorn web process,
started as the local runner starts it, with the configured workers and threads) by concurrent clients,
against two baselines on the same database server, by the same number of concurrent threads:

- raw pymongo inserts of the same member documents plus their outbox entries, no transaction;
- (issue 20) every document a registration writes (identity claims, member, consent log, outbox entries,
  audit entry), as intake wrote them (new ids), inserted in ONE transaction per member: what a
  registration must cost on this server whatever our code does.

What the API does per member that the baselines do not: authenticate the token, validate and normalise
the body (email, phone, languages, availability), read the organization and site, look up the identities
(duplicate guard), number the outbox entries in their key's lane (shared.messaging.outbox), JSON logging.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import requests

from bench.common import Figure
from shared.auth import issue_token
from shared.devstack.servers import free_port
from shared.mongo import connect, find_in

CONSENTS = [{"purpose": "matching"}, {"purpose": "notify:email"}]


def member_body(site_id: str, i: int, tag: str) -> dict:
    return {
        "site_id": site_id, "first_name": "Alex", "last_name": f"Rivera{i}", "email": f"alex.{tag}.{i}@example.org",
        "date_of_birth": "1990-04-02", "languages": ["en"], "contact_channels": ["email"],
        "availability": [{"day": 1, "start": "18:00", "end": "20:00"}], "substances": ["alcohol"],
        "pathways": ["smart"], "co_occurring_mental_health": "no", "lived_experience_topics": ["parenting"],
        "meeting_mode": "either", "consents": CONSENTS,
    }


class IntakeWeb:
    """intake's gunicorn web process only (no worker: the write path does not need the relay), started
    with the local runner's environment and command (deploy.local.Platform)."""

    def __init__(self, bootstrap: str, mongo_uri: str):
        from deploy.local import Platform, Ports

        self.var = Path(tempfile.mkdtemp(prefix="recoverynet-bench-intake-"))
        (self.var / "logs").mkdir()
        self.platform = Platform(var=self.var, ports=Ports(base=free_port()),
                                 broker=SimpleNamespace(bootstrap_servers=bootstrap),
                                 mongos={"intake": SimpleNamespace(uri=mongo_uri)})
        self.url = f"http://127.0.0.1:{self.platform.ports.web('intake')}"

    def start(self) -> "IntakeWeb":
        from deploy.local import ROOT

        env = self.platform.environment("intake")
        subprocess.run([sys.executable, "-m", "deploy.setup"], env=env, cwd=ROOT, check=True,
                       stdout=open(self.var / "logs" / "setup.log", "ab"), stderr=subprocess.STDOUT)
        self.process = self.platform.spawn("intake-web", [
            sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "intake.app:create_app()"], env)
        self.workers = env.get("WEB_CONCURRENCY", "2")
        self.threads = env.get("WEB_THREADS", "4")
        deadline = time.monotonic() + 90
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"intake-web exited; see {self.var / 'logs'}")
            try:
                if requests.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("intake-web was not ready in 90 s")
            time.sleep(0.3)

    def token(self, org: str | None, role: str) -> str:
        return issue_token(self.platform.token_keys(), organization_id=org, role=role)

    def stop(self) -> None:
        self.platform.broker, self.platform.mongos = None, {}  # not ours to stop (bench.run started them)
        self.platform.stop()


def _register_all(url: str, token: str, bodies: list[dict], clients: int) -> list[str]:
    local = threading.local()
    headers = {"Authorization": f"Bearer {token}"}

    def one(body):
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        for _ in range(5):  # 503: the database did not answer in MONGO_TIMEOUT_MS, nothing changed; counts in the rate
            resp = session.post(url + "/v1/members", json=body, headers=headers, timeout=60)
            if resp.status_code != 503:
                break
            time.sleep(0.5)
        if resp.status_code != 201:
            raise RuntimeError(f"POST /v1/members answered {resp.status_code}: {resp.text[:500]}")
        return resp.json()["id"]

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, bodies))


def _raw_insert_all(db, docs: list[tuple[dict, list[dict]]], clients: int) -> None:
    def one(item):
        member, outbox = item
        db.members.insert_one(member)
        if outbox:
            db.outbox.insert_many(outbox, ordered=True)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, docs))


# What one registration writes, besides the member: {collection: field naming the member}.
WRITTEN_WITH_MEMBER = {"identities": "person_id", "consent_log": "member_id", "outbox": "key", "audit_log": "resource_id"}


def _written(intake_db, ids: list[str]) -> list[dict[str, list[dict]]]:
    """Per member (in ``ids`` order), every document its registration wrote, by collection."""
    found: dict[str, dict[str, list[dict]]] = {mid: {} for mid in ids}
    for doc in find_in(intake_db.members, "_id", ids):
        found[doc["_id"]]["members"] = [doc]
    for collection, field in WRITTEN_WITH_MEMBER.items():
        query = {"action": "create"} if collection == "audit_log" else None
        for doc in find_in(intake_db[collection], field, ids, query=query):
            found[doc[field]].setdefault(collection, []).append(doc)
    return [found[mid] for mid in ids]


def _fresh(written: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The same documents with new ids (and the member's new id wherever it was named)."""
    old = written["members"][0]["_id"]
    new = f"raw-{uuid.uuid4().hex}"
    fresh = {}
    for collection, docs in written.items():
        field = WRITTEN_WITH_MEMBER.get(collection, "_id")
        fresh[collection] = [{**d, "_id": new if d["_id"] == old else f"{d['_id']}-{new}", field: new} for d in docs]
    return fresh


def _copy_indexes(source, target) -> None:
    """intake's indexes of a collection, copied: their upkeep is part of what a write costs."""
    for name, spec in source.index_information().items():
        if name != "_id_":
            target.create_index(spec["key"], name=name, unique=spec.get("unique", False))


def _transaction_insert_all(client, db, docs: list[dict[str, list[dict]]], clients: int) -> None:
    """Each member's documents in one transaction (one insert per collection), ``clients`` at a time."""
    def one(written):
        def work(session):
            for collection, items in written.items():
                db[collection].insert_many(items, ordered=True, session=session)
        with client.start_session() as session:
            session.with_transaction(work)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, docs))


def run(runs: int, quick: bool, bootstrap: str, mongo_uri: str) -> list[Figure]:
    n = 200 if quick else 2000
    clients = 8
    web = IntakeWeb(bootstrap, mongo_uri).start()
    client = connect(mongo_uri)
    intake_db = client["recoverynet_intake"]
    try:
        org = f"bench-{uuid.uuid4().hex[:8]}"
        requests.post(web.url + "/v1/organizations", json={"id": org, "name": "Bench org"},
                      headers={"Authorization": f"Bearer {web.token(None, 'operator')}"}, timeout=30).raise_for_status()
        admin = web.token(org, "admin")
        site = requests.post(web.url + "/v1/sites", json={"name": "Main", "time_zone": "America/Chicago",
                                                          "virtual_only": False, "address": {"street": "1 Main St", "city": "Springfield"}},
                             headers={"Authorization": f"Bearer {admin}"}, timeout=30)
        site.raise_for_status()
        site_id = site.json()["id"]
        # Warm up: every gunicorn worker has connected to the database and loaded its app.
        _register_all(web.url, admin, [member_body(site_id, i, "warm") for i in range(20)], clients)

        ours, raw, transactional, per_member_docs, per_member_all = [], [], [], [], []
        for r in range(runs):
            tag = uuid.uuid4().hex[:8]
            bodies = [member_body(site_id, i, tag) for i in range(n)]
            started = time.perf_counter()
            ids = _register_all(web.url, admin, bodies, clients)
            ours.append(n / (time.perf_counter() - started))

            # The same documents, as intake wrote them, inserted raw (new ids) into a scratch database.
            members = {m["_id"]: m for m in find_in(intake_db.members, "_id", ids)}
            outbox: dict[str, list] = {}
            for entry in find_in(intake_db.outbox, "key", ids):
                outbox.setdefault(entry["key"], []).append(entry)
            docs = []
            for mid in ids:
                fresh = f"raw-{uuid.uuid4().hex}"
                entries = [{**e, "_id": f"{e['_id']}-{fresh}", "key": fresh} for e in outbox.get(mid, [])]
                docs.append(({**members[mid], "_id": fresh}, entries))
            per_member_docs.append(sum(1 + len(e) for _, e in docs) / n)
            scratch = client[f"bench_intake_raw_{tag}"]
            scratch.members.insert_one({"_id": "warm"})  # create the database and collections first
            scratch.outbox.insert_one({"_id": "warm"})
            started = time.perf_counter()
            _raw_insert_all(scratch, docs, clients)
            raw.append(n / (time.perf_counter() - started))
            client.drop_database(scratch.name)

            # Every document the registrations wrote, one transaction per member, into another scratch database.
            written = [_fresh(w) for w in _written(intake_db, ids)]
            per_member_all.append(sum(len(d) for w in written for d in w.values()) / n)
            scratch = client[f"bench_intake_txn_{tag}"]
            for collection in {c for w in written for c in w}:
                scratch.create_collection(collection)  # a transaction cannot always create one
                _copy_indexes(intake_db[collection], scratch[collection])
            started = time.perf_counter()
            _transaction_insert_all(client, scratch, written, clients)
            transactional.append(n / (time.perf_counter() - started))
            client.drop_database(scratch.name)
    finally:
        client.close()
        web.stop()
    notes = {"members_per_run": n, "concurrent_clients": clients, "gunicorn_workers": web.workers,
             "threads_per_worker": web.threads}
    return [Figure("intake.register member (API)", "throughput", "members/s", ours,
                   "raw pymongo insert (member + outbox)", raw,
                   notes={**notes, "documents_per_member_in_baseline": round(sum(per_member_docs) / len(per_member_docs), 1)}),
            Figure("intake.register member (API) vs transaction", "throughput", "members/s", ours,
                   "every document it writes, 1 transaction/member", transactional,
                   notes={**notes, "documents_per_member_in_baseline": round(sum(per_member_all) / len(per_member_all), 1),
                          "collections": ["members", *WRITTEN_WITH_MEMBER]})]
