"""The console benchmark (bench/bench_console.py): its bookkeeping on tiny inputs, and one tiny run on the
whole platform (a small demo organization, 2 coordinators, one round): every page of the click path
answers 200 through the console, its API calls are recorded and replayed, the figures are built. No
timing is asserted: speed is measured by ./deploy/bench, never in tests."""
import json

from bench import bench_console
from bench.bench_console import PAGES, Call, Coordinator


def test_each_round_clicks_the_five_pages_with_another_list_page_and_member():
    person = Coordinator(3, "site-1", "token", "sid", [f"m{i}" for i in range(60)])
    first, second = person.clicks(0), person.clicks(1)
    assert [page for page, _ in first] == list(PAGES)
    assert first[0][1] == "/" and first[3][1] == "/matching" and first[4][1] == "/meetings"
    assert first[1][1] != second[1][1] and first[2][1] != second[2][1]
    assert all(bench_console._page_of(path) == page for page, path in first + second)
    assert Coordinator(0, "s", "t", "x", ["only"]).clicks(5)[1] == ("members", "/members")


def test_the_consoles_own_timing_is_read_per_page_from_its_log(tmp_path):
    log = tmp_path / "console-web.log"
    lines = [{"message": "request", "endpoint": "home.index", "status": 200, "ms": 120.5},
             {"message": "request", "endpoint": "members.show", "status": 200, "ms": 80.0},
             {"message": "request", "endpoint": "members.show", "status": 404, "ms": 5.0},
             {"message": "request", "endpoint": "static", "status": 200, "ms": 1.0}]
    log.write_text("[gunicorn] Booting worker\n" + "\n".join(json.dumps(line) for line in lines) + "\n{\"message\": \"requ")
    per_page, end = bench_console.logged_ms(log, 0)
    assert per_page["today"] == [120.5] and per_page["member"] == [80.0] and per_page["matching"] == []
    assert end < log.stat().st_size  # the half-written last line is read next time
    with open(log, "a") as fh:
        fh.write('est", "endpoint": "matching.index", "status": 200, "ms": 300}\n')
    again, _ = bench_console.logged_ms(log, end)
    assert again["matching"] == [300.0] and again["today"] == []


def test_figures_set_each_page_beside_its_api_calls_and_say_whether_the_p95_meets_300_ms():
    run = {p: [0.1, 0.2, 0.4] for p in PAGES}
    api = {p: [0.05, 0.1, 0.2] for p in PAGES}
    logged = {p: [90.0, 150.0] for p in PAGES}
    recorded = {(0, "/"): [Call("GET", "intake", "/v1/members/x", None, None, "ok")] * 3,
                (0, "/matching"): [Call("GET", "matching", "/v1/matches", {}, None, "ok")]}
    errors = {"console": {p: [] for p in PAGES}, "api": {p: [] for p in PAGES}}
    errors["console"]["today"] = ["503 Part of the platform is not answering"] * 2
    figures = bench_console.figures_of([run, run], [api, api], [logged, logged], recorded, 10, 1, {"members": 3}, errors)
    assert len(figures) == 2 * (len(PAGES) + 1)
    today95 = next(f for f in figures if f.benchmark == "console.today @ 10 coordinators" and f.metric == "p95")
    assert today95.values == [400.0, 400.0] and today95.baseline_values == [200.0, 200.0] and today95.ratio == 2.0
    assert today95.notes["meets_target"] is False and today95.notes["api_calls_per_page_by_service"] == {"intake": 3.0}
    assert today95.notes["console_logged_p95_ms"] == 150.0
    assert today95.notes["console_error_answers"] == {"503 Part of the platform is not answering": 2}
    assert today95.notes["api_error_answers"] == {}
    everything = next(f for f in figures if f.benchmark.startswith("console.all") and f.metric == "p50")
    assert everything.notes["coordinators"] == 10 and everything.notes["members"] == 3


def test_a_tiny_run_on_the_whole_platform_clicks_every_page_through_the_console(platform):
    figures = bench_console.run(1, True, platform, coordinators_=2, rounds=1, leaders=3, members=10, work=False,
                                say=lambda *a: None, reading=(0.01, 0.02))
    reading = [f for f in figures if f.benchmark.endswith("reading 0.01-0.02 s")]
    assert len(reading) == 2 * (len(PAGES) + 1) == len(figures) - len(reading)
    assert next(f for f in reading if f.benchmark.startswith("console.all") and f.metric == "p50").notes[
        "think_time_s"] == [0.01, 0.02]
    everything = next(f for f in figures if f.benchmark == "console.all @ 2 coordinators" and f.metric == "p50")
    assert everything.notes["cpu_ms_per_click"] > 0 and everything.notes["cpu_ms_per_click_by_process"]["database-intake"] > 0
    by_page = {f.benchmark.split(" ")[0].split(".")[1]: f for f in figures if f.metric == "p95" and f not in reading}
    assert set(by_page) == {*PAGES, "all"}
    for page in PAGES:
        figure = by_page[page]
        assert len(figure.values) == 1 and figure.values[0] > 0 and figure.baseline_values[0] > 0
        assert figure.notes["clicks"] == 2 and figure.notes["api_calls_per_page"]["min"] >= 1
        assert figure.notes["console_logged_p95_ms"] is not None
        assert isinstance(figure.notes["console_error_answers"], dict)  # counted, not asserted (a loaded machine)
