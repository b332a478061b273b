"""The benchmark's bookkeeping (bench/common.py) on tiny inputs: medians, spreads, ratios, the table and
the JSON shape. No timing is asserted: speed is measured by ./deploy/bench, never in tests."""
import json

from bench.common import Figure, rate, repeat, seconds, table
from bench.bench_latency import percentile


def test_figure_medians_ratio_and_spread():
    f = Figure("intake.register", "throughput", "members/s", [10.0, 30.0, 20.0], "raw insert", [100.0, 300.0, 200.0])
    assert f.median == 20.0
    assert f.baseline_median == 200.0
    assert f.ratio == 0.1
    assert Figure.spread(f.values) == "10..30"
    assert Figure.spread([5.0]) == "-"


def test_a_zero_baseline_gives_nan_not_an_error():
    f = Figure("x", "time", "s", [1.0], "nothing", [0.0], higher_is_better=False)
    assert f.ratio != f.ratio  # NaN


def test_table_lists_every_figure_under_a_header_and_json_round_trips():
    figures = [Figure("a.bench", "p50", "ms", [1.5, 2.5], "broker", [0.5, 0.5], higher_is_better=False,
                      notes={"requests": 3}),
               Figure("b.bench", "throughput", "events/s", [1000.0], "bare consumer", [4000.0])]
    text = table(figures)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["benchmark", "metric"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert "a.bench" in lines[2] and "p50 [ms]" in lines[2] and "4.000" in lines[2]
    assert "b.bench" in lines[3] and "0.250" in lines[3]
    data = json.loads(json.dumps([f.as_dict() for f in figures]))
    assert data[0]["ratio"] == 4.0 and data[0]["notes"] == {"requests": 3} and data[1]["median"] == 1000.0


def test_repeat_rate_and_seconds_call_the_action():
    calls = []
    values = repeat(3, lambda: rate(10, lambda: calls.append(1)))
    assert len(values) == 3 and len(calls) == 3 and all(v > 0 for v in values)
    assert seconds(lambda: None) >= 0


def test_nearest_rank_percentiles():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0, 1.0, 2.0], 99) == 3.0
    assert percentile([7.0], 50) == 7.0


def test_the_batch_run_benchmark_writes_one_match_per_matched_member(mongo_uri):
    """bench/bench_matching.py's whole-batch-run figure on a tiny organization, on the real database."""
    from bench.bench_matching import batch_run_through_database

    figure = batch_run_through_database(1, 60, 4, mongo_uri)
    assert len(figure.values) == 1 and len(figure.baseline_values) == 1
    assert figure.notes["members_considered"] == 60
    assert 0 < figure.notes["matched"] == figure.notes["match_documents"]
    assert figure.notes["outbox_events"] >= figure.notes["matched"]


def test_the_matching_solvers_measured_in_fresh_processes_reach_the_same_total():
    """bench/bench_matching.py's memory and round-one figures: one solve per new process (ours, then round
    one's slot LAPJV) on a small population; both are exact, so their totals agree."""
    from bench.bench_matching import _solve_in_fresh_process

    ours, slots = (_solve_in_fresh_process(solver, 120, 8) for solver in ("ours", "slots"))
    assert ours["total"] > 0 and abs(ours["total"] - slots["total"]) < 1e-6
    assert ours["process_peak_mb"] >= ours["before_mb"] > 0 and slots["process_peak_mb"] >= slots["before_mb"]
