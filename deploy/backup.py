"""Back up and restore every service's MongoDB database as folders of JSON lines (no mongodump needed: the
local run's SecantusDB speaks the MongoDB wire protocol only, and pymongo is all this uses).

    MONGO_URI=... python -m deploy.backup dump DIR          one folder per database, one .jsonl per collection
    MONGO_URI=... python -m deploy.backup restore DIR       into EMPTY databases (it refuses others)

``MONGO_URI_<SERVICE>`` (e.g. MONGO_URI_MATCHING) names the server of a service whose database is not on
``MONGO_URI``'s: the local runner gives each service a server of its own (``platform.environment("setup")``
sets them all).

Documents are written as MongoDB Extended JSON v2, canonical (bson.json_util, relaxed=False), so dates,
ObjectIds, Decimal128 and binary keep their types. Volatile collections are not dumped: ``leases`` (the
outbox relay's and jobs' leases: the restored platform's workers take new ones) and ``worker_status``
(heartbeats and lag of workers that no longer exist). Everything else is, the ``outbox`` and ``inbox``
included: an outbox entry not yet published when the dump was taken is published by the restored relay
(it was a committed change whose event had not left), published ones stay marked so; the inbox keeps the
ids of events already applied, so an event delivered again is skipped. What the dump cannot hold is the
broker's state: see docs/operating.md, "Backup and restore", for consumer offsets.

Restore creates each service's indexes first (as deploy.setup does), then inserts in batches, in order.
A dump is consistent per collection, not across them (no snapshot across collections): take it from a
quiet platform (stop the web and worker processes, or scale them to zero) for an exact copy.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from bson import json_util
from bson.json_util import JSONOptions, JSONMode

from shared.config import EnvReader
from shared.mongo import connect

# Every database the platform keeps (the console's holds only sign-in sessions: volatile, not backed up).
SERVICES = ("intake", "matching", "scheduling", "notifications", "reporting")
VOLATILE = {"leases", "worker_status"}
CANONICAL = JSONOptions(json_mode=JSONMode.CANONICAL)
BATCH = 500


def dump(client_of, prefix: str, folder: Path) -> dict:
    """Every service's database (``client_of(service)``: a client of the server holding it)."""
    folder.mkdir(parents=True, exist_ok=False)
    manifest = {"created_at": datetime.now(timezone.utc).isoformat(), "format": "extended-json-v2-canonical",
                "databases": {}}
    for service in SERVICES:
        name = f"{prefix}{service}"
        client = client_of(service)
        if name not in set(client.list_database_names()):
            continue
        db = client[name]
        (folder / name).mkdir()
        counts = {}
        for collection in sorted(db.list_collection_names()):
            if collection in VOLATILE or collection.startswith("system."):
                continue
            count = 0
            with open(folder / name / f"{collection}.jsonl", "w", encoding="utf-8") as out:
                for document in db[collection].find({}, sort=[("_id", 1)]):
                    out.write(json_util.dumps(document, json_options=CANONICAL) + "\n")
                    count += 1
            counts[collection] = count
        manifest["databases"][name] = {"service": service, "collections": counts}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def restore(client_of, prefix: str, folder: Path) -> dict:
    """The dump in ``folder`` into empty databases, each on ``client_of(service)``."""
    manifest = json.loads((folder / "manifest.json").read_text())
    targets = {}
    for name, entry in manifest["databases"].items():
        target = f"{prefix}{entry['service']}"
        db = client_of(entry["service"])[target]
        busy = [c for c in db.list_collection_names()
                if c not in VOLATILE and not c.startswith("system.") and db[c].estimated_document_count()]
        if busy:
            raise SystemExit(f"refusing to restore into {target}: it is not empty ({', '.join(sorted(busy))})")
        targets[name] = (entry, db)
    restored = {}
    for name, (entry, db) in targets.items():
        try:
            repository = importlib.import_module(f"{entry['service']}.repository")
        except ModuleNotFoundError:
            repository = None
        if repository is not None and hasattr(repository, "ensure_indexes"):
            repository.ensure_indexes(db)
        for collection, expected in entry["collections"].items():
            # documents ensure_indexes seeded (e.g. a counter at 0) are replaced by the dumped ones
            seeded = {doc["_id"] for doc in db[collection].find({}, {"_id": 1})}
            batch, count = [], 0
            with open(folder / name / f"{collection}.jsonl", encoding="utf-8") as lines:
                for line in lines:
                    document = json_util.loads(line, json_options=CANONICAL)
                    if document["_id"] in seeded:
                        db[collection].replace_one({"_id": document["_id"]}, document)
                        count += 1
                        continue
                    batch.append(document)
                    if len(batch) >= BATCH:
                        count += len(db[collection].insert_many(batch, ordered=True).inserted_ids)
                        batch = []
            if batch:
                count += len(db[collection].insert_many(batch, ordered=True).inserted_ids)
            if count != expected:
                raise SystemExit(f"{db.name}.{collection}: restored {count} documents, the dump says {expected}")
            restored[f"{db.name}.{collection}"] = count
    return restored


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.backup", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dump", help="write every service database to FOLDER (which must not exist)").add_argument("folder", type=Path)
    sub.add_parser("restore", help="load FOLDER into empty databases").add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    env = EnvReader()
    uris = env.mongo_uris(SERVICES)
    prefix = env.str("MONGO_DATABASE_PREFIX", "recoverynet_")
    env.done()
    clients = {uri: connect(uri) for uri in set(uris.values())}   # one client per server
    client_of = lambda service: clients[uris[service]]  # noqa: E731
    try:
        if args.command == "dump":
            manifest = dump(client_of, prefix, args.folder)
            total = sum(sum(d["collections"].values()) for d in manifest["databases"].values())
            print(f"dumped {total} documents of {len(manifest['databases'])} databases to {args.folder}")
        else:
            restored = restore(client_of, prefix, args.folder)
            print(f"restored {sum(restored.values())} documents into {len(restored)} collections")
    finally:
        for client in clients.values():
            client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
