"""The fixtures every service's tests would otherwise write again: the service's settings on the test
servers (its indexes made), its worker, its web app and test client, its database, a tap on its topics,
and bearer headers for this test's organization.

    # services/matching/tests/conftest.py
    settings, worker, app, client, db, tap, headers = service_fixtures(
        "matching", topics=[MATCHES], expiry_interval_seconds=0.5)

A service's modules are found by the layout every service shares (``<service>.config.Settings``,
``<service>.app.create_app``, ``<service>.worker.build_worker``, ``<service>.repository.ensure_indexes``)
and imported only when a fixture first runs. Each piece is also usable alone (``tap_fixture``,
``indexed_platform``, ``connected_database``) by a conftest whose fixtures differ in name or scope.
"""
from __future__ import annotations

import contextlib
import importlib
from typing import Any, Iterator

import pytest
from pymongo.database import Database

from shared.config import PlatformSettings
from shared.mongo import connect
from shared.testing.events import EventTap
from shared.testing.fixtures import auth_header
from shared.testing.services import running


def service_module(service: str, name: str) -> Any:
    """``service_module("matching", "worker")`` -> the module ``matching.worker``."""
    return importlib.import_module(f"{service}.{name}")


def indexed_platform(platform_settings, service: str, **overrides) -> PlatformSettings:
    """The service's PlatformSettings on the test servers, with the service's indexes made."""
    platform = platform_settings(service, **overrides)
    client = connect(platform.mongo_uri)
    service_module(service, "repository").ensure_indexes(client[platform.mongo_database])
    client.close()
    return platform


@contextlib.contextmanager
def connected_database(settings) -> Iterator[Database]:
    """The service's database, on a client of its own that is closed afterwards."""
    client = connect(settings.platform.mongo_uri)
    yield client[settings.platform.mongo_database]
    client.close()


def tap_fixture(topics: list[str], tap_class: type[EventTap] = EventTap):
    """A ``tap`` fixture: an event tap on ``topics``, opened for one test."""

    @pytest.fixture(name="tap")
    def tap(kafka_bootstrap):
        with tap_class(kafka_bootstrap, list(topics)) as opened:
            yield opened

    return tap


def service_fixtures(service: str, *, topics: list[str], tap_class: type[EventTap] = EventTap, **settings_overrides):
    """-> the fixtures (settings, worker, app, client, db, tap, headers) of one service, to bind by those
    names in its conftest. ``settings_overrides`` go to the service's Settings; the worker, app and db
    live for a test module, the client, tap and headers for one test."""

    @pytest.fixture(scope="module", name="settings")
    def settings(platform_settings):
        config = service_module(service, "config")
        return config.Settings(platform=indexed_platform(platform_settings, service), **settings_overrides)

    @pytest.fixture(scope="module", name="worker")
    def worker(settings):
        with running(service_module(service, "worker").build_worker(settings)) as started:
            yield started

    @pytest.fixture(scope="module", name="app")
    def app(settings):
        return service_module(service, "app").create_app(settings)

    @pytest.fixture(name="client")
    def client(app):
        return app.test_client()

    @pytest.fixture(scope="module", name="db")
    def db(settings):
        with connected_database(settings) as database:
            yield database

    @pytest.fixture(name="headers")
    def headers(make_token, org_id):
        def make(role="admin", **kw):
            return auth_header(make_token(org_id, role, **kw))
        return make

    return settings, worker, app, client, db, tap_fixture(topics, tap_class), headers
