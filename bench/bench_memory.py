"""Memory of the whole local platform (issue 20; ``./deploy/bench --only memory``), at rest and at 10
registrations a second, every process: broker, database, mail catcher, each gunicorn master and its web
workers (intake, matching, scheduling, notifications, reporting, console) and each service's worker.

Read from /proc: resident memory (VmRSS) and the proportional share (Pss, smaps_rollup: pages shared by
several processes, such as a gunicorn master's with its forked workers, are divided among them, so the Pss
of all processes adds up to what the platform really holds). The goal (1.5 GB in all) is the baseline of
the ratio. The same load gives the end-to-end figure at 10/s: request -> MatchProposed (p50, p99) against
the broker's produce->consume round trip, split by hop (request -> MemberRegistered on the members topic:
intake's transaction + relay; MemberRegistered -> MatchProposed: matching's consumer + relay).

With ``--py-spy`` every worker, web process and the database is sampled by py-spy during the load
(bench/results/profiles/pyspy-<process>.txt: the top functions by own samples and by samples including
callees; idle threads are not sampled).
"""
from __future__ import annotations

import os
import statistics
import threading
import time

from bench import py_spy
from bench.bench_faults import Load, Tap
from bench.bench_latency import broker_round_trips, percentile
from bench.common import Figure
from bench.journeys import Org
from shared.events.intake import MEMBERS, MemberRegistered
from shared.events.matching import MATCHES, MatchProposed

GOAL_MB = 1536.0
RATE = 10.0


# -- reading /proc -------------------------------------------------------------------------------------
def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out.setdefault(ppid, []).append(int(entry))
    return out


def platform_processes(whole) -> dict[str, int]:
    """{label: pid} of every process of the platform, children included (gunicorn's web workers)."""
    inner = whole.platform
    roots = [(name, p.pid) for name, p in inner.processes if p.poll() is None]
    roots += [("broker", inner.broker.process.pid),
              *((f"database-{owner}", mongo.process.pid) for owner, mongo in inner.mongos.items())]
    children = _children()
    out: dict[str, int] = {}
    for name, pid in roots:
        out[name if not name.endswith("-web") else f"{name} (gunicorn master)"] = pid
        stack, n = list(children.get(pid, [])), 0
        while stack:
            child = stack.pop(0)
            n += 1
            out[f"{name} child {n}"] = child
            stack += children.get(child, [])
    return out


def memory_of(pid: int) -> tuple[float, float] | None:
    """(RSS, PSS) in MB, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            rss = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
        pss = rss
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                pss = next(int(line.split()[1]) for line in fh if line.startswith("Pss:"))
        except (OSError, StopIteration):
            pass
        return rss / 1024, pss / 1024
    except (OSError, StopIteration):
        return None


def sample(whole) -> dict[str, tuple[float, float]]:
    return {label: m for label, pid in platform_processes(whole).items() if (m := memory_of(pid))}


class Sampler(threading.Thread):
    def __init__(self, whole, every: float = 1.0):
        super().__init__(daemon=True)
        self.whole, self.every = whole, every
        self.samples: list[dict[str, tuple[float, float]]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append(sample(self.whole))
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def totals(s: dict[str, tuple[float, float]]) -> tuple[float, float]:
    return sum(v[0] for v in s.values()), sum(v[1] for v in s.values())


# -- py-spy ----------------------------------------------------------------------------------------------
def start_py_spy(whole, seconds: float) -> py_spy.Recorders:
    """Every Python process of the platform (the broker is not Python; gunicorn masters only supervise)."""
    pids = {label: pid for label, pid in platform_processes(whole).items()
            if label not in ("broker", "mailcatcher") and not label.endswith("(gunicorn master)")}
    return py_spy.record(pids, "pyspy", seconds, who="memory")


def run(runs: int, quick: bool, whole, *, py_spy: bool = False) -> list[Figure]:
    seconds = 20 if quick else 60
    org = Org(whole)
    n = int(seconds * RATE)
    for _ in range(n // 100 + 2):
        org.leader(capacity=100)
    with Tap(whole.bootstrap_servers, [MEMBERS, MATCHES]) as tap:
        warm = Load(whole, org, 3, rate=2.0, tag="memwarm")
        warm.run()
        _wait_proposed(tap, set(warm.accepted), 120)
        time.sleep(3)
        rest = []
        for _ in range(5):  # at rest: the platform warm and idle
            rest.append(sample(whole))
            time.sleep(1)
        trips = broker_round_trips(whole.bootstrap_servers, 50)
        load = Load(whole, org, n, tag="mem")
        sampler = Sampler(whole)
        recorders = start_py_spy(whole, seconds) if py_spy else []
        sampler.start()
        load.run()
        proposed = _wait_proposed(tap, set(load.accepted), 180)
        sampler.stop()
        with tap._lock:
            arrivals = list(tap.arrivals)
    profile = py_spy.summarize(recorders, top=25, wait=60) if recorders else {}

    registered = {}
    for at, evt in arrivals:
        if evt.type == MemberRegistered.type:
            registered.setdefault(evt.key, at)
    to_proposal = [proposed[m] - load.started_at[i] for m, i in load.accepted.items() if m in proposed]
    hop1 = [registered[m] - load.started_at[i] for m, i in load.accepted.items() if m in registered]
    hop2 = [proposed[m] - registered[m] for m in load.accepted if m in registered and m in proposed]
    rtt50 = percentile(trips, 50)

    rest_labels = sorted({k for s in rest for k in s})
    rest_per = {k: round(statistics.median(s[k][0] for s in rest if k in s), 1) for k in rest_labels}
    rest_rss = [totals(s)[0] for s in rest]
    rest_pss = [totals(s)[1] for s in rest]
    load_samples = sampler.samples or [sample(whole)]
    load_rss = [totals(s)[0] for s in load_samples]
    load_pss = [totals(s)[1] for s in load_samples]
    peak_per = {}
    for s in load_samples:
        for k, (rss, _) in s.items():
            peak_per[k] = max(peak_per.get(k, 0.0), round(rss, 1))
    biggest = max(peak_per, key=peak_per.get)
    by_kind = _by_kind(peak_per)
    notes_rest = {"rss_mb_per_process": rest_per, "processes": len(rest_per),
                  "pss_total_mb": round(statistics.median(rest_pss), 1)}
    notes_load = {"peak_rss_mb_per_process": peak_per, "peak_rss_by_kind_mb": by_kind,
                  "largest": f"{biggest} ({peak_per[biggest]} MB)", "samples": len(load_samples),
                  "peak_rss_total_mb": round(max(load_rss), 1), "peak_pss_total_mb": round(max(load_pss), 1),
                  "registrations": n, "rate_per_s": RATE, "late_starts": load.late_starts,
                  "answers": load.answer_counts()["answers"]}
    figures = [
        Figure("memory.whole platform at rest", "RSS, all processes", "MB", rest_rss, "goal 1.5 GB", [GOAL_MB],
               higher_is_better=False, notes=notes_rest),
        Figure("memory.whole platform at rest", "PSS, all processes", "MB", rest_pss, "goal 1.5 GB", [GOAL_MB],
               higher_is_better=False),
        Figure(f"memory.whole platform @ {RATE:g} registrations/s", "RSS, all processes", "MB", load_rss,
               "goal 1.5 GB", [GOAL_MB], higher_is_better=False, notes=notes_load),
        Figure(f"memory.whole platform @ {RATE:g} registrations/s", "PSS, all processes", "MB", load_pss,
               "goal 1.5 GB", [GOAL_MB], higher_is_better=False),
    ]
    if to_proposal:
        hop_notes = {
            "requests": len(to_proposal), "broker_rtt_p50_ms": round(rtt50 * 1000, 2),
            "p50_request_to_MemberRegistered_ms": round(statistics.median(hop1) * 1000, 1) if hop1 else None,
            "p50_MemberRegistered_to_MatchProposed_ms": round(statistics.median(hop2) * 1000, 1) if hop2 else None,
            "p50_round_trips_per_hop": (round(statistics.median(hop1) / rtt50, 1) if hop1 else None,
                                        round(statistics.median(hop2) / rtt50, 1) if hop2 else None),
            "p99_request_to_MemberRegistered_ms": round(percentile(hop1, 99) * 1000, 1) if hop1 else None,
            "p99_MemberRegistered_to_MatchProposed_ms": round(percentile(hop2, 99) * 1000, 1) if hop2 else None,
            "py_spy": profile}
        for p in (50, 99):
            figures.append(Figure(f"e2e.request -> MatchProposed @ {RATE:g}/s (memory run, {len(to_proposal)} req)",
                                  f"p{p}", "ms", [percentile(to_proposal, p) * 1000], f"broker produce->consume p{p}",
                                  [percentile(trips, p) * 1000], higher_is_better=False,
                                  notes=hop_notes if p == 50 else {}))
    return figures


def _by_kind(per: dict[str, float]) -> dict[str, float]:
    kinds: dict[str, float] = {}
    for label, mb in per.items():
        kind = label.split(" ")[0]
        kinds[kind] = round(kinds.get(kind, 0.0) + mb, 1)
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]))


def _wait_proposed(tap: Tap, members: set[str], timeout: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        found = tap.first_arrival(lambda e: e.type == MatchProposed.type)
        if all(m in found for m in members) or time.monotonic() > deadline:
            return found
        time.sleep(0.3)
