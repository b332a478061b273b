"""The pytest plugin every test in the project gets (``-p shared.testing.fixtures`` in pyproject).

Servers come from, in order (DESIGN.md): the environment (KAFKA_BOOTSTRAP_SERVERS and MONGO_URI),
testcontainers when a Docker engine answers, or the embedded servers started here. One broker and
one database serve the whole run; each test makes its own organization id, so tests never collide.
"""
from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import replace

import pytest

from shared.auth import issue_token
from shared.config import PlatformSettings
from shared.kafka import ensure_topics
from shared.testing.servers import EmbeddedBroker, EmbeddedMongo, docker_available

TEST_AUTH_SECRET = "test-secret-" + "x" * 40


def _testcontainers_kafka():  # pragma: no cover - no Docker engine on our machines
    from testcontainers.kafka import KafkaContainer

    container = KafkaContainer("apache/kafka:3.9.1").start()
    return container.get_bootstrap_server(), container.stop


def _testcontainers_mongo():  # pragma: no cover - no Docker engine on our machines
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    container = DockerContainer("mongo:7").with_command("--replSet rs0 --bind_ip_all").with_exposed_ports(27017)
    container.start()
    wait_for_logs(container, "Waiting for connections")
    container.exec(["mongosh", "--quiet", "--eval", "rs.initiate()"])
    uri = f"mongodb://{container.get_container_host_ip()}:{container.get_exposed_port(27017)}/?directConnection=true"
    return uri, container.stop


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory):
    stop = None
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    elif docker_available():
        bootstrap, stop = _testcontainers_kafka()
    else:
        broker = EmbeddedBroker(log_path=tmp_path_factory.mktemp("broker") / "tansu.log").start()
        bootstrap, stop = broker.bootstrap_servers, broker.stop
    ensure_topics(bootstrap)
    yield bootstrap
    if stop:
        stop()


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory):
    stop = None
    if os.environ.get("MONGO_URI"):
        uri = os.environ["MONGO_URI"]
    elif docker_available():
        uri, stop = _testcontainers_mongo()
    else:
        server = EmbeddedMongo(storage_path=tmp_path_factory.mktemp("mongo") / "data",
                               log_path=tmp_path_factory.mktemp("mongo-log") / "secantusd.log").start()
        uri, stop = server.uri, server.stop
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

    def make(organization_id, role="admin", *, sites=None, leader_id=None, ttl_seconds=3600, secret=TEST_AUTH_SECRET,
             audience="recoverynet"):
        return issue_token(secret, organization_id=organization_id, role=role, sites=sites, leader_id=leader_id,
                           ttl_seconds=ttl_seconds, audience=audience)

    return make


def auth_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def random_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"
