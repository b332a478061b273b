"""Run a module (a service's worker) with every thread under cProfile, for bench.run --profile.

    python -m bench.profiled OUT_PREFIX MODULE

cProfile alone only sees the main thread, and a worker's loops (consumer, relay, periodic jobs) run in
threads: each thread gets its own profiler, and each is written to OUT_PREFIX.<thread name>.prof when the
process stops cleanly (SIGTERM: the worker stops its loops and returns).
"""
from __future__ import annotations

import cProfile
import re
import runpy
import sys
import threading

_profiles: list[tuple[str, cProfile.Profile]] = []
_run = threading.Thread.run


def _profiled_run(self):
    profile = cProfile.Profile()
    _profiles.append((self.name, profile))
    profile.enable()
    try:
        _run(self)
    finally:
        profile.disable()


def main() -> None:
    prefix, module = sys.argv[1], sys.argv[2]
    threading.Thread.run = _profiled_run
    main_profile = cProfile.Profile()
    _profiles.append(("main", main_profile))
    sys.argv = [module, *sys.argv[3:]]
    main_profile.enable()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        main_profile.disable()
        for name, profile in _profiles:
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
            try:
                profile.dump_stats(f"{prefix}.{safe}.prof")
            except (TypeError, ValueError):  # a profile that never ran
                pass


if __name__ == "__main__":
    main()
