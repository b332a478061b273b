"""Sample running processes with py-spy and summarise where their time goes (bench --py-spy).

One way for every benchmark that profiles a live platform: ``record`` starts one ``py-spy record`` per
process (raw folded stacks, 50 samples/s, busy threads only), ``summarize`` waits for them and writes, per
process, its top functions by own samples and including callees (``<output>.txt`` beside the raw file).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

PROFILES = Path(__file__).resolve().parent / "results" / "profiles"
Recorders = list[tuple[str, subprocess.Popen, Path]]


def binary() -> str | None:
    return shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")


def record(pids: dict[str, int], prefix: str, seconds: float, *, who: str) -> Recorders:
    """Start sampling each {label: pid} for ``seconds``; nothing (and a line saying so) without py-spy."""
    found = binary()
    if found is None:
        print(f"  {who}: py-spy is not installed (pip install py-spy): no profile", flush=True)
        return []
    PROFILES.mkdir(parents=True, exist_ok=True)
    out = []
    for label, pid in pids.items():
        path = PROFILES / f"{prefix}-{label.replace(' ', '_')}.raw"
        proc = subprocess.Popen([found, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "50",
                                 "--format", "raw", "--nonblocking", "--output", str(path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append((label, proc, path))
    return out


def summarize(recorders: Recorders, *, top: int = 30, top_own: int = 8, wait: float = 600) -> dict[str, dict]:
    """Each sampled process: its samples and top functions by own samples (also written as .txt)."""
    summary = {}
    for label, proc, path in recorders:
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            proc.kill()
        if not path.exists():
            continue
        own, inclusive, total = Counter(), Counter(), 0
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n, frames = int(count), [_short(f) for f in stack.split(";")]
            total += n
            own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
        if not total:
            continue
        lines = [f"{label}: {total} samples at 50/s (idle threads not sampled)", "", "own samples:"]
        lines += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
        lines += ["", "including callees:"] + [f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
        path.with_suffix(".txt").write_text("\n".join(lines) + "\n")
        summary[label] = {"samples": total, "top_own": [(f, round(n / total, 3)) for f, n in own.most_common(top_own)]}
    return summary


def _short(frame: str) -> str:
    """'func (path/to/module.py:12)' -> 'func (to/module.py)', so a function's lines add up."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({'/'.join(path.split('/')[-2:])})" if path else name
