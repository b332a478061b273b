"""End-to-end latency on the whole platform (started as the local runner starts it): from the HTTP request
that registers a consenting member (matching + notify:email) to

- the MatchProposed event for that member arriving at a tap on the matches topic
  (intake's transaction + outbox relay -> broker -> matching's consumer: inbox, proposal, outbox in one
  transaction -> matching's relay -> broker), and
- the proposal email to that member being accepted by the SMTP catcher (-> notifications' consumer records
  the delivery -> its delivery job claims, renders and sends it),

at several request rates (open loop: requests start on a fixed schedule whatever the answers), reported
as p50 / p95 / p99 against the broker's raw produce-to-consume round trip (kafka-python producer, send +
flush, to a consumer assigned to the topic) measured in the same run on the same broker.

And whether the platform keeps pace with 10 registrations a second held for 30 s (10 s quick): proposals
completed per second against the rate offered, with where the queue forms (when the last MemberRegistered
and the last MatchProposed reached the tap) and each process's CPU per registration. Sixty requests at 10/s
(the rates above) end before a queue that grows by a few a second shows much; thirty seconds do not.
"""
from __future__ import annotations

import math
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.common import Figure
from bench.journeys import MailWatch, Org, TimedTap, post_ok, wait
from shared.events.intake import MEMBERS, MemberRegistered
from shared.events.matching import MATCHES, MatchProposed
from shared.config import KafkaConnection
from shared.messaging.kafka import ensure_topics

PERCENTILES = (50, 95, 99)
SUSTAINED_RATE = 10.0


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (with few samples the p99 is the largest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def broker_round_trips(bootstrap: str, count: int) -> list[float]:
    """Seconds from send to receive, one record at a time, through the same broker."""
    topic = f"bench.latency.{uuid.uuid4().hex[:8]}"
    ensure_topics(KafkaConnection(bootstrap), {topic: {}})
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [0])]
    consumer.assign(partitions)
    consumer.seek_to_end(*partitions)
    for tp in partitions:
        consumer.position(tp)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    out = []
    try:
        for i in range(count + 3):
            sent = time.perf_counter()
            producer.send(topic, key=b"k", value=str(i).encode())
            producer.flush()
            got = False
            while not got:
                got = any(consumer.poll(timeout_ms=1000).values())
            if i >= 3:  # the first few warm connections and metadata
                out.append(time.perf_counter() - sent)
    finally:
        producer.close()
        consumer.close()
    return out


def _batch(platform, org: Org, tap: TimedTap, mail: MailWatch, rate: float, n: int, timeout: float):
    """Register n members at ``rate`` per second; returns (to event, to email) latencies in seconds."""
    bodies = [org.member_body(["matching", "notify:email"], tag="lat") for _ in range(n)]
    url = platform.url("intake") + "/v1/members"
    started_at: dict[str, float] = {}
    ids: dict[str, str] = {}
    local = threading.local()

    def one(i: int, body: dict):
        session = getattr(local, "s", None) or requests.Session()
        local.s = session
        at = time.time()
        member = post_ok(session, url, org.admin_token, body).json()
        started_at[member["id"]] = at
        ids[member["id"]] = body["email"].lower()

    begin = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        futures = []
        for i, body in enumerate(bodies):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(one, i, body))
        for f in futures:
            f.result()
    is_proposal = lambda e: e.type == MatchProposed.type  # noqa: E731
    events = wait(lambda: (found := tap.first_arrival(is_proposal)) and all(m in found for m in ids) and found,
                  timeout, f"MatchProposed for {n} members")
    addresses = set(ids.values())
    mails = wait(lambda: (found := mail.first_to(addresses)) and len(found) == len(addresses) and found,
                 timeout, f"proposal emails to {n} members", interval=0.5)
    to_event = [events[m] - started_at[m] for m in ids]
    to_mail = [mails[ids[m]] - started_at[m] for m in ids]
    return to_event, to_mail


def run(runs: int, quick: bool, platform) -> list[Figure]:
    rates = (2.0, 8.0) if quick else (1.0, 4.0, 10.0)
    n = 15 if quick else 60
    sustained_runs, sustained_seconds = (1, 10) if quick else (min(runs, 3), 30)
    members = len(rates) * runs * n + sustained_runs * int(SUSTAINED_RATE * sustained_seconds) + 20
    org = Org(platform)
    for _ in range(max(3, members // 90 + 1)):  # room for every member, so each is proposed a leader
        org.leader(capacity=100)
    mail = MailWatch(platform)
    figures = []
    with TimedTap(platform.bootstrap_servers, [MATCHES, MEMBERS]) as tap:
        # Warm up the whole path (leaders known to matching, every worker connected) with a few members.
        _batch(platform, org, tap, mail, rate=2.0, n=3, timeout=120)
        for rate in rates:
            per_run: dict[tuple[str, int], list[float]] = {}
            base: dict[int, list[float]] = {p: [] for p in PERCENTILES}
            everything: dict[str, list[float]] = {"event": [], "email": []}
            for _ in range(runs):
                to_event, to_mail = _batch(platform, org, tap, mail, rate, n, timeout=180)
                everything["event"] += to_event
                everything["email"] += to_mail
                trips = broker_round_trips(platform.bootstrap_servers, 50)
                for p in PERCENTILES:
                    per_run.setdefault(("event", p), []).append(percentile(to_event, p))
                    per_run.setdefault(("email", p), []).append(percentile(to_mail, p))
                    base[p].append(percentile(trips, p))
            for what, label in (("event", "request -> MatchProposed"), ("email", "request -> email accepted")):
                for p in PERCENTILES:
                    values = [v * 1000 for v in per_run[(what, p)]]
                    figures.append(Figure(
                        f"e2e.{label} @ {rate:g}/s", f"p{p}", "ms", values,
                        f"broker produce->consume p{p}", [v * 1000 for v in base[p]], higher_is_better=False,
                        notes={} if p != 50 else {
                            "requests_per_run": n, "runs": runs,
                            f"p{p}_all_runs_ms": round(percentile(everything[what], p) * 1000, 1),
                            "mean_ms": round(statistics.mean(everything[what]) * 1000, 1)}))
        figures.append(sustained(platform, org, tap, mail, runs=sustained_runs, seconds=sustained_seconds))
    return figures


def sustained(platform, org: Org, tap: TimedTap, mail: MailWatch, *, runs: int, seconds: float) -> Figure:
    """10 registrations a second for ``seconds``: proposals completed per second (all of them, from the
    first request to the last proposal) against the rate offered; ratio 1.0 is keeping pace."""
    from bench.bench_console import cpu_ms_per_click, cpu_seconds

    n = int(SUSTAINED_RATE * seconds)
    achieved, notes = [], {"offered_per_s": SUSTAINED_RATE, "seconds": seconds, "requests_per_run": n, "runs": []}
    for _ in range(runs):
        before, began = cpu_seconds(platform), time.time()
        to_event, _ = _batch(platform, org, tap, mail, SUSTAINED_RATE, n, timeout=180 + n)
        spent = cpu_ms_per_click(before, cpu_seconds(platform), n)
        registered = sorted(at for at in tap.first_arrival(lambda e: e.type == MemberRegistered.type).values()
                            if at >= began)
        proposed = sorted(at for at in tap.first_arrival(lambda e: e.type == MatchProposed.type).values()
                          if at >= began)[:n]
        took = proposed[-1] - began
        achieved.append(n / took)
        notes["runs"].append({
            "proposals_per_s": round(n / took, 2),
            "to_proposal_p50_p99_ms": [round(percentile(to_event, p) * 1000) for p in (50, 99)],
            "last_MemberRegistered_after_s": round(registered[-1] - began, 1) if registered else None,
            "last_MatchProposed_after_s": round(took, 1),
            "cpu_ms_per_registration": spent})
    return Figure(f"e2e.sustained {SUSTAINED_RATE:g}/s for {seconds:g} s", "proposals completed", "per s",
                  achieved, "rate offered", [SUSTAINED_RATE] * len(achieved), higher_is_better=True, notes=notes)
