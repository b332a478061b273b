"""The console's app on the run's real database (its own database per test run), driven with Flask's
test client. The four services are not needed here: these tests cover what the console does alone
(sessions, CSRF, language, errors); the browser tests (tests/browser/) drive it with the whole platform."""
from __future__ import annotations

import uuid

import pytest

from console.app import create_app
from console.config import Settings


@pytest.fixture(scope="session")
def console_settings(mongo_uri):
    return Settings(mongo_uri=mongo_uri, secret_key="console-test-secret-" + "y" * 32,
                    mongo_database=f"test_console_{uuid.uuid4().hex[:8]}",
                    # nothing answers here: a page that needs a service shows the "not answering" page
                    intake_url="http://127.0.0.1:9", matching_url="http://127.0.0.1:9",
                    scheduling_url="http://127.0.0.1:9", notifications_url="http://127.0.0.1:9",
                    api_timeout_seconds=2, log_level="WARNING")


@pytest.fixture(scope="session")
def app(console_settings):
    return create_app(console_settings, configure_logs=False)


@pytest.fixture
def client(app):
    return app.test_client()
