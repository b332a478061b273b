"""Run the benchmarks, print a table, write JSON.

    ./deploy/bench               (or: .venv/bin/python -m bench.run)   full run
    ./deploy/bench --quick       a few minutes on a 2-core machine
    ./deploy/bench --only matching

Every figure is a median of several runs with its spread, set beside a baseline measured in the same
run on the same servers, and reported as a ratio (see bench/README.md for how to read each).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.common import table

RESULTS = Path(__file__).resolve().parent / "results"
BENCHMARKS = ("matching", "events", "intake")


def machine() -> dict:
    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer runs")
    parser.add_argument("--only", choices=BENCHMARKS, action="append", help="run only these (repeatable)")
    parser.add_argument("--runs", type=int, help="repetitions per figure (default 3 quick, 5 full)")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 5)
    chosen = args.only or list(BENCHMARKS)
    figures = []
    servers = None
    started = time.monotonic()
    try:
        for name in chosen:
            print(f"[{time.monotonic() - started:6.1f}s] running {name} ...", flush=True)
            if name == "matching":
                from bench import bench_matching
                figures += bench_matching.run(runs, args.quick)
                continue
            if servers is None:
                servers = _start_servers()
            if name == "events":
                from bench import bench_events
                figures += bench_events.run(runs, args.quick, *servers[:2])
            elif name == "intake":
                from bench import bench_intake
                figures += bench_intake.run(runs, args.quick, *servers[:2])
    finally:
        if servers:
            for server in servers[2]:
                server.stop()
    print()
    print(table(figures))
    for f in figures:
        if f.notes:
            print(f"  {f.benchmark} / {f.metric}: {f.notes}")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report = {"at": stamp, "quick": args.quick, "runs": runs, "machine": machine(),
              "figures": [f.as_dict() for f in figures]}
    for path in (RESULTS / f"{stamp}.json", RESULTS / "latest.json"):
        path.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {RESULTS / 'latest.json'} (and {stamp}.json) in {time.monotonic() - started:.0f}s")
    return 0


def _start_servers():
    from shared.kafka import ensure_topics
    from shared.testing.servers import EmbeddedBroker, EmbeddedMongo

    folder = Path(tempfile.mkdtemp(prefix="recoverynet-bench-"))
    mongo = EmbeddedMongo(storage_path=folder / "mongo").start()
    broker = EmbeddedBroker().start()
    ensure_topics(broker.bootstrap_servers)
    return broker.bootstrap_servers, mongo.uri, [broker, mongo]


if __name__ == "__main__":
    sys.exit(main())
