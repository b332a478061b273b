"""Fault: every worker is killed with SIGKILL at random points, several times, while work flows, and
started again. Guarantee: nothing lost, nothing doubled: each member has one match (matching's API),
one booked session (scheduling's API) and exactly one email of each kind, as does the leader
(proposal, acceptance, session booked).

Phase 1 kills every worker during a burst of registrations (intake's relay, matching's consumer,
notifications' consumer and sender); phase 2 kills every worker again while the leaders accept and book
(matching's relay, scheduling's consumer, notifications again).
"""
import random
import threading
import time

import pytest

from shared.testing import eventually

WORKERS = ("intake-worker", "matching-worker", "scheduling-worker", "notifications-worker")
MEMBERS = 12


class Killer(threading.Thread):
    """Kills each worker once, in a random order, each after a random pause, and restarts it at once."""

    def __init__(self, platform, rng: random.Random, pause=(0.2, 2.5)):
        super().__init__(daemon=True)
        self.platform, self.rng, self.pause = platform, rng, pause
        self.killed: list[tuple[str, float]] = []
        self.error: BaseException | None = None

    def run(self):
        try:
            for name in self.rng.sample(WORKERS, len(WORKERS)):
                time.sleep(self.rng.uniform(*self.pause))  # a random point in the work
                process = self.platform.process(name)
                process.kill()
                process.wait(10)
                self.killed.append((name, time.monotonic()))
                self.platform.restart(name)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def kill_round(platform, rng, work) -> Killer:
    killer = Killer(platform, rng)
    killer.start()
    work()
    killer.join(60)
    assert killer.error is None, killer.error
    assert {name for name, _ in killer.killed} == set(WORKERS)
    for name in WORKERS:
        assert platform.process(name).poll() is None, f"{name} did not come back"
    return killer


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_fault_sigkill_workers_mid_burst_nothing_lost_nothing_doubled(fault_platform, fault_org):
    seed = random.randrange(1 << 30)
    print(f"kill seed {seed}")
    rng = random.Random(seed)
    org = fault_org("sigkill")
    org.register(0)
    org.wait_matched(timeout=90)  # warm: every worker has joined its group

    # phase 1: registrations, every worker killed once at a random point
    t0 = time.monotonic()
    kill_round(fault_platform, rng, lambda: org.register_many(range(1, MEMBERS)))
    print(f"phase 1 kills done {time.monotonic() - t0:.1f}s")
    matches = org.wait_matched(timeout=180)
    print(f"phase 1 matched {time.monotonic() - t0:.1f}s")
    assert all(n == 1 for n in matches.values()), matches

    # phase 2: leaders accept and book, every worker killed again
    def accept_and_book():
        for match in org.matches():
            leader = fault_platform.client("matching", fault_platform.token(org.id, "leader", leader_id=match["leader_id"]))
            leader.post(f"/v1/matches/{match['id']}/accept").expect(200)
        for match in org.matches():
            book(fault_platform, org, match)
    kill_round(fault_platform, rng, accept_and_book)
    print(f"phase 2 booked {time.monotonic() - t0:.1f}s")

    matches = org.wait_matched(timeout=60)
    sessions = org.scheduling.get("/v1/sessions", params={"limit": 200}).expect(200)
    per_match = {}
    for s in sessions["items"]:
        per_match[s["match_id"]] = per_match.get(s["match_id"], 0) + 1
    assert len(per_match) == MEMBERS and set(per_match.values()) == {1}, per_match
    mail = org.wait_emails(per_member=3, timeout=240)
    print(f"phase 2 mail settled {time.monotonic() - t0:.1f}s")
    org.assert_each_member_once(matches=matches, mail=mail, per_member=3, status="active")


def book(platform, org, match) -> dict:
    """The leader books the first free suggested time (scheduling learns the match from MatchActivated;
    a worker being killed may delay that: wait for it)."""
    leader = platform.client("scheduling", platform.token(org.id, "leader", leader_id=match["leader_id"]))

    def slots():
        answer = leader.get(f"/v1/matches/{match['id']}/suggestions")
        assert answer.status_code == 200, answer.text
        found = answer.json["suggestions"]
        assert found, "no suggestions yet"
        return found

    for slot in eventually(slots, timeout=120):
        answer = leader.post("/v1/sessions", json={"match_id": match["id"], "start": slot["start"]})
        if answer.status_code == 201:
            return answer.json
        answer.expect(409)
    raise AssertionError(f"no suggested time could be booked for {match['id']}")
