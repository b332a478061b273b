"""The pytest plugin every test in the project gets (``-p shared.testing.fixtures`` in pyproject).

Servers come from, in order (DESIGN.md, issue 13): the environment (KAFKA_BOOTSTRAP_SERVERS and
MONGO_URI), testcontainers only when ``RECOVERYNET_TEST_SERVERS=containers`` asks for them, or the
embedded servers started here. When containers were asked for but cannot start (no Docker engine, or
no registry to pull images from), the run falls back to the embedded servers and says so once. One
broker and one database serve the whole run; each test makes its own organization id, so tests
never collide.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import uuid
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

import pytest

from shared.auth import issue_token
from shared.config import PlatformSettings
from shared.devstack.servers import EmbeddedBroker, EmbeddedMongo, docker_available
from shared.messaging.kafka import ensure_topics

TEST_AUTH_SECRET = "test-secret-" + "x" * 40


TEST_SERVERS_ENV = "RECOVERYNET_TEST_SERVERS"

Starter = Callable[[], "tuple[str, Callable[[], None] | None]"]


@dataclass
class ServerChoice:
    """The chooser of the run's test servers: the environment's address, containers if asked for,
    else the embedded server. ``notes`` holds the one fallback message, said once for the run."""

    environ: Mapping[str, str]
    notes: list[str] = field(default_factory=list)
    containers_failed: bool = False

    @property
    def containers_asked(self) -> bool:
        return self.environ.get(TEST_SERVERS_ENV, "").strip().lower() == "containers"

    def describe(self) -> str:
        given = [name for name in ("KAFKA_BOOTSTRAP_SERVERS", "MONGO_URI") if self.environ.get(name)]
        first = f"{' and '.join(given)} from the environment, otherwise " if given else ""
        if self.containers_asked:
            return (f"test servers: {first}testcontainers ({TEST_SERVERS_ENV}=containers), "
                    "embedded if they cannot start")
        return f"test servers: {first}embedded (set {TEST_SERVERS_ENV}=containers for testcontainers)"

    def provide(self, kind: str, env_var: str, *, containers: Starter, embedded: Starter
                ) -> tuple[str, Callable[[], None] | None, str]:
        """-> (address, stop or None, where it came from: "environment", "containers" or "embedded")."""
        if self.environ.get(env_var):
            return self.environ[env_var], None, "environment"
        if self.containers_asked and not self.containers_failed:
            try:
                address, stop = containers()
                return address, stop, "containers"
            except Exception as exc:  # noqa: BLE001 - any reason a container cannot start means: fall back
                self.containers_failed = True
                self.notes.append(
                    f"{TEST_SERVERS_ENV}=containers, but the {kind} container could not start "
                    f"({type(exc).__name__}: {str(exc).strip()[:200]}); using the embedded servers for this run")
        address, stop = embedded()
        return address, stop, "embedded"


def _testcontainers_kafka():  # pragma: no cover - no Docker engine on our machines
    if not docker_available():
        raise RuntimeError("no Docker engine answers")
    from testcontainers.kafka import KafkaContainer

    container = KafkaContainer("apache/kafka:3.9.1").start()
    return container.get_bootstrap_server(), container.stop


def _testcontainers_mongo():  # pragma: no cover - no Docker engine on our machines
    if not docker_available():
        raise RuntimeError("no Docker engine answers")
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    container = DockerContainer("mongo:7").with_command("--replSet rs0 --bind_ip_all").with_exposed_ports(27017)
    container.start()
    wait_for_logs(container, "Waiting for connections")
    container.exec(["mongosh", "--quiet", "--eval", "rs.initiate()"])
    uri = f"mongodb://{container.get_container_host_ip()}:{container.get_exposed_port(27017)}/?directConnection=true"
    return uri, container.stop


_CHOICE = pytest.StashKey[ServerChoice]()


def pytest_configure(config):
    config.stash[_CHOICE] = ServerChoice(dict(os.environ))


def pytest_report_header(config):
    return config.stash[_CHOICE].describe()


def _provide(request, kind: str, env_var: str, containers: Starter, embedded: Starter):
    choice = request.config.stash[_CHOICE]
    said = len(choice.notes)
    address, stop, _ = choice.provide(kind, env_var, containers=containers, embedded=embedded)
    if len(choice.notes) > said:  # the fallback happened just now: say it once, at the run's first server
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        if reporter is not None:
            with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                reporter.ensure_newline()
                reporter.write_line("WARNING: " + choice.notes[-1], yellow=True, bold=True)
    return address, stop


@pytest.fixture(scope="session")
def kafka_bootstrap(request, tmp_path_factory):
    def embedded():
        broker = EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "tansu.log").start()
        return broker.bootstrap_servers, broker.stop

    bootstrap, stop = _provide(request, "Kafka", "KAFKA_BOOTSTRAP_SERVERS", _testcontainers_kafka, embedded)
    ensure_topics(bootstrap)
    yield bootstrap
    if stop:
        stop()


@pytest.fixture(scope="session")
def mongo_uri(request, tmp_path_factory):
    def embedded():
        server = EmbeddedMongo(storage_path=tmp_path_factory.mktemp("mongo") / "data",
                               log_path=tmp_path_factory.mktemp("mongo-log") / "secantusd.log").start()
        return server.uri, server.stop

    uri, stop = _provide(request, "MongoDB", "MONGO_URI", _testcontainers_mongo, embedded)
    yield uri
    if stop:
        stop()


@pytest.fixture(scope="session")
def platform_settings(kafka_bootstrap, mongo_uri):
    """``platform_settings(service)`` -> PlatformSettings for that service on the test servers."""

    def make(service: str, **overrides) -> PlatformSettings:
        settings = PlatformSettings(
            service_name=service, kafka_bootstrap_servers=kafka_bootstrap, mongo_uri=mongo_uri,
            mongo_database=f"test_{service}", auth_secret=TEST_AUTH_SECRET, auth_audience="recoverynet",
            public_base_url="http://testserver", log_level="WARNING", mongo_timeout_ms=5000,
        )
        return replace(settings, **overrides)

    return make


@pytest.fixture
def org_id() -> str:
    """A fresh organization per test: tests share servers but never each other's data."""
    return f"org-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def make_token():
    """``make_token(org, role, sites=[...], leader_id=...)`` -> a signed bearer token for tests."""

    def make(organization_id, role="admin", *, sites=None, leader_id=None, member_id=None, ttl_seconds=3600,
             secret=TEST_AUTH_SECRET, audience="recoverynet", subject=None, version=0):
        return issue_token(secret, organization_id=organization_id, role=role, sites=sites, leader_id=leader_id,
                           member_id=member_id, ttl_seconds=ttl_seconds, audience=audience, subject=subject,
                           version=version)

    return make


def auth_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def random_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"
