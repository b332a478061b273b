"""The worker process stops cleanly on SIGTERM: loops finish, the consumer leaves its group, exit 0."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shared.testing.fixtures import TEST_AUTH_SECRET

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_worker_process_stops_cleanly_on_sigterm(kafka_bootstrap, mongo_uri, tmp_path):
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "MONGO_URI": mongo_uri,
           "AUTH_SECRET": TEST_AUTH_SECRET, "MONGO_DATABASE": "test_worker_sigterm",
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
