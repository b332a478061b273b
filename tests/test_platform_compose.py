"""docker-compose.yml cannot run here (no Docker engine), so its wiring is checked by reading it:
real Kafka (KRaft) and MongoDB (replica set) images, every service and worker with its broker and
database settings and health checks, set-up jobs first (topics, indexes and the token key pair: its
private key in a volume only intake mounts, its public JWKS in one every service mounts read-only), and
nothing that breaks `--scale`."""
import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ["intake", "matching", "scheduling", "notifications"]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _environment(service: dict) -> dict:
    env = service.get("environment", {})
    return env if isinstance(env, dict) else dict(item.split("=", 1) for item in env)


def _command_modules(service: dict) -> list[str]:
    command = service.get("command") or []
    return [command[i + 1] for i, part in enumerate(command) if part == "-m" and i + 1 < len(command)]


def test_real_kafka_in_kraft_mode_and_mongodb_as_a_replica_set(compose):
    kafka, mongo = compose["services"]["kafka"], compose["services"]["mongo"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in _environment(kafka)["KAFKA_PROCESS_ROLES"]
    assert _environment(kafka)["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # the set-up job creates them
    assert mongo["image"].startswith("mongo:")
    assert "--replSet" in mongo["command"]
    for name in ("kafka", "mongo"):
        assert compose["services"][name]["healthcheck"]["test"]


def test_setup_job_creates_topics_and_indexes_after_the_servers_are_healthy(compose):
    setup = compose["services"]["setup"]
    assert _command_modules(setup) == ["deploy.setup"]
    assert setup["depends_on"] == {"kafka": {"condition": "service_healthy"}, "mongo": {"condition": "service_healthy"}}
    assert setup.get("restart") == "no"
    # ... and the token key pair, once, into the two volumes (kept across restarts)
    env = _environment(setup)
    assert (env["AUTH_KEYS_DIR"], env["AUTH_PUBLIC_KEYS_DIR"]) == ("/keys/signing", "/keys/public")
    assert sorted(setup["volumes"]) == ["auth-public-keys:/keys/public", "auth-signing-key:/keys/signing"]
    assert {"auth-signing-key", "auth-public-keys"} <= set(compose["volumes"])


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_has_a_web_process_and_a_worker_wired_to_broker_and_database(compose, name):
    services = compose["services"]
    for process in (name, f"{name}-worker"):
        svc = services[process]
        env = _environment(svc)
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["MONGO_URI"].startswith("mongodb://mongo:27017") and "replicaSet=rs0" in env["MONGO_URI"]
        assert "AUTH_SECRET" not in env and env["SERVICE"] == name
        assert env["AUTH_PUBLIC_KEYS_FILE"] == "/keys/public/jwks.json"
        assert "auth-public-keys:/keys/public:ro" in svc["volumes"]
        signing = [v for v in svc["volumes"] if v.startswith("auth-signing-key:")]
        if name == "intake":  # intake alone holds the private key, read-only
            assert env["AUTH_SIGNING_KEY_FILE"] == "/keys/signing/signing_key.pem"
            assert signing == ["auth-signing-key:/keys/signing:ro"]
        else:
            assert "AUTH_SIGNING_KEY_FILE" not in env and not signing
        if name == "notifications":
            assert env["UNSUBSCRIBE_SECRET"]
        assert svc["healthcheck"]["test"]
        assert svc["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert svc["depends_on"]["mongo"]["condition"] == "service_healthy"
        assert svc["depends_on"]["setup"]["condition"] == "service_completed_successfully"
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile"
        assert "container_name" not in svc, "a fixed container name breaks --scale"
    assert _command_modules(services[f"{name}-worker"]) == [f"{name}.worker"]
    assert "/readyz" in " ".join(services[name]["healthcheck"]["test"])
    for port in services[name]["ports"]:
        host = str(port).split(":")[0]
        assert "-" in host, "web ports are ranges so scaled copies each get a host port"


def test_every_module_the_stack_runs_exists(compose):
    modules = {m for svc in compose["services"].values() for m in _command_modules(svc)}
    modules |= {"deploy.healthcheck"} | {f"{name}.app" for name in SERVICES}
    missing = [m for m in sorted(modules) if importlib.util.find_spec(m) is None]
    assert not missing


def test_the_image_runs_gunicorn_with_the_shared_config():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert dockerfile.startswith("# ") and "FROM python:3.11" in dockerfile
    assert "deploy/gunicorn.conf.py" in dockerfile and "${SERVICE}.app:create_app()" in dockerfile
    assert "USER recoverynet" in dockerfile, "the services do not run as root"
