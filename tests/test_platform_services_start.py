"""Every service's web app answers /healthz and /readyz, and its worker joins its consumer group."""
import importlib

import pytest

from shared.messaging.kafka import consumer_group
from shared.testing.services import running

SERVICES = ["intake", "matching", "scheduling", "notifications"]


@pytest.mark.parametrize("service", SERVICES)
def test_service_web_app_is_alive_and_ready(service, platform_settings):
    config = importlib.import_module(f"{service}.config")
    app_module = importlib.import_module(f"{service}.app")
    settings = _settings(config, platform_settings(service))
    client = app_module.create_app(settings).test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["service"] == service
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize("service", SERVICES)
def test_service_worker_joins_its_consumer_group(service, platform_settings):
    config = importlib.import_module(f"{service}.config")
    worker_module = importlib.import_module(f"{service}.worker")
    settings = _settings(config, platform_settings(service))
    worker = worker_module.build_worker(settings)
    with running(worker) as started:
        if started.subscriptions:
            assert started.runner.group_id == consumer_group(service)
            assert started.runner.consumer.assignment()



def _settings(config, platform):
    """Each service's Settings has defaults for everything but the platform part."""
    return config.Settings.for_tests(platform) if hasattr(config.Settings, "for_tests") else config.Settings(platform=platform)


@pytest.mark.parametrize("service", ["intake"])
def test_a_running_worker_passes_the_container_health_check(service, platform_settings):
    import socket

    from deploy.healthcheck import worker_is_healthy
    from shared.testing import eventually

    config = importlib.import_module(f"{service}.config")
    settings = _settings(config, platform_settings(service))
    with running(importlib.import_module(f"{service}.worker").build_worker(settings)):
        eventually(lambda: worker_is_healthy(settings.platform.mongo_uri, settings.platform.mongo_database, service,
                                             socket.gethostname()), timeout=20)
