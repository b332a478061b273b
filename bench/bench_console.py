"""The staff console under 10 coordinators clicking at once (issue 16, "Fast": server time p95 <= 300 ms per
page on the demo's organization), beside the API's own time for the same data.

On the whole platform (started as ./deploy/up starts it), the demo's organization is seeded with
``deploy.demo.seed`` and left to work (``deploy.demo.work``: matching proposes or waitlists everyone,
leaders accept, sessions are booked, notifications go out); ``--quick`` seeds a smaller one. Ten
coordinators (five per site, tokens for their site) get real console sessions, written into the
console's own session store by the console's own code, exactly as ``services/console/tests/browser/
conftest.py`` does (no email round trip). Then, for each run:

1. **console**: 10 threads, one per coordinator, each clicking (no pause) through Today, a page of the
   Members list, one member's page, Matching and the Meetings week, for ``rounds`` rounds. Each page's
   time is the response time of its HTTP request to the console (cookie only; redirects not followed: a
   redirect means the session is gone and fails the run; an error page, e.g. a 503 "part of the
   platform is not answering", is timed like any answer and counted in the notes). The console's own
   log line for the request (its ``ms``: from its before_request to its after_request, so without
   loading and saving the server-side session and without waiting for a free gunicorn thread) is read
   from ``console-web.log`` too, and given in the notes.
2. **baseline, the API's own time for the same data**: the same 10 threads and clicks, but each page is
   replaced by the API requests the console made for it, sent directly to the services with the same
   coordinator's token, one after another as the page sends them. Which requests a page makes is not
   written down here: each distinct page of the click path is rendered once beforehand by the console's
   own app in this process with ``Api.request`` recorded (same session, same token, same data).

3. **reading**: both again (half as many runs), but each coordinator reads each page for 1 to 3 s (random,
   seeded) before the next click, as people do; 1 and 2 are ten people clicking as fast as the platform
   answers, which is the platform's throughput more than a page's time.

During each run of 1, the CPU time every process of the platform spent (from /proc) is divided by the clicks:
``cpu_ms_per_click_by_process`` says where a click's work goes. ``--py-spy`` samples the database and the
console's and intake's web workers during the first run (bench/results/profiles/console-*.txt).

Reported per page: p50 and p95 (nearest rank over one run's clicks; each run one value of the figure),
ratio console / API, the 300 ms target and whether the p95 meets it, and how many API calls the page
makes per service (a page making tens of calls is the N+1 to look at).
"""
from __future__ import annotations

import json
import os
import random
import signal
import statistics
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import requests

from bench import py_spy as spy
from bench.bench_latency import percentile
from bench.common import Figure

PAGES = ("today", "members", "member", "matching", "meetings")
# the console's Flask endpoint of each page (its log names the endpoint, never the path)
ENDPOINTS = {"today": "home.index", "members": "members.index", "member": "members.show",
             "matching": "matching.index", "meetings": "meetings.week"}
TARGET_MS = 300.0
# The second way of clicking: each coordinator reads a page for 1 to 3 s before the next click (a fast reader).
# The first way (no pause at all) is 10 coordinators clicking as fast as the platform answers.
READING = (1.0, 3.0)
COORDINATORS = 10
LIST_PAGE = 25  # the console's members list page (console.views.members_words.PAGE_SIZE)


@dataclass
class Coordinator:
    index: int
    site_id: str
    token: str
    session_id: str
    member_ids: list[str] = field(default_factory=list)

    def clicks(self, round_: int) -> list[tuple[str, str]]:
        """(page, console path) of one round: a different list page and member each round."""
        pages = max(1, -(-len(self.member_ids) // LIST_PAGE))
        offset = ((self.index + round_) % pages) * LIST_PAGE
        member = self.member_ids[(self.index * 7 + round_ * 3) % len(self.member_ids)]
        return [("today", "/"), ("members", f"/members?offset={offset}" if offset else "/members"),
                ("member", f"/members/{member}"), ("matching", "/matching"), ("meetings", "/meetings")]


@dataclass
class Call:
    method: str
    service: str
    path: str
    params: dict | None
    json: dict | None
    status: str  # "ok", or "refused" when the console's client raised (a name intake would not give, a part left out)


# --- the organization and the coordinators' sessions ---------------------------------------------

def seed(platform, *, leaders: int, members: int, work: bool, timeout: float, say) -> tuple[dict, dict]:
    """The demo's organization (deploy/demo.py's own seeding), and what happened while seeding."""
    from deploy import demo

    started = time.monotonic()
    made = demo.seed(platform, leaders=leaders, members=members, say=say)
    notes = {"leaders": len(made["leaders"]), "members": len(made["members"]), "sites": len(made["sites"]),
             "meetings": len(made["meetings"]), "seed_s": round(time.monotonic() - started, 1)}
    if work:
        try:
            demo.work(platform, made, timeout=timeout, sessions=max(2, leaders // 2), say=say)
            notes["settled"] = True
        except TimeoutError as exc:  # measured on what there is, and said so
            say(f"  (the platform did not settle: {exc}; measuring the organization as it is)")
            notes["settled"] = False
        notes["seed_and_work_s"] = round(time.monotonic() - started, 1)
    return made, notes


def console_app(platform):
    """The console's own app in this process, on the platform's console database and services: it
    writes sessions as the sign-in callback does, and renders pages to record the API calls they make."""
    from console.app import create_app
    from console.config import Settings

    settings = Settings(mongo_uri=platform.mongo_uri("console"), secret_key=platform.platform.console_secret(),
                        log_level="WARNING", public_base_url=platform.url("console"),
                        **{f"{s}_url": platform.url(s) for s in ("intake", "matching", "scheduling", "notifications")})
    return create_app(settings, configure_logs=False)


def sign_in(app, token: str, role: str, organization_id: str, ttl_seconds: int):
    """A signed-in console session holding ``token`` (as services/console/tests/browser/conftest.py's
    ``sign_in_as``): (the test client holding its cookie, the session id)."""
    from console import sessions

    client = app.test_client()
    with client.session_transaction() as session:
        now = time.time()
        session[sessions.PERSON] = {"token": token, "role": role, "person_id": uuid.uuid4().hex,
                                    "organization_id": organization_id, "organization_name": None,
                                    "token_expires": now + ttl_seconds}
        session["started"] = session["seen"] = now
        session.permanent = True
    return client, client.get_cookie("console_session").value


def coordinators(platform, app, made: dict, count: int, ttl_seconds: int = 6 * 3600):
    """``count`` coordinators spread over the organization's sites: [(Coordinator, its in-process client)]."""
    org_id = made["organization_id"]
    out = []
    for i in range(count):
        site_id = made["sites"][i % len(made["sites"])]["id"]
        token = platform.token(org_id, "coordinator", sites=[site_id], ttl_seconds=ttl_seconds)
        client, sid = sign_in(app, token, "coordinator", org_id, ttl_seconds)
        members = platform.client("intake", token).all_items("/v1/members", site_id=site_id)
        ids = [m["id"] for m in members]
        if not ids:
            raise RuntimeError(f"site {site_id} has no members to click on")
        out.append((Coordinator(i, site_id, token, sid, ids), client))
    return out


# --- which API requests a page makes -------------------------------------------------------------------

def record_calls(client, path: str) -> list[Call]:
    """Render ``path`` with the console's app in this process; every request it sent to a service, the second
    time: what the console keeps for a person a few seconds (sites, names: ``Api.get_kept``, ``kept_records``)
    it asks for on the first click alone, and the clicking phase repeats each page within that time."""
    from console.api_client import Api

    calls: list[Call] = []
    real = Api.request

    def recording(self, method, service, path_, **kwargs):
        call = Call(method, service, path_, kwargs.get("params"), kwargs.get("json"), "refused")
        calls.append(call)
        result = real(self, method, service, path_, **kwargs)
        call.status = "ok"
        return result

    client.get(path)
    with mock.patch.object(Api, "request", recording):
        answer = client.get(path)
    if answer.status_code != 200:
        raise RuntimeError(f"the console answered {answer.status_code} to {path}: {answer.get_data(as_text=True)[:300]}")
    return calls


# --- the two phases ------------------------------------------------------------------------------------

class Failed(Exception):
    """An answer the click path cannot go on after (the console sent the coordinator to sign in)."""


def _clicking(people: list[Coordinator], rounds: int, one_click, pause: tuple[float, float] | None = None):
    """Every coordinator in its own thread, all at once, through ``rounds`` rounds of clicks; each click is
    ``one_click(session, coordinator, page, path)`` -> (seconds, None or what went wrong). An error answer
    (a 503 page, a 5xx of a service) is timed and counted, and the coordinator goes on clicking; an
    exception stops that coordinator. With ``pause`` (seconds, low and high) each coordinator reads each page
    for a random time in that range before the next click, and waits such a time before the first (seeded:
    the same pauses every run). Returns
    (times per page, errors per page, problems)."""
    times: dict[str, list[float]] = {p: [] for p in PAGES}
    errors: dict[str, list[str]] = {p: [] for p in PAGES}
    problems: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(len(people))

    def coordinator(person: Coordinator):
        http = requests.Session()
        reading = random.Random(person.index)
        try:
            start.wait(60)
            if pause:   # people reading pages do not click at the same instant: nor does the first click
                time.sleep(reading.uniform(*pause))
            for r in range(rounds):
                for page, path in person.clicks(r):
                    took, error = one_click(http, person, page, path)
                    if pause:
                        time.sleep(reading.uniform(*pause))
                    with lock:
                        times[page].append(took)
                        if error:
                            errors[page].append(error)
        except Exception as exc:  # noqa: BLE001 - reported by the run, never lost in a thread
            with lock:
                problems.append(f"coordinator {person.index}: {exc!r}"[:500])
        finally:
            http.close()

    threads = [threading.Thread(target=coordinator, args=(p,), name=f"coordinator-{p.index}") for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times, errors, problems


def console_phase(console_url: str, people: list[Coordinator], rounds: int, pause: tuple[float, float] | None = None):
    def click(http, person, page, path):
        began = time.perf_counter()
        answer = http.get(console_url + path, cookies={"console_session": person.session_id},
                          allow_redirects=False, timeout=120)
        took = time.perf_counter() - began
        if 300 <= answer.status_code < 400:
            raise Failed(f"the console answered {answer.status_code} to {path} (to {answer.headers.get('Location')})")
        if answer.status_code != 200:
            title = answer.text.split("<title>", 1)[-1].split("<", 1)[0].strip() if "<title>" in answer.text else ""
            return took, f"{answer.status_code} {title}"[:120]
        return took, None
    return _clicking(people, rounds, click, pause)


def api_phase(urls: dict[str, str], people: list[Coordinator], rounds: int, recorded: dict[tuple[int, str], list[Call]],
              pause: tuple[float, float] | None = None):
    def click(http, person, page, path):
        headers = {"Authorization": f"Bearer {person.token}", "Accept": "application/json"}
        error = None
        began = time.perf_counter()
        for call in recorded[(person.index, path)]:
            try:
                answer = http.request(call.method, urls[call.service] + call.path, params=call.params,
                                      json=call.json, headers=headers, timeout=120)
                answer.content  # noqa: B018 - read the whole body, as the console does
            except requests.RequestException as exc:
                error = f"{call.service}: {type(exc).__name__}"
                continue
            if answer.status_code >= 500:
                error = f"{call.service}: {answer.status_code}"
        return time.perf_counter() - began, error
    return _clicking(people, rounds, click, pause)


def cpu_seconds(platform) -> dict[str, float]:
    """CPU time (user + system) spent so far by each kind of process of the platform ("intake-web" adds up
    its gunicorn master and workers; "database", "broker"), from /proc: where a click's work goes."""
    from bench.bench_memory import platform_processes
    tick = os.sysconf("SC_CLK_TCK")
    out: Counter = Counter()
    for label, pid in platform_processes(platform).items():
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[label.split(" ")[0]] += (int(fields[11]) + int(fields[12])) / tick   # utime, stime
    return dict(out)


def _start_py_spy(platform) -> spy.Recorders:
    """py-spy on the database and on the console's and intake's web workers during the first measured run
    (the processes that spend most of a click's CPU; bench/results/profiles/console-*.txt)."""
    from bench.bench_memory import platform_processes
    pids = {label: pid for label, pid in platform_processes(platform).items()
            if label in ("database-intake", "database-console")
            or label.startswith(("console-web child", "intake-web child"))}
    return spy.record(pids, "console", 600, who="console")


def cpu_ms_per_click(before: dict[str, float], after: dict[str, float], clicks: int) -> dict[str, float]:
    spent = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    return {k: round(v * 1000 / max(1, clicks), 1) for k, v in sorted(spent.items(), key=lambda kv: -kv[1]) if v > 0}


def logged_ms(log: Path, since: int) -> tuple[dict[str, list[float]], int]:
    """The console's own timing (its "request" log lines, ``ms``) per page, from byte ``since`` of its
    log; and where the log ends now."""
    per_page: dict[str, list[float]] = {p: [] for p in PAGES}
    page_of = {endpoint: page for page, endpoint in ENDPOINTS.items()}
    if not log.exists():
        return per_page, since
    with open(log, "rb") as fh:
        fh.seek(since)
        data = fh.read()
    end = since + data.rfind(b"\n") + 1 if b"\n" in data else since
    for line in data[: end - since].splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # gunicorn's own lines
        if isinstance(entry, dict) and entry.get("message") == "request" and entry.get("endpoint") in page_of \
                and entry.get("status") == 200 and isinstance(entry.get("ms"), (int, float)):
            per_page[page_of[entry["endpoint"]]].append(float(entry["ms"]))
    return per_page, end


# --- figures ------------------------------------------------------------------------------------------------

def figures_of(per_run_console: list[dict[str, list[float]]], per_run_api: list[dict[str, list[float]]],
               per_run_logged: list[dict[str, list[float]]], recorded: dict[tuple[int, str], list[Call]],
               coordinators_: int, rounds: int, setup: dict, errors: dict | None = None,
               pause: tuple[float, float] | None = None) -> list[Figure]:
    """p50 and p95 per page (and of every click), each run one value, console beside the API. Error
    answers (``errors``: {"console"|"api": {page: [what]}}) are in the times, and counted in the notes."""
    figures = []
    for page in (*PAGES, "all"):
        def of(run: dict[str, list[float]]) -> list[float]:
            return [v for p in PAGES for v in run[p]] if page == "all" else run[page]
        calls = [len(c) for (_, path), c in recorded.items() if page == "all" or _page_of(path) == page]
        by_service = Counter(call.service for (_, path), c in recorded.items()
                             if page == "all" or _page_of(path) == page for call in c)
        pages_recorded = max(1, len(calls))
        everything = [v for run in per_run_console for v in of(run)]
        logged = [v for run in per_run_logged for v in of(run)]
        for p in (50, 95):
            values = [percentile(of(run), p) * 1000 for run in per_run_console if of(run)]
            base = [percentile(of(run), p) * 1000 for run in per_run_api if of(run)]
            notes = {}
            if p == 95:
                pooled = percentile(everything, 95) * 1000
                notes = {"target_ms": TARGET_MS, "p95_all_runs_ms": round(pooled, 1),
                         "meets_target": pooled <= TARGET_MS,
                         "console_logged_p50_ms": round(percentile(logged, 50), 1) if logged else None,
                         "console_logged_p95_ms": round(percentile(logged, 95), 1) if logged else None,
                         "api_calls_per_page": {"min": min(calls, default=0), "median": statistics.median(calls) if calls else 0,
                                                "max": max(calls, default=0)},
                         "api_calls_per_page_by_service": {s: round(n / pages_recorded, 1) for s, n in by_service.most_common()},
                         "clicks": len(everything)}
                for side, label in (("console", "console_error_answers"), ("api", "api_error_answers")):
                    found = [e for pg in PAGES if page in (pg, "all") for e in (errors or {}).get(side, {}).get(pg, [])]
                    notes[label] = dict(Counter(found))
            if p == 50 and page == "all":
                notes = {"coordinators": coordinators_, "rounds_per_run": rounds, "runs": len(per_run_console),
                         "think_time_s": list(pause) if pause else 0, **setup}
            reading = f", reading {pause[0]:g}-{pause[1]:g} s" if pause else ""
            figures.append(Figure(f"console.{page} @ {coordinators_} coordinators{reading}", f"p{p}", "ms", values,
                                  f"its API calls direct p{p}", base, higher_is_better=False, notes=notes))
    return figures


def _page_of(path: str) -> str:
    if path == "/":
        return "today"
    if path.startswith("/members?") or path == "/members":
        return "members"
    if path.startswith("/members/"):
        return "member"
    return path.strip("/").split("/")[0].split("?")[0]


# --- the benchmark ---------------------------------------------------------------------------------------

def run(runs: int, quick: bool, platform, *, coordinators_: int = COORDINATORS, rounds: int | None = None,
        leaders: int | None = None, members: int | None = None, work: bool = True, say=None,
        py_spy: bool = False, reading: tuple[float, float] = READING) -> list[Figure]:
    say = say or (lambda *a: print("  [console]", *a, flush=True))
    rounds = rounds or (2 if quick else 5)
    leaders = leaders or (6 if quick else 12)       # the demo: 12 leaders, 100 members (./deploy/demo)
    members = members or (40 if quick else 100)
    made, setup = seed(platform, leaders=leaders, members=members, work=work, timeout=120 if quick else 240, say=say)
    app = console_app(platform)
    people_and_clients = coordinators(platform, app, made, coordinators_)
    people = [p for p, _ in people_and_clients]
    # every distinct page of the click path, rendered once in this process: the API calls it makes
    recorded: dict[tuple[int, str], list[Call]] = {}
    for person, client in people_and_clients:
        for r in range(rounds):
            for _, path in person.clicks(r):
                if (person.index, path) not in recorded:
                    recorded[(person.index, path)] = record_calls(client, path)
    say(f"recorded the API calls of {len(recorded)} pages ({sum(map(len, recorded.values()))} calls)")
    console_url = platform.url("console")
    urls = {s: platform.url(s) for s in ("intake", "matching", "scheduling", "notifications")}
    log = platform.logs / "console-web.log"
    # one unmeasured round of each: connections, the console's workers and caches warm
    for _, _, problems in (console_phase(console_url, people, 1), api_phase(urls, people, 1, recorded)):
        if problems:
            raise RuntimeError("; ".join(problems[:5]))
    _, log_at = logged_ms(log, 0)
    rushed = Runs(runs)
    log_at = rushed.measure(platform, console_url, urls, people, rounds, recorded, log, log_at, say, py_spy=py_spy)
    # the median over the runs of each process's CPU per click: which process a click's time is spent in
    cpu = {k: round(statistics.median(run.get(k, 0.0) for run in rushed.cpu_per_click), 1)
           for k in sorted({k for run in rushed.cpu_per_click for k in run},
                           key=lambda k: -rushed.cpu_per_click[-1].get(k, 0.0))}
    say("CPU per click (ms, median of the runs): " + ", ".join(f"{k} {v}" for k, v in cpu.items())
        + f"; in all {sum(cpu.values()):.0f}")
    setup = {**setup, "cpu_ms_per_click_by_process": cpu, "cpu_ms_per_click": round(sum(cpu.values()), 1),
             **({"py_spy": rushed.profile} if rushed.profile else {})}
    # the same clicks by people who read each page before the next (console and API direct alike)
    reading_runs = Runs(max(1, runs // 2), pause=reading)
    reading_runs.measure(platform, console_url, urls, people, rounds, recorded, log, log_at, say)
    return (figures_of(rushed.console, rushed.api, rushed.logged, recorded, coordinators_, rounds, setup, rushed.errors)
            + figures_of(reading_runs.console, reading_runs.api, reading_runs.logged, recorded, coordinators_, rounds,
                         {}, reading_runs.errors, pause=reading))


@dataclass
class Runs:
    """``count`` runs of the click path, through the console then by its API calls direct, with ``pause``
    between clicks (None: none): each run's times per page, the console's logged times, error answers, and
    each process's CPU per click during the console's clicks."""
    count: int
    pause: tuple[float, float] | None = None
    console: list[dict[str, list[float]]] = field(default_factory=list)
    api: list[dict[str, list[float]]] = field(default_factory=list)
    logged: list[dict[str, list[float]]] = field(default_factory=list)
    errors: dict[str, dict[str, list[str]]] = field(
        default_factory=lambda: {"console": {p: [] for p in PAGES}, "api": {p: [] for p in PAGES}})
    cpu_per_click: list[dict[str, float]] = field(default_factory=list)
    profile: dict = field(default_factory=dict)

    def measure(self, platform, console_url: str, urls: dict[str, str], people: list[Coordinator], rounds: int,
                recorded: dict[tuple[int, str], list[Call]], log: Path, log_at: int, say, *,
                py_spy: bool = False) -> int:
        """Run them all; returns where the console's log ends now. ``py_spy`` profiles the first run."""
        for i in range(self.count):
            cpu_before = cpu_seconds(platform)
            recorders = _start_py_spy(platform) if py_spy and i == 0 else []
            console_times, console_errors, problems = console_phase(console_url, people, rounds, self.pause)
            if recorders:
                for _, proc, _ in recorders:
                    proc.send_signal(signal.SIGINT)   # py-spy writes what it has sampled when interrupted
                self.profile = spy.summarize(recorders, top=30, wait=30)
            self.cpu_per_click.append(cpu_ms_per_click(cpu_before, cpu_seconds(platform),
                                                       sum(len(v) for v in console_times.values())))
            logged, log_at = logged_ms(log, log_at)
            api_times, api_errors, api_problems = api_phase(urls, people, rounds, recorded, self.pause)
            if problems or api_problems:
                raise RuntimeError("; ".join((problems + api_problems)[:5]))
            self.console.append(console_times)
            self.api.append(api_times)
            self.logged.append(logged)
            for page in PAGES:
                self.errors["console"][page] += console_errors[page]
                self.errors["api"][page] += api_errors[page]
            way = f"reading {self.pause[0]:g}-{self.pause[1]:g} s, " if self.pause else ""
            say(f"{way}run {i + 1}/{self.count}: console p95 " + ", ".join(
                f"{p} {percentile(console_times[p], 95) * 1000:.0f}" for p in PAGES) + " ms; API p95 " + ", ".join(
                f"{p} {percentile(api_times[p], 95) * 1000:.0f}" for p in PAGES) + " ms")
        return log_at
