"""The README's first command, minus the virtual environment: the local runner brings up the four
services, the console and reporting on the embedded broker and database, every /readyz answers, Ctrl-C
stops everything, and the database keeps its data across a restart."""
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from pymongo import MongoClient

from deploy.local import DATABASE_OWNERS
from shared.devstack.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ["intake", "matching", "scheduling", "notifications"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _free_block(size: int) -> int:
    for _ in range(50):
        base = free_port()
        if all(_is_free(base + i) for i in range(size)):
            return base
    raise RuntimeError("no block of free ports")


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # closed connections linger in TIME_WAIT
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _start(var: Path, base: int, mongo_port: int):
    args = [sys.executable, "-m", "deploy.local", "--var", str(var), "--base-port", str(base),
            "--broker-port", str(free_port()), "--mongo-port", str(mongo_port), "--smtp-port", str(free_port()),
            "--mail-http-port", str(free_port())]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.monotonic() + 120
    for line in process.stdout:
        lines.append(line)
        if "Press Ctrl-C to stop." in line:
            return process, "".join(lines)
        if time.monotonic() > deadline:
            break
    process.kill()
    raise AssertionError("the runner did not come up:\n" + "".join(lines))


def _stop(process) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    return out


def test_local_runner_starts_every_service_and_stops_cleanly(tmp_path):
    # the four services, the console and reporting; then their database servers, one each (intake's first)
    base = _free_block(6 + len(DATABASE_OWNERS))
    mongo_port = base + 6
    process, banner = _start(tmp_path / "var", base, mongo_port)
    try:
        for i, service in enumerate(SERVICES):
            assert f"http://127.0.0.1:{base + i}/docs" in banner
            ready = requests.get(f"http://127.0.0.1:{base + i}/readyz", timeout=5)
            assert ready.status_code == 200 and ready.json()["service"] == service
        assert f"console        http://127.0.0.1:{base + 4}" in banner
        assert requests.get(f"http://127.0.0.1:{base + 4}/readyz", timeout=5).json()["service"] == "console"
        assert "Sign in" in requests.get(f"http://127.0.0.1:{base + 4}/sign-in", timeout=5).text
        assert requests.get(f"http://127.0.0.1:{base + 5}/readyz", timeout=5).json()["service"] == "reporting"
        for i, owner in enumerate(DATABASE_OWNERS):
            assert f"database       {owner:<14} mongodb://127.0.0.1:{mongo_port + i}/" in banner
        with MongoClient(f"mongodb://127.0.0.1:{mongo_port}/?directConnection=true") as client:
            client.recoverynet_intake.kept.insert_one({"_id": "survives-a-restart"})
    finally:
        out = _stop(process)
    assert "Stopped." in out
    for i in range(6):
        assert _is_free(base + i), "a web process outlived the runner"
    for i in range(len(DATABASE_OWNERS)):
        assert _is_free(mongo_port + i), "a database server outlived the runner"

    process, _ = _start(tmp_path / "var", base, mongo_port)
    try:
        with MongoClient(f"mongodb://127.0.0.1:{mongo_port}/?directConnection=true") as client:
            assert client.recoverynet_intake.kept.find_one({"_id": "survives-a-restart"})
    finally:
        _stop(process)
