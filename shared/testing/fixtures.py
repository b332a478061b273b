"""The pytest plugin every test in the project gets (``-p shared.testing.fixtures`` in pyproject).

Servers come from, in order (DESIGN.md, issue 13): the environment (KAFKA_BOOTSTRAP_SERVERS and
MONGO_URI), testcontainers only when ``RECOVERYNET_TEST_SERVERS=containers`` asks for them, or the
embedded servers started here. When containers were asked for but cannot start (no Docker engine, or
no registry to pull images from), the run falls back to the embedded servers and says so once. One
broker and one database serve the whole run; each test makes its own organization id, so tests
never collide.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import tempfile
import uuid
from pathlib import Path
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

import pytest

from shared.auth import KeySet, SigningKey, issue_token, write_key_pair
from shared.config import KafkaConnection, PlatformSettings
from shared.devstack.servers import EmbeddedBroker, EmbeddedMongo, docker_available
from shared.messaging.kafka import ensure_topics

# The shared secret tokens were signed with before issue 15 (HS256): tests show every service refuses it.
OLD_HS256_SECRET = "test-secret-" + "x" * 40


@dataclass(frozen=True)
class TestKeys:
    """The run's one token key pair: intake's private key and the public JWKS every service reads."""

    __test__ = False  # not a test class
    signing_key: SigningKey
    folder: Path

    @property
    def signing_key_file(self) -> str:
        return str(self.folder / "signing_key.pem")

    @property
    def public_keys_file(self) -> str:
        return str(self.folder / "jwks.json")

    def keyset(self) -> KeySet:
        return KeySet({self.signing_key.kid: self.signing_key.public_key})

    def environ(self, service: str) -> dict[str, str]:
        """The settings a service process of this run reads (the private key for intake only)."""
        env = {"AUTH_PUBLIC_KEYS_FILE": self.public_keys_file}
        if service == "intake":
            env["AUTH_SIGNING_KEY_FILE"] = self.signing_key_file
        return env


_TEST_KEYS: list[TestKeys] = []


def test_keys() -> TestKeys:
    """Made once per test process, in a temporary folder removed at exit."""
    if not _TEST_KEYS:
        folder = Path(tempfile.mkdtemp(prefix="recoverynet-test-keys-"))
        atexit.register(shutil.rmtree, folder, True)
        _TEST_KEYS.append(TestKeys(write_key_pair(folder), folder))
    return _TEST_KEYS[0]


test_keys.__test__ = False  # type: ignore[attr-defined]


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
    ensure_topics(KafkaConnection(bootstrap))
    yield bootstrap
    if stop:
        stop()


@pytest.fixture(scope="session")
def kafka_connection(kafka_bootstrap) -> KafkaConnection:
    """The run's broker as make_producer / make_consumer / ensure_topics take it (PLAINTEXT: the embedded
    broker and the test containers have no SASL or TLS)."""
    return KafkaConnection(kafka_bootstrap)


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
def auth_keys() -> TestKeys:
    """The run's token key pair (``shared.testing.fixtures.test_keys()``)."""
    return test_keys()


@pytest.fixture(scope="session")
def platform_settings(kafka_bootstrap, mongo_uri, auth_keys):
    """``platform_settings(service)`` -> PlatformSettings for that service on the test servers (every
    service verifies with the run's public key; intake alone gets the private key)."""
    keys = auth_keys

    def make(service: str, **overrides) -> PlatformSettings:
        settings = PlatformSettings(
            service_name=service, kafka_bootstrap_servers=kafka_bootstrap, mongo_uri=mongo_uri,
            mongo_database=f"test_{service}", auth_audience="recoverynet",
            public_base_url="http://testserver", log_level="WARNING", mongo_timeout_ms=5000,
            auth_public_keys_file=keys.public_keys_file,
            auth_signing_key_file=keys.signing_key_file if service == "intake" else None,
        )
        return replace(settings, **overrides)

    return make


@pytest.fixture
def org_id() -> str:
    """A fresh organization per test: tests share servers but never each other's data."""
    return f"org-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def make_token():
    """``make_token(org, role, sites=[...], leader_id=...)`` -> a bearer token signed with the run's key."""

    def make(organization_id, role="admin", *, sites=None, leader_id=None, member_id=None, ttl_seconds=3600,
             signing_key=None, audience="recoverynet", subject=None, version=0):
        return issue_token(signing_key or test_keys().signing_key, organization_id=organization_id, role=role, sites=sites, leader_id=leader_id,
                           member_id=member_id, ttl_seconds=ttl_seconds, audience=audience, subject=subject,
                           version=version)

    return make


def forged_token(organization_id, role="admin", **claims) -> str:
    """A token signed by a key that is not the platform's, whose header names the platform's key id."""
    import jwt

    token = issue_token(SigningKey.generate(), organization_id=organization_id, role=role, **claims)
    payload = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(payload, SigningKey.generate().private_key, algorithm="EdDSA",
                      headers={"kid": test_keys().signing_key.kid})


def old_secret_token(organization_id, role="admin", **claims) -> str:
    """A token as the platform issued them before issue 15: HS256 with the shared secret."""
    import jwt

    token = issue_token(test_keys().signing_key, organization_id=organization_id, role=role, **claims)
    payload = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(payload, OLD_HS256_SECRET, algorithm="HS256")


def auth_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def random_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"
