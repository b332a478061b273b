"""Which servers the tests run on (issue 13): the environment's, containers only when asked for, else the
embedded ones; containers asked for but unable to start fall back to the embedded servers, said once."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shared.testing.fixtures import TEST_SERVERS_ENV, ServerChoice

ROOT = Path(__file__).resolve().parents[2]


class Starters:
    """Starters that record their calls; the containers one fails as it does with no registry."""

    def __init__(self, containers_fail: bool = False):
        self.calls: list[str] = []
        self.containers_fail = containers_fail

    def containers(self):
        self.calls.append("containers")
        if self.containers_fail:
            raise RuntimeError("ImageNotFound: testcontainers/ryuk")
        return "container:1", lambda: None

    def embedded(self):
        self.calls.append("embedded")
        return "embedded:1", lambda: None


def test_embedded_servers_by_default_even_when_a_docker_engine_might_answer():
    choice, starters = ServerChoice({}), Starters()
    address, stop, source = choice.provide("Kafka", "KAFKA_BOOTSTRAP_SERVERS",
                                           containers=starters.containers, embedded=starters.embedded)
    assert (address, source, starters.calls) == ("embedded:1", "embedded", ["embedded"])
    assert choice.notes == [] and "embedded" in choice.describe()


def test_environment_address_comes_first_even_when_containers_are_asked_for():
    choice, starters = ServerChoice({"MONGO_URI": "mongodb://elsewhere", TEST_SERVERS_ENV: "containers"}), Starters()
    address, stop, source = choice.provide("MongoDB", "MONGO_URI",
                                           containers=starters.containers, embedded=starters.embedded)
    assert (address, stop, source, starters.calls) == ("mongodb://elsewhere", None, "environment", [])
    assert choice.describe().startswith("test servers: MONGO_URI from the environment")


def test_containers_when_asked_for():
    choice, starters = ServerChoice({TEST_SERVERS_ENV: "containers"}), Starters()
    address, _, source = choice.provide("Kafka", "KAFKA_BOOTSTRAP_SERVERS",
                                        containers=starters.containers, embedded=starters.embedded)
    assert (address, source, starters.calls) == ("container:1", "containers", ["containers"])
    assert choice.notes == [] and "testcontainers" in choice.describe()


def test_containers_that_cannot_start_fall_back_to_embedded_and_say_so_once():
    choice, starters = ServerChoice({TEST_SERVERS_ENV: "containers"}), Starters(containers_fail=True)
    kafka = choice.provide("Kafka", "KAFKA_BOOTSTRAP_SERVERS", containers=starters.containers,
                           embedded=starters.embedded)
    mongo = choice.provide("MongoDB", "MONGO_URI", containers=starters.containers, embedded=starters.embedded)
    assert kafka[2] == mongo[2] == "embedded"
    assert starters.calls == ["containers", "embedded", "embedded"]  # no second try after the first failed
    assert len(choice.notes) == 1
    assert "ImageNotFound" in choice.notes[0] and "embedded" in choice.notes[0]


def test_a_run_asking_for_containers_here_passes_on_the_embedded_servers(tmp_path):
    """The real containers starters fail on this machine (no Docker engine, no registry): the run
    still passes, on the embedded servers, and says so in one line."""
    (tmp_path / "test_uses_servers.py").write_text(
        "def test_servers(kafka_bootstrap, mongo_uri):\n"
        "    from pymongo import MongoClient\n"
        "    with MongoClient(mongo_uri, serverSelectionTimeoutMS=5000) as client:\n"
        "        client.admin.command('ping')\n"
        "    assert kafka_bootstrap.startswith('127.0.0.1:')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "MONGO_URI")}
    env[TEST_SERVERS_ENV] = "containers"
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "shared.testing.fixtures", "-p", "no:cacheprovider",
         "-o", "timeout=240", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "1 passed" in out, out
    assert out.count("using the embedded servers for this run") == 1, out
    assert "test servers: testcontainers" in out, out  # the run's header says what was asked for
