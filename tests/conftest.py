"""Fixtures for the platform-level tests: the whole platform, started as the local runner starts it."""
import pytest

from deploy.platform_under_test import PlatformUnderTest


@pytest.fixture(scope="session")
def platform(tmp_path_factory):
    """All four services with their workers, the embedded broker and database and the mail catcher,
    shared by the journeys (each makes its own organization). Driven over HTTP only."""
    running = PlatformUnderTest.start(tmp_path_factory.mktemp("platform"))
    yield running
    running.stop()
