"""Faults at load (issue 20; ``./deploy/bench --faults``, not in CI): the whole platform registers consenting
members (matching + notify:email) at 10 a second, open loop, while it is broken in the middle of the load:

- ``broker``: the broker is unreachable for 30 s (10 s quick). As in tests/reliability, the services reach
  the embedded broker through a TCP proxy (its advertised address) which is cut: every producer, consumer
  and group connection drops and new ones are refused, while the broker keeps its data. (Stopping Tansu
  itself would empty it: its storage is memory only, so a restart is a new, empty broker, not an outage.)
- ``sigkill``: every worker (intake, matching, scheduling, notifications, reporting) is killed with SIGKILL
  10 times (3 quick) at random instants of the load, each started again at once, as a supervisor would.
- ``database``: the database server is stopped for 20 s (10 s quick) and started again on the same port
  and data folder.
- ``none``: the same load with no fault, the baseline of the drain time.

For each: the answers (201; 503 with Retry-After, retried after it as a client would, counted apart as
fine; any other 5xx or no answer at all), and, per member accepted by the API: its outcome
(MatchProposed or MemberWaitlisted on the matches topic, read by a tap), its proposal email (the mail
catcher's folder) and the leader's; ``lost`` = accepted with no outcome or (when proposed) no email within
the drain deadline; ``doubled`` = two different proposals (match ids) for one member, or two different
emails (Message-IDs) of the same kind to one member, or more leader emails than proposals. The same email
sent again with the same Message-ID (a sender killed between the SMTP server's acceptance and its record)
is counted as ``resent`` (docs/reliability.md). ``drain`` = from the last answer of the load to the last
outcome or email.
"""
from __future__ import annotations

import email.parser
import json
import email.policy
import random
import statistics
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from email.utils import getaddresses
from pathlib import Path

import requests

from bench.common import Figure
from bench.journeys import Org, TimedTap
from deploy.platform_under_test import WEB_PROCESSES_AS_DEPLOYED, PlatformUnderTest
from shared.events.intake import MEMBERS, MemberRegistered
from shared.events.matching import MATCHES, MatchProposed, MemberWaitlisted
from shared.messaging.envelope import MalformedEvent, decode_record

SCENARIOS = ("none", "broker", "sigkill", "database")
WORKERS = ("intake-worker", "matching-worker", "scheduling-worker", "notifications-worker", "reporting-worker")
# As the fault tests (tests/reliability/conftest.py): a delivery tried before its contact arrived is retried
# after 3 s (default 30), and a sender killed mid-send leaves its delivery 'sending' for 60 s (default 120).
FAULT_ENV = {"NOTIFY_RETRY_BASE_SECONDS": "3", "NOTIFY_SENDING_LEASE_SECONDS": "60"}
RATE = 10.0
RESULTS = Path(__file__).resolve().parent / "results"


def sizes(quick: bool) -> dict:
    return ({"members": 200, "outage_s": 10.0, "kills_per_worker": 3, "drain_deadline_s": 360.0} if quick else
            {"members": 1000, "outage_s": 30.0, "db_outage_s": 20.0, "kills_per_worker": 10,
             "drain_deadline_s": 600.0})


def start_fault_platform(extra_env: dict | None = None) -> PlatformUnderTest:
    folder = Path(tempfile.mkdtemp(prefix="recoverynet-bench-faults-"))
    return PlatformUnderTest.start(folder, broker_behind_proxy=True, extra_env={**WEB_PROCESSES_AS_DEPLOYED, **FAULT_ENV, **(extra_env or {})})


# -- the load ------------------------------------------------------------------------------------------
class Load:
    """``n`` registrations at ``rate`` a second, open loop (each starts on its instant whatever the others
    do), in at most ``threads`` at once; each 503 is retried after its Retry-After (at most ``tries`` tries,
    ``give_up_s`` seconds), as a client would. Every answer is kept."""

    def __init__(self, platform, org: Org, n: int, rate: float = RATE, *, threads: int = 64, tries: int = 20,
                 give_up_s: float = 150.0, tag: str = "flt"):
        self.platform, self.org, self.n, self.rate = platform, org, n, rate
        self.threads, self.tries, self.give_up_s = threads, tries, give_up_s
        self.bodies = [org.member_body(["matching", "notify:email"], tag=tag) for _ in range(n)]
        self.answers: list[list[tuple]] = [[] for _ in range(n)]   # (status or "error ...", retry_after, at)
        self.started_at: list[float] = [0.0] * n
        self.accepted: dict[str, int] = {}                          # member id -> index
        self.email_of: dict[str, str] = {}                          # member id -> address
        self.late_starts = 0                                        # started > 1 s after their instant
        self.began = self.ended = 0.0
        self.errors: Counter = Counter()                            # "Type: message" of each try with no answer
        self._local = threading.local()
        self._lock = threading.Lock()

    def _one(self, i: int, due: float) -> None:
        session = getattr(self._local, "s", None) or requests.Session()
        self._local.s = session
        if time.time() - due > 1.0:
            with self._lock:
                self.late_starts += 1
        self.started_at[i] = time.time()
        url = self.platform.url("intake") + "/v1/members"
        headers = {"Authorization": f"Bearer {self.org.admin_token}"}
        give_up = time.monotonic() + self.give_up_s
        for _ in range(self.tries):
            try:
                resp = session.post(url, json=self.bodies[i], headers=headers, timeout=30)
            except requests.RequestException as exc:
                self.answers[i].append((f"error {type(exc).__name__}", None, time.time()))
                with self._lock:  # what the client saw: a refused connection, a reused one closed under it, a timeout
                    self.errors[f"{type(exc).__name__}: {str(exc)[-160:]}"] += 1
                if time.monotonic() > give_up:
                    return
                time.sleep(1)
                continue
            retry_after = resp.headers.get("Retry-After")
            self.answers[i].append((resp.status_code, retry_after, time.time()))
            try:
                body = resp.json() if "json" in resp.headers.get("Content-Type", "") else {}
            except ValueError:
                body = {}
            member_id = None
            if resp.status_code == 201:
                member_id = body["id"]
            elif resp.status_code == 409 and isinstance(body, dict) and body.get("existing"):
                existing = body["existing"]  # an earlier try was stored although its answer was lost
                member_id = existing.get("id") if isinstance(existing, dict) else existing
            if member_id:
                with self._lock:
                    self.accepted[member_id] = i
                    self.email_of[member_id] = self.bodies[i]["email"].lower()
                return
            if resp.status_code != 503 or time.monotonic() > give_up:
                return
            time.sleep(min(float(retry_after or 1), 5))

    def run(self) -> None:
        self.began = time.time()
        begin = time.perf_counter()
        with ThreadPoolExecutor(self.threads) as pool:
            futures = []
            for i in range(self.n):
                delay = begin + i / self.rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(self._one, i, self.began + i / self.rate))
            for f in futures:
                f.result()
        self.ended = max((a[-1][2] for a in self.answers if a), default=time.time())

    def answer_counts(self) -> dict:
        statuses = Counter()
        for tries in self.answers:
            for status, retry_after, _ in tries:
                if status == 503:
                    statuses["503 with Retry-After" if retry_after else "503 without Retry-After"] += 1
                else:
                    statuses[str(status)] += 1
        bad = sum(n for s, n in statuses.items()
                  if s == "503 without Retry-After" or s.startswith("error") or (s.isdigit() and int(s) >= 500))
        never = sum(1 for i in range(self.n) if i not in set(self.accepted.values()))
        return {"answers": dict(statuses), "5xx": bad, "never_accepted": never, "errors": dict(self.errors),
                "retried_503": sum(1 for t in self.answers if any(s == 503 for s, _, _ in t))}


# -- what came out -----------------------------------------------------------------------------------
class Tap(TimedTap):
    """TimedTap that keeps going through a cut broker (a poll error is noted, not fatal)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.poll_errors = 0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batches = self.consumer.poll(timeout_ms=100)
            except Exception:  # noqa: BLE001 - the broker is away: keep polling until it is back
                self.poll_errors += 1
                time.sleep(0.5)
                continue
            at = time.time()
            with self._lock:
                for records in batches.values():
                    for record in records:
                        try:
                            evt = decode_record(record.topic, record.key, record.value, record.headers,
                                                partition=record.partition, offset=record.offset)
                        except MalformedEvent:
                            continue
                        self.events.append(evt)
                        self.arrivals.append((at, evt))


class Mailbox:
    """The mail catcher's folder: (accepted at, recipients, Message-ID, subject) per file, read once."""

    def __init__(self, platform):
        self.folder = platform.platform.var / "mail"
        self._seen: dict[str, tuple[float, list[str], str, str]] = {}
        self._parser = email.parser.BytesHeaderParser(policy=email.policy.default)

    def scan(self) -> list[tuple[float, list[str], str, str]]:
        for path in self.folder.glob("*.eml"):
            if path.name in self._seen:
                continue
            with open(path, "rb") as fh:
                headers = self._parser.parse(fh)
            to = [a.lower() for _, a in getaddresses([str(h) for h in headers.get_all("To", [])])]
            self._seen[path.name] = (int(path.name.split("-")[0]) / 1e9, to, str(headers.get("Message-ID", "")),
                                     str(headers.get("Subject", "")))
        return list(self._seen.values())


def outcomes(load: Load, tap: Tap, mailbox: Mailbox, leader_emails: set[str], before: frozenset = frozenset()) -> dict:
    """Per accepted member: outcome events and emails, as they stand now (messages in ``before``, the
    warm-up's, left out)."""
    members = set(load.accepted)
    addresses = {load.email_of[m]: m for m in members}
    proposals: dict[str, set[str]] = {}
    proposal_events: Counter = Counter()
    waitlisted: set[str] = set()
    registered_at: dict[str, float] = {}
    outcome_at: dict[str, float] = {}
    with tap._lock:
        arrivals = list(tap.arrivals)
    for at, evt in arrivals:
        member = evt.key if isinstance(evt.key, str) else (evt.key.decode() if evt.key else None)
        if member not in members:
            continue
        if evt.type == MemberRegistered.type:
            registered_at.setdefault(member, at)
        elif evt.type == MatchProposed.type:
            proposals.setdefault(member, set()).add(evt.data.get("match_id") or evt.id)
            proposal_events[evt.id] += 1
            outcome_at.setdefault(member, at)
        elif evt.type == MemberWaitlisted.type:
            waitlisted.add(member)
            outcome_at.setdefault(member, at)
    member_mail: dict[str, Counter] = {}
    member_mail_at: dict[str, float] = {}
    leader_messages: Counter = Counter()
    last_leader_mail = 0.0
    since = load.began - 1
    for at, to, message_id, _subject in mailbox.scan():
        if at < since or message_id in before:
            continue
        for address in to:
            if address in addresses:
                m = addresses[address]
                member_mail.setdefault(m, Counter())[message_id] += 1
                member_mail_at.setdefault(m, at)
                member_mail_at[m] = min(member_mail_at[m], at)
            elif address in leader_emails:
                leader_messages[message_id] += 1
                last_leader_mail = max(last_leader_mail, at)
    no_outcome = [m for m in members if m not in proposals and m not in waitlisted]
    no_email = [m for m in members if m in proposals and m not in member_mail]
    return {
        "members": members, "proposals": proposals, "waitlisted": waitlisted, "no_outcome": no_outcome,
        "no_email": no_email, "member_mail": member_mail, "leader_messages": leader_messages,
        "proposal_events": proposal_events, "registered_at": registered_at, "outcome_at": outcome_at,
        "member_mail_at": member_mail_at, "last_leader_mail": last_leader_mail,
    }


def settled(state: dict) -> bool:
    """Every accepted member has an outcome, every proposed one its email, and the leaders one email per
    proposal (so nothing more is on its way)."""
    proposed = sum(len(p) for p in state["proposals"].values())
    return (not state["no_outcome"] and not state["no_email"]
            and len(state["leader_messages"]) >= proposed)


def verdict(load: Load, state: dict, matches_per_member: Counter | None) -> dict:
    doubled_proposals = {m: len(p) for m, p in state["proposals"].items() if len(p) > 1}
    if matches_per_member is not None:
        doubled_proposals.update({m: n for m, n in matches_per_member.items() if n > 1 and m in state["members"]})
    doubled_emails = {m: len(c) for m, c in state["member_mail"].items() if len(c) > 1}
    resent = sum(n - 1 for c in state["member_mail"].values() for n in c.values() if n > 1) + \
        sum(n - 1 for n in state["leader_messages"].values() if n > 1)
    proposed = sum(len(p) for p in state["proposals"].values())
    extra_leader = max(0, len(state["leader_messages"]) - proposed)
    lost = set(state["no_outcome"]) | set(state["no_email"])
    last = max([*state["outcome_at"].values(), *state["member_mail_at"].values(), state["last_leader_mail"], 0.0])
    to_proposal = [state["outcome_at"][m] - load.started_at[i] for m, i in load.accepted.items()
                   if m in state["outcome_at"]]
    to_email = [state["member_mail_at"][m] - load.started_at[i] for m, i in load.accepted.items()
                if m in state["member_mail_at"]]
    answers = load.answer_counts()
    return {
        "registrations": load.n, "accepted": len(load.accepted), "never_accepted": answers["never_accepted"],
        "lost": len(lost), "lost_no_outcome": len(state["no_outcome"]), "lost_no_email": len(state["no_email"]),
        "doubled": len(doubled_proposals) + len(doubled_emails) + extra_leader,
        "doubled_proposals": len(doubled_proposals), "doubled_member_emails": len(doubled_emails),
        "extra_leader_emails": extra_leader, "resent_same_message_id": resent,
        "proposal_events_published_twice": sum(1 for n in state["proposal_events"].values() if n > 1),
        "waitlisted": len(state["waitlisted"]),
        "5xx": answers["5xx"], "answers": answers["answers"], "no_answer_errors": answers["errors"],
        "registrations_retried_after_503": answers["retried_503"],
        "late_starts": load.late_starts,
        "load_s": round(load.ended - load.began, 1),
        "drain_s": round(last - load.ended, 1) if last else None,
        "p50_to_proposal_s": round(statistics.median(to_proposal), 2) if to_proposal else None,
        "max_to_proposal_s": round(max(to_proposal), 2) if to_proposal else None,
        "p50_to_email_s": round(statistics.median(to_email), 2) if to_email else None,
        "max_to_email_s": round(max(to_email), 2) if to_email else None,
    }


# -- the faults ------------------------------------------------------------------------------------------
class Fault(threading.Thread):
    """Breaks the platform while the load runs; ``log`` says what it did when (seconds after the start)."""

    def __init__(self, platform, scenario: str, duration: float, size: dict, rng: random.Random):
        super().__init__(daemon=True, name=f"fault-{scenario}")
        self.platform, self.scenario, self.duration, self.size, self.rng = platform, scenario, duration, size, rng
        self.log: list[tuple[float, str]] = []
        self.error: BaseException | None = None
        self.t0 = time.monotonic()

    def note(self, what: str) -> None:
        self.log.append((round(time.monotonic() - self.t0, 1), what))

    def run(self) -> None:
        try:
            getattr(self, f"_{self.scenario}")()
        except BaseException as exc:  # noqa: BLE001 - reported with the figures
            self.error = exc
            self.note(f"error {exc!r}")

    def _sleep_until(self, offset: float) -> None:
        time.sleep(max(0.0, self.t0 + offset - time.monotonic()))

    def _none(self) -> None:
        pass

    def _broker(self) -> None:
        outage = self.size["outage_s"]
        proxy = self.platform.platform.broker.proxy
        self._sleep_until(max(0.0, self.duration / 2 - outage / 2))
        proxy.cut()
        self.note("broker cut")
        try:
            self._sleep_until(self.log[-1][0] + outage)
        finally:
            proxy.restore()
            self.note("broker back")

    def _database(self) -> None:
        outage = self.size.get("db_outage_s", self.size["outage_s"])
        servers = list(self.platform.platform.mongos.values())   # every service's
        self._sleep_until(max(0.0, self.duration / 2 - outage / 2))
        for mongo in servers:
            mongo.stop()
        self.note("database stopped")
        try:
            self._sleep_until(self.log[-1][0] + outage)
        finally:
            self.note("database starting")
            for mongo in servers:
                mongo.start()
            self.note("database started")

    def _sigkill(self) -> None:
        kills = sorted((self.rng.uniform(0.05, 0.95) * self.duration, name)
                       for name in WORKERS for _ in range(self.size["kills_per_worker"]))
        for offset, name in kills:
            self._sleep_until(offset)
            process = self.platform.process(name)
            if process.poll() is None:
                process.kill()
                process.wait(10)
            self.platform.restart(name)  # at once, as a supervisor would
            self.note(f"killed {name}")


def run_scenario(platform, scenario: str, size: dict, rng: random.Random, *, leaders_capacity: int = 100) -> dict:
    n = size["members"]
    org = Org(platform)
    leaders = [org.leader(capacity=leaders_capacity) for _ in range(n // leaders_capacity + 2)]
    leader_emails = {leader["email"].lower() for leader in leaders}
    mailbox = Mailbox(platform)
    with Tap(platform.bootstrap_servers, [MEMBERS, MATCHES]) as tap:
        # warm: matching knows the leaders and every worker has joined its group before the load
        warm = Load(platform, org, 2, rate=2.0, tag="warm")
        warm.run()
        deadline = time.monotonic() + 180
        while not settled(outcomes(warm, tap, mailbox, leader_emails)):
            if time.monotonic() > deadline:
                raise TimeoutError("the warm-up members were not proposed and told within 180 s")
            time.sleep(0.5)
        before = frozenset(message_id for _, _, message_id, _ in mailbox.scan())
        load = Load(platform, org, n, tag=f"{scenario[:3]}")
        fault = Fault(platform, scenario, n / RATE, size, rng)
        fault.start()
        load.run()
        fault.join(120)
        deadline = load.ended + size["drain_deadline_s"]
        while True:
            state = outcomes(load, tap, mailbox, leader_emails, before)
            if settled(state) or time.time() > deadline:
                break
            time.sleep(1.0)
        # a moment more, to see anything arriving twice after the last awaited one
        time.sleep(3)
        state = outcomes(load, tap, mailbox, leader_emails, before)
        hops = [(state["registered_at"][m] - load.started_at[i], state["outcome_at"][m] - state["registered_at"][m])
                for m, i in load.accepted.items() if m in state["registered_at"] and m in state["outcome_at"]]
    try:
        # one count per match id: paging by offset while matching still writes can list a match on two pages
        listed = {m["id"]: m["member_id"] for m in org.client("matching").all_items("/v1/matches")}
        matches = Counter(listed.values())
    except Exception:  # noqa: BLE001 - the events still say it
        matches = None
    result = verdict(load, state, matches)
    result.update({"scenario": scenario, "fault_log": fault.log[:80], "fault_error": repr(fault.error) if fault.error else None,
                   "settled": settled(state), "tap_poll_errors": tap.poll_errors,
                   "p50_request_to_MemberRegistered_s": round(statistics.median(h[0] for h in hops), 3) if hops else None,
                   "p50_MemberRegistered_to_MatchProposed_s": round(statistics.median(h[1] for h in hops), 3) if hops else None})
    return result


def figures_of(results: dict[str, dict], size: dict) -> list[Figure]:
    base = results.get("none")
    figures = []
    results = {k: r for k, r in results.items() if "error" not in r}
    base = results.get("none")
    for scenario, r in results.items():
        if scenario == "none":
            continue
        label = {"broker": f"broker cut {size['outage_s']:g} s",
                 "sigkill": f"{size['kills_per_worker']} SIGKILLs per worker",
                 "database": f"database stopped {size.get('db_outage_s', size['outage_s']):g} s"}[scenario]
        name = f"faults.{label}, {size['members']} @ {RATE:g}/s"
        drain = r["drain_s"] if r["drain_s"] is not None else float("nan")
        base_drain = base["drain_s"] if base and base["drain_s"] is not None else float("nan")
        notes = {k: v for k, v in r.items() if k not in ("scenario",)}
        figures.append(Figure(name, "drain after the load", "s", [drain], "the same load, no fault", [base_drain],
                              higher_is_better=False, notes=notes))
        for metric in ("lost", "doubled", "5xx"):
            figures.append(Figure(name, metric, "registrations", [r[metric]], "the same load, no fault",
                                  [base[metric] if base else float("nan")], higher_is_better=False))
    if base:
        figures.append(Figure(f"faults.no fault, {size['members']} @ {RATE:g}/s", "drain after the load", "s",
                              [base["drain_s"] if base["drain_s"] is not None else float("nan")],
                              "(the baseline itself)", [base["drain_s"] or float("nan")], higher_is_better=False,
                              notes={k: v for k, v in base.items() if k != "scenario"}))
    return figures


def run(quick: bool, scenarios: list[str] | None = None, *, seed: int | None = None,
        size: dict | None = None) -> list[Figure]:
    """One run of each scenario (a fault run is too long to repeat; the spread is not measured)."""
    size = size or sizes(quick)
    chosen = ["none", *[s for s in (scenarios or SCENARIOS) if s != "none"]]
    seed = random.randrange(1 << 30) if seed is None else seed
    rng = random.Random(seed)
    print(f"  faults: {size}, seed {seed}", flush=True)
    results: dict[str, dict] = {}
    partial = RESULTS / f"faults-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    for scenario in chosen:
        # a platform of its own per scenario: what one scenario left queued must not slow the next
        started = time.monotonic()
        platform = start_fault_platform()
        try:
            results[scenario] = run_scenario(platform, scenario, size, rng)
        except Exception as exc:  # noqa: BLE001 - one failed scenario must not lose the others
            results[scenario] = {"scenario": scenario, "error": repr(exc)[:500]}
            print(f"  faults.{scenario} FAILED: {exc!r}", flush=True)
            continue
        finally:
            platform.stop()
        r = results[scenario]
        print(f"  faults.{scenario}: lost {r['lost']}, doubled {r['doubled']}, 5xx {r['5xx']}, "
              f"drain {r['drain_s']} s, settled {r['settled']}, answers {r['answers']} "
              f"({time.monotonic() - started:.0f} s)", flush=True)
        RESULTS.mkdir(exist_ok=True)  # each scenario's result at once: a long run stopped midway keeps them
        partial.write_text(json.dumps({"size": size, "seed": seed, "results": results}, indent=2, default=str))
    figures = figures_of(results, size)
    for f in figures:
        f.notes.setdefault("seed", seed)
    return figures
