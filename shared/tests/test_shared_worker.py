"""The worker process stops cleanly on SIGTERM: loops finish, the consumer leaves its group, exit 0."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shared.testing.fixtures import test_keys

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_worker_process_stops_cleanly_on_sigterm(kafka_bootstrap, mongo_uri, tmp_path):
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "MONGO_URI": mongo_uri,
           **test_keys().environ("matching"), "MONGO_DATABASE": "test_worker_sigterm",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "services" / "matching")])}
    log = open(tmp_path / "worker.log", "w+")
    worker = subprocess.Popen([sys.executable, "-m", "matching.worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        from shared.mongo import connect
        from shared.testing import eventually

        client = connect(mongo_uri)
        eventually(lambda: client.test_worker_sigterm.worker_status.find_one({"service": "matching"}), timeout=60)
        client.close()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(45) == 0
        log.seek(0)
        assert "worker stopped" in log.read()
    finally:
        if worker.poll() is None:
            worker.kill()


@pytest.mark.timeout(60)
def test_a_periodic_job_with_work_left_runs_again_at_once_and_otherwise_waits_its_interval(platform_settings):
    import threading
    import time

    from shared.testing import eventually
    from shared.worker import PeriodicJob, Worker

    runs: list[float] = []
    quiet: list[float] = []
    left = [3]  # the busy job has three budgets' worth of work

    def busy(client, db):
        runs.append(time.monotonic())
        left[0] -= 1
        return left[0] > 0

    worker = Worker(platform_settings("periodic", mongo_database="test_worker_periodic"), {}, periodic=[
        PeriodicJob("busy", 60.0, busy, rerun_when=bool),
        PeriodicJob("quiet", 60.0, lambda client, db: quiet.append(time.monotonic())),
    ])
    thread = threading.Thread(target=worker._periodic_loop, daemon=True)
    thread.start()
    try:
        eventually(lambda: len(runs) >= 3, timeout=10)
        assert runs[-1] - runs[0] < 5  # not three 60 s intervals
        assert len(quiet) == 1  # the other job had its turn, and waits its interval
    finally:
        worker._stop.set()
        thread.join(5)
        worker.client.close()
    assert len(runs) == 3  # no work left: waits its interval


@pytest.mark.timeout(120)
def test_an_after_events_job_runs_as_soon_as_the_consumer_applied_events(platform_settings, org_id):
    import time

    from shared.events.intake import MemberStatusChanged
    from shared.testing import eventually
    from shared.testing.events import publish
    from shared.testing.services import running
    from shared.worker import PeriodicJob, Worker

    applied, runs = [], []

    def handler(evt, uow):
        if evt.organization_id == org_id:
            applied.append(time.monotonic())

    settings = platform_settings("afterevents", mongo_database="test_worker_after_events")
    worker = Worker(settings, {MemberStatusChanged: handler},
                    periodic=[PeriodicJob("send", 600.0, lambda client, db: runs.append(time.monotonic()),
                                          after_events=True)])
    with running(worker):
        eventually(lambda: runs, timeout=10)  # its first run, at start; the next by interval is 10 minutes away
        publish(settings.kafka_bootstrap_servers, MemberStatusChanged, {
            "organization_id": org_id, "member_id": "m-1", "site_id": "s1", "from_status": "active",
            "to_status": "paused"})
        eventually(lambda: applied and len(runs) >= 2 and runs[-1] >= applied[0], timeout=60)


@pytest.mark.timeout(120)
def test_a_worker_whose_web_processes_write_no_events_still_publishes_what_is_written_elsewhere(
        platform_settings, kafka_bootstrap, org_id):
    """Reporting's relay asks the database only at each heartbeat (its web processes write no events): an
    entry written by another process is still published, by that safety-net poll."""
    import threading
    import uuid

    from shared.events.intake import MEMBERS, MemberStatusChanged
    from shared.testing import eventually
    from shared.testing.events import EventTap
    from shared.testing.services import running
    from shared.unit_of_work import run_in_transaction
    from shared.worker import HEARTBEAT_SECONDS, RELAY_QUIET_POLL_SECONDS, Worker

    worker = Worker(platform_settings("quietrelay", mongo_database=f"test_quiet_relay_{uuid.uuid4().hex[:8]}"), {},
                    web_writes_events=False)
    assert worker.relay_quiet_poll_seconds == HEARTBEAT_SECONDS > RELAY_QUIET_POLL_SECONDS
    worker._outbox_written = threading.Event()  # this process's commits do not wake it: "written elsewhere"
    member = f"m-{uuid.uuid4().hex[:8]}"
    with EventTap(kafka_bootstrap, [MEMBERS]) as tap, running(worker):
        # the relay loop's first beat is written just before its first look, which finds nothing: it then waits
        eventually(lambda: worker.db.worker_status.find_one({"_id": worker.name}), timeout=10)
        run_in_transaction(worker.client, worker.db, lambda uow: uow.emit(MemberStatusChanged, {
            "organization_id": org_id, "member_id": member, "site_id": "s1", "from_status": "active",
            "to_status": "paused"}), source="/recoverynet/test")
        tap.wait_for(lambda e: e.data.get("member_id") == member, timeout=HEARTBEAT_SECONDS * 4)
