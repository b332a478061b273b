"""Measuring: repeated runs, medians with their spread, ratios against a baseline from the same run."""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable


@dataclass
class Figure:
    """One measured quantity next to its baseline. ``higher_is_better`` says how to read the ratio."""

    benchmark: str
    metric: str
    unit: str
    values: list[float]
    baseline_name: str
    baseline_values: list[float]
    higher_is_better: bool = True
    notes: dict = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def baseline_median(self) -> float:
        return statistics.median(self.baseline_values)

    @property
    def ratio(self) -> float:
        """Ours / baseline (throughput: above 1 is faster than the baseline; latency: above 1 is slower)."""
        return self.median / self.baseline_median if self.baseline_median else float("nan")

    @staticmethod
    def spread(values: list[float]) -> str:
        return f"{min(values):.4g}..{max(values):.4g}" if len(values) > 1 else "-"

    def as_dict(self) -> dict:
        return {**asdict(self), "median": self.median, "baseline_median": self.baseline_median, "ratio": self.ratio}


def repeat(runs: int, measure: Callable[[], float]) -> list[float]:
    return [measure() for _ in range(runs)]


def rate(count: int, action: Callable[[], None]) -> float:
    """Items per second of ``action`` that handles ``count`` items."""
    started = time.perf_counter()
    action()
    return count / (time.perf_counter() - started)


def seconds(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def table(figures: list[Figure]) -> str:
    header = ("benchmark", "metric", "ours (median)", "spread", "baseline", "baseline (median)", "ratio")
    rows = [header]
    for f in figures:
        rows.append((f.benchmark, f"{f.metric} [{f.unit}]", f"{f.median:.4g}", Figure.spread(f.values),
                     f.baseline_name, f"{f.baseline_median:.4g}", f"{f.ratio:.3f}"))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
