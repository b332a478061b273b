"""A tiny PromQL evaluator for the simple expressions of deploy/prometheus/alerts.yml: not promtool (no
promtool binary or promtool-compatible rule tester is installed here; PyPI has none that runs rules).
Expressions are parsed by promql-parser (PyPI, a binding of the Rust parser Prometheus-compatible tools use),
so a syntax error fails as it would in Prometheus; this module then evaluates the parse tree on sample
series at a given time. Supported, and nothing else (anything else raises): instant selectors with
=, !=, =~, !~ matchers (5-minute lookback); range selectors inside delta/increase (last minus first sample in
the range: Prometheus extrapolates to the range's edges, which does not change whether the result is > 0)
and max_over_time/min_over_time; sum/max/min/count with ``by``; comparisons with a number (filters);
``and``/``or``/``unless`` with ``on(...)`` or all labels; parentheses.

Series are ``{frozenset(labels.items()): [(seconds, value), ...]}`` with ``__name__`` among the labels.
"""
from __future__ import annotations

import operator
import re

import promql_parser as p

LOOKBACK = 300.0
COMPARISONS = {">": operator.gt, "<": operator.lt, ">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne}
Vector = list  # [(labels: dict, value: float)]


def metric_names(expr) -> set[str]:
    """Every metric name a parsed expression selects."""
    names: set[str] = set()

    def visit(node):
        if isinstance(node, p.VectorSelector):
            names.add(node.name)
        elif isinstance(node, p.MatrixSelector):
            visit(node.vector_selector)
        for attr in ("lhs", "rhs", "expr"):
            if getattr(node, attr, None) is not None and not isinstance(getattr(node, attr), (str, int, float)):
                visit(getattr(node, attr))
        for arg in getattr(node, "args", None) or []:
            visit(arg)

    visit(expr)
    return names


def _matches(labels: dict, matchers) -> bool:
    for m in matchers.matchers:
        value, op = labels.get(m.name, ""), str(m.op).rsplit(".", 1)[-1]
        ok = {"Equal": value == m.value, "NotEqual": value != m.value,
              "Re": re.fullmatch(m.value, value) is not None, "NotRe": re.fullmatch(m.value, value) is None}[op]
        if not ok:
            return False
    if matchers.or_matchers:
        raise NotImplementedError("or-matchers")
    return True


def _select(series, selector, start: float, end: float):
    if selector.offset is not None or selector.at is not None:
        raise NotImplementedError("offset/@")
    for key, samples in series.items():
        labels = dict(key)
        if labels.get("__name__") == selector.name and _matches(labels, selector.matchers):
            window = [(ts, v) for ts, v in samples if start < ts <= end]
            if window:
                yield labels, window


def _signature(labels: dict, on: list[str] | None) -> tuple:
    if on is None:
        return tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))
    return tuple((k, labels.get(k, "")) for k in sorted(on))


def evaluate(expr, series, at: float):
    if isinstance(expr, p.NumberLiteral):
        return expr.val
    if isinstance(expr, p.ParenExpr):
        return evaluate(expr.expr, series, at)
    if isinstance(expr, p.VectorSelector):
        return [(labels, window[-1][1]) for labels, window in _select(series, expr, at - LOOKBACK, at)]
    if isinstance(expr, p.Call):
        name = expr.func.name
        (arg,) = expr.args
        if not isinstance(arg, p.MatrixSelector):
            raise NotImplementedError(f"{name} of a non-range argument")
        seconds = arg.range.total_seconds()
        reduce = {"delta": lambda w: w[-1][1] - w[0][1], "increase": lambda w: w[-1][1] - w[0][1],
                  "max_over_time": lambda w: max(v for _, v in w), "min_over_time": lambda w: min(v for _, v in w)}
        if name not in reduce:
            raise NotImplementedError(name)
        minimum = 2 if name in ("delta", "increase") else 1
        return [({k: v for k, v in labels.items() if k != "__name__"}, reduce[name](window))
                for labels, window in _select(series, arg.vector_selector, at - seconds, at) if len(window) >= minimum]
    if isinstance(expr, p.AggregateExpr):
        op = str(expr.op)
        if expr.param is not None or (expr.modifier is not None and str(expr.modifier.type).endswith("Without")):
            raise NotImplementedError("aggregation parameters / without")
        by = list(expr.modifier.labels) if expr.modifier is not None else []
        groups: dict[tuple, list[float]] = {}
        for labels, value in evaluate(expr.expr, series, at):
            groups.setdefault(tuple((k, labels.get(k, "")) for k in by), []).append(value)
        fold = {"sum": sum, "max": max, "min": min, "count": len}
        return [(dict(key), float(fold[op](values))) for key, values in groups.items()]
    if isinstance(expr, p.BinaryExpr):
        op = str(expr.op)
        modifier = expr.modifier
        if op in COMPARISONS:
            lhs, rhs = evaluate(expr.lhs, series, at), evaluate(expr.rhs, series, at)
            if not isinstance(rhs, float) or isinstance(lhs, float) or (modifier is not None and modifier.return_bool):
                raise NotImplementedError("comparisons other than vector-against-number filters")
            return [(labels, value) for labels, value in lhs if COMPARISONS[op](value, rhs)]
        if op in ("and", "or", "unless"):
            on = None
            if modifier is not None and modifier.matching is not None:
                if not str(modifier.matching.type).endswith("Include"):
                    raise NotImplementedError("ignoring(...)")
                on = list(modifier.matching.labels)
            lhs, rhs = evaluate(expr.lhs, series, at), evaluate(expr.rhs, series, at)
            right = {_signature(labels, on) for labels, _ in rhs}
            if op == "and":
                return [(l, v) for l, v in lhs if _signature(l, on) in right]
            if op == "unless":
                return [(l, v) for l, v in lhs if _signature(l, on) not in right]
            left = {_signature(l, on) for l, _ in lhs}
            return lhs + [(l, v) for l, v in rhs if _signature(l, on) not in left]
        raise NotImplementedError(f"operator {op}")
    raise NotImplementedError(type(expr).__name__)
