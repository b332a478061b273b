"""The faults-at-load benchmark (bench/bench_faults.py, ./deploy/bench --faults): its bookkeeping on made-up
answers, events and mail, and one tiny scenario on a whole platform of its own (10 registrations, the broker
cut for 2 s): every registration accepted, each member proposed and told once, no 5xx. No timing is
asserted: the drain time is measured by ./deploy/bench, never in tests."""
import random
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from bench import bench_faults
from bench.bench_faults import Load, Mailbox, outcomes, settled, verdict
from shared.events.intake import MEMBERS, MemberRegistered
from shared.events.matching import MATCHES, MatchProposed, MemberWaitlisted
from shared.messaging.envelope import Event


def _event(kind, member, **data):
    topic = MEMBERS if kind is MemberRegistered else MATCHES
    return Event(id=data.pop("event_id", f"{kind.__name__}-{member}-{data.get('match_id', '')}"), type=kind.type,
                 source="/test", time=datetime.now(timezone.utc), subject=member, key=member, data=data, topic=topic)


class _Org:
    admin_token = "t"

    def __init__(self):
        self.n = 0

    def member_body(self, consents, tag=""):
        self.n += 1
        return {"email": f"M{self.n}.{tag}@example.org", "consents": [{"purpose": p} for p in consents]}


def _mail(folder, at: float, to: str, message_id: str, subject: str = "We found a peer leader for you"):
    name = f"{int(at * 1e9)}-{message_id.strip('<>')[:8]}.eml"
    (folder / name).write_text(f"To: {to}\nMessage-ID: {message_id}\nSubject: {subject}\n\nHello\n")


def test_the_bookkeeping_counts_lost_doubled_resent_and_5xx_and_the_drain(tmp_path):
    load = Load(SimpleNamespace(url=lambda s: "http://127.0.0.1:9"), _Org(), 5, tag="x")
    t0 = time.time()
    load.began, load.ended = t0, t0 + 1.0
    load.started_at = [t0 + i * 0.1 for i in range(5)]
    # m0..m3 accepted; m4 never (a 500); m1 after a 503 with Retry-After; m2 after one without it
    load.answers = [[(201, None, t0)], [(503, "5", t0), (201, None, t0 + 0.5)], [(503, None, t0), (201, None, t0)],
                    [(201, None, t0 + 1.0)], [(500, None, t0 + 0.4)]]
    for i in range(4):
        load.accepted[f"m{i}"] = i
        load.email_of[f"m{i}"] = load.bodies[i]["email"].lower()
    (tmp_path / "mail").mkdir()
    mailbox = Mailbox(SimpleNamespace(platform=SimpleNamespace(var=tmp_path)))
    tap = SimpleNamespace(_lock=threading.Lock(), arrivals=[
        (t0 + 0.2, _event(MemberRegistered, "m0")),
        (t0 + 2.0, _event(MatchProposed, "m0", match_id="a")),
        (t0 + 2.1, _event(MatchProposed, "m0", match_id="a")),             # the same proposal read again: not doubled
        (t0 + 2.0, _event(MatchProposed, "m1", match_id="b")),
        (t0 + 3.0, _event(MatchProposed, "m1", match_id="c")),             # a second proposal: doubled
        (t0 + 2.5, _event(MemberWaitlisted, "m2")),                        # waitlisted: an outcome, no email due
        (t0 + 2.0, _event(MatchProposed, "someone-else", match_id="z")),   # not this load's
    ])                                                                     # m3: nothing at all -> lost
    leaders = {"lead@example.org"}
    _mail(tmp_path / "mail", t0 - 10, load.email_of["m0"], "<old@x>")      # before the load: not counted
    _mail(tmp_path / "mail", t0 + 2.2, load.email_of["m0"], "<d0@x>")
    _mail(tmp_path / "mail", t0 + 9.0, load.email_of["m0"], "<d0@x>")      # the same message again: resent
    _mail(tmp_path / "mail", t0 + 3.0, load.email_of["m1"], "<d1@x>")
    _mail(tmp_path / "mail", t0 + 3.5, load.email_of["m1"], "<d2@x>")      # a second email: doubled
    for i in range(4):
        _mail(tmp_path / "mail", t0 + 3, "lead@example.org", f"<l{i}@x>", "A new member was proposed to you")
    state = outcomes(load, tap, mailbox, leaders, before=frozenset({"<l3@x>"}))
    assert state["no_outcome"] == ["m3"] and state["no_email"] == [] and state["waitlisted"] == {"m2"}
    assert not settled(state)  # m3 has no outcome yet
    result = verdict(load, state, Counter({"m0": 1, "m1": 2}))
    assert result["accepted"] == 4 and result["never_accepted"] == 1
    assert result["lost"] == 1 and result["lost_no_outcome"] == 1
    assert result["doubled_proposals"] == 1 and result["doubled_member_emails"] == 1
    assert result["extra_leader_emails"] == 0  # 3 leader messages (one left out as before the load) for 3 proposals
    assert result["doubled"] == 2 and result["resent_same_message_id"] == 1
    assert result["answers"] == {"201": 4, "503 with Retry-After": 1, "503 without Retry-After": 1, "500": 1}
    assert result["5xx"] == 2 and result["registrations_retried_after_503"] == 2
    # the last first outcome or email (m1's at t0 + 3, with the leaders') after the last answer (t0 + 1)
    assert result["drain_s"] == pytest.approx(2.0, abs=0.05)


def test_figures_put_each_fault_beside_the_same_load_without_it():
    base = {"lost": 0, "doubled": 0, "5xx": 0, "drain_s": 4.0, "scenario": "none"}
    broker = {"lost": 1, "doubled": 0, "5xx": 0, "drain_s": 30.0, "scenario": "broker"}
    figures = bench_faults.figures_of({"none": base, "broker": broker},
                                      {"members": 200, "outage_s": 10.0, "kills_per_worker": 3})
    drain = next(f for f in figures if f.metric == "drain after the load" and "broker cut 10 s" in f.benchmark)
    assert drain.values == [30.0] and drain.baseline_values == [4.0] and drain.ratio == 7.5
    lost = next(f for f in figures if f.metric == "lost")
    assert lost.values == [1] and lost.baseline_values == [0]


@pytest.mark.timeout(240)
def test_a_tiny_broker_cut_on_the_whole_platform_loses_and_doubles_nothing():
    platform = bench_faults.start_fault_platform()
    try:
        size = {"members": 10, "outage_s": 2.0, "kills_per_worker": 1, "drain_deadline_s": 150.0}
        result = bench_faults.run_scenario(platform, "broker", size, random.Random(7))
    finally:
        platform.stop()
    assert [what for _, what in result["fault_log"]] == ["broker cut", "broker back"]
    assert result["accepted"] == 10 and result["settled"], result
    assert result["lost"] == 0 and result["doubled"] == 0 and result["5xx"] == 0, result
    assert result["drain_s"] is not None
