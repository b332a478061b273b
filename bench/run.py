"""Run the benchmarks, print a table, write JSON.

    ./deploy/bench               (or: .venv/bin/python -m bench.run)   full run
    ./deploy/bench --quick       a few minutes on a 2-core machine
    ./deploy/bench --only matching
    ./deploy/bench --only reporting
    ./deploy/bench --only console    the console's pages with 10 coordinators at once, beside their API calls
    ./deploy/bench --only memory     every process's memory at rest and at 10 registrations/s
    ./deploy/bench --faults [--quick] 1,000 registrations at 10/s through a broker cut, SIGKILLs, a database stop

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
import traceback
from datetime import datetime, timezone
from pathlib import Path

from bench.common import table

RESULTS = Path(__file__).resolve().parent / "results"
BENCHMARKS = ("matching", "events", "intake", "seats", "reporting", "latency", "console", "reminders", "memory")
WHOLE_PLATFORM = ("latency", "console", "reminders", "memory")


def machine() -> dict:
    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer runs")
    parser.add_argument("--only", choices=BENCHMARKS, action="append", help="run only these (repeatable)")
    parser.add_argument("--runs", type=int, help="repetitions per figure (default 3 quick, 5 full)")
    parser.add_argument("--registrants",
                        help="registrants of the reminder benchmark's meeting, several sizes comma-separated, "
                             "measured one after another in one run (default 300 quick; 300,1000,5000 full)")
    parser.add_argument("--profile", action="store_true",
                        help="run the whole platform's workers under cProfile; profiles in bench/results/profiles")
    parser.add_argument("--faults", action="store_true",
                        help="faults at load (bench/bench_faults.py; not part of the default run)")
    parser.add_argument("--scenario", choices=("broker", "sigkill", "database"), action="append",
                        help="with --faults: only these fault scenarios (repeatable)")
    parser.add_argument("--py-spy", action="store_true",
                        help="memory: sample every platform process with py-spy during the 10/s load; "
                             "console: the database and the console's and intake's web workers during the first run")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 5)
    chosen = (args.only or ([] if args.faults else list(BENCHMARKS))) + (["faults"] if args.faults else [])
    figures = []
    state: dict = {"servers": None, "whole": None}  # what is running, stopped at the end whatever happens
    failures: dict[str, str] = {}
    started = time.monotonic()
    try:
        for name in chosen:
            print(f"[{time.monotonic() - started:6.1f}s] running {name} ...", flush=True)
            try:
                _run_one(name, args, runs, figures, state)
            except Exception as exc:  # noqa: BLE001 - one failing benchmark must not lose the others' figures
                traceback.print_exc()
                failures[name] = repr(exc)[:1000]
                print(f"[{time.monotonic() - started:6.1f}s] {name} FAILED: {exc!r}", flush=True)
    finally:
        if state["servers"]:
            _stop(state["servers"][2])
        if state["whole"] is not None:
            state["whole"].stop()
            if args.profile:
                _print_profiles()
    print()
    print(table(figures))
    for f in figures:
        if f.notes:
            print(f"  {f.benchmark} / {f.metric}: {f.notes}")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report = {"at": stamp, "quick": args.quick, "runs": runs, "machine": machine(),
              "figures": [f.as_dict() for f in figures], "failed": failures}
    for path in (RESULTS / f"{stamp}.json", RESULTS / "latest.json"):
        path.write_text(json.dumps(report, indent=2))
    for name, error in failures.items():
        print(f"  FAILED {name}: {error}")
    print(f"\nwrote {RESULTS / 'latest.json'} (and {stamp}.json) in {time.monotonic() - started:.0f}s")
    return 1 if failures else 0


def _run_one(name, args, runs, figures, state) -> None:
    if name == "faults":  # its own platform (the broker behind a proxy it cuts): the others are stopped first
        for key in ("servers", "whole"):
            running, state[key] = state[key], None
            if running is not None:
                _stop(running[2]) if key == "servers" else running.stop()
        from bench import bench_faults
        figures += bench_faults.run(args.quick, args.scenario)
        return
    if name == "matching":  # pure figures, and a whole batch run through the bare database
        from bench import bench_matching
        if state["servers"] is None:
            state["servers"] = _start_servers()
        figures += bench_matching.run(runs, args.quick, state["servers"][1])
        return
    if name in WHOLE_PLATFORM:
        if state["servers"]:  # the bare servers are done with: free the machine for the whole platform
            servers, state["servers"] = state["servers"], None
            _stop(servers[2])
        if state["whole"] is None:
            from bench.journeys import start_platform
            state["whole"] = start_platform()
            if args.profile:
                _profile_workers(state["whole"])
        if name == "latency":
            from bench import bench_latency
            figures += bench_latency.run(runs, args.quick, state["whole"])
        elif name == "console":
            from bench import bench_console
            figures += bench_console.run(runs, args.quick, state["whole"], py_spy=args.py_spy)
        elif name == "memory":
            from bench import bench_memory
            figures += bench_memory.run(runs, args.quick, state["whole"], py_spy=args.py_spy)
        else:
            from bench import bench_reminders
            figures += bench_reminders.run(runs, args.quick, state["whole"], registrants=args.registrants,
                                           py_spy=getattr(args, "py_spy", False))
        return
    if state["servers"] is None:
        state["servers"] = _start_servers()
    if name == "events":
        from bench import bench_events
        figures += bench_events.run(runs, args.quick, *state["servers"][:2])
    elif name == "intake":
        from bench import bench_intake
        figures += bench_intake.run(runs, args.quick, *state["servers"][:2])
    elif name == "seats":
        from bench import bench_seats
        figures += bench_seats.run(runs, args.quick, *state["servers"][:2])
    elif name == "reporting":
        from bench import bench_reporting
        figures += bench_reporting.run(runs, args.quick, *state["servers"][:2])


PROFILES = RESULTS / "profiles"


def _profile_workers(whole) -> None:
    """Restart each worker with every thread under cProfile (bench/profiled.py)."""
    PROFILES.mkdir(parents=True, exist_ok=True)
    inner = whole.platform
    for name, (command, env) in list(inner.commands.items()):
        if name.endswith("-worker"):
            module = command[command.index("-m") + 1]
            inner.commands[name] = ([sys.executable, "-m", "bench.profiled", str(PROFILES / name), module], env)
            whole.restart(name)


def _print_profiles(top: int = 30) -> None:
    """Write each busy thread's top functions (own time, then cumulative) to profiles/<file>.txt."""
    import io
    import pstats

    for path in sorted(PROFILES.glob("*.prof")):
        stats = pstats.Stats(str(path))
        if stats.total_tt < 1.0:  # idle threads (heartbeats, the main thread waiting)
            continue
        out = io.StringIO()
        for order in ("tottime", "cumulative"):
            pstats.Stats(str(path), stream=out).sort_stats(order).print_stats(top)
        path.with_suffix(".txt").write_text(out.getvalue())
        print(f"profile: {path.with_suffix('.txt')} ({stats.total_tt:.1f} s profiled)")


def _stop(servers) -> None:
    for server in servers:
        server.stop()


def _start_servers():
    from shared.devstack.servers import EmbeddedBroker, EmbeddedMongo
    from shared.messaging.kafka import ensure_topics

    folder = Path(tempfile.mkdtemp(prefix="recoverynet-bench-"))
    mongo = EmbeddedMongo(storage_path=folder / "mongo").start()
    broker = EmbeddedBroker().start()
    ensure_topics(broker.connection)
    return broker.bootstrap_servers, mongo.uri, [broker, mongo]


if __name__ == "__main__":
    sys.exit(main())
