"""docker-compose.yml cannot run here (no Docker engine), so its wiring is checked by reading it:
real Kafka (KRaft) and MongoDB (replica set) images, every service and worker with its broker and
database settings and health checks, set-up jobs first (topics, indexes and the token key pair: its
private key in a volume only intake mounts, its public JWKS in one every service mounts read-only), and
nothing that breaks `--scale`; one entry point (nginx, deploy/nginx/recoverynet.conf) with a path per
service, and every process that writes links given the public address (PUBLIC_URL + the service's path)."""
import re
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
    # no fixed host port (they wandered inside ranges): loopback only, a port Docker picks per copy
    assert services[name]["ports"] == ["127.0.0.1::8000"]


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


WEB = SERVICES + ["reporting"]
PUBLIC_URL = "${PUBLIC_URL:-http://localhost:8080}"


@pytest.mark.parametrize("name", WEB)
def test_every_process_that_writes_links_has_the_public_address_through_the_proxy(compose, name):
    for process in (name, f"{name}-worker"):
        env = _environment(compose["services"][process])
        assert env["PUBLIC_BASE_URL"] == f"{PUBLIC_URL}/{name}", process
        assert env["TRUSTED_PROXY_HOPS"] == 1
        assert env["CONSOLE_PUBLIC_URL"] == PUBLIC_URL  # intake's sign-in links go to the console, at /
    assert _environment(compose["services"]["console"])["CONSOLE_PUBLIC_URL"] == PUBLIC_URL


def test_the_notifications_worker_sends_through_smtp_settings_from_the_environment(compose):
    for process in ("notifications", "notifications-worker"):
        env = _environment(compose["services"][process])
        assert {"SMTP_HOST", "SMTP_PORT", "SMTP_STARTTLS", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_FROM"} <= set(env)
        assert env["SMTP_HOST"] == "${SMTP_HOST:-mail}"
    worker = compose["services"]["notifications-worker"]
    assert worker["depends_on"]["mail"] == {"condition": "service_healthy"}
    mail = compose["services"]["mail"]
    assert mail["restart"] == "unless-stopped"
    assert mail["ports"] == ["127.0.0.1:${MAIL_UI_PORT:-8090}:8026"], "loopback only: the catcher shows every email"
    # built from Debian packages alone (no package index here for the dev extra's aiosmtpd)
    stage = (ROOT / "deploy" / "Dockerfile").read_text().split("AS mail", 1)[1].split("\nFROM ", 1)[0]
    assert "python3-aiosmtpd" in stage and "pip install" not in stage


def _nginx_locations(conf: str) -> dict:
    """{location: its directives as 'name args' strings} of the one server block (no nested blocks)."""
    body = re.sub(r"#[^\n]*", "", conf)
    return {m["where"].strip(): [" ".join(d.split()) for d in m["body"].split(";") if d.strip()]
            for m in re.finditer(r"location\s+(?P<where>[^{]+)\{(?P<body>[^}]*)\}", body)}


def test_one_proxy_in_front_a_path_per_service_resolved_through_dockers_dns(compose):
    proxy = compose["services"]["proxy"]
    assert proxy["build"]["target"] == "proxy" and proxy["build"]["dockerfile"] == "deploy/Dockerfile"
    assert proxy["ports"] == ["${PROXY_PORT:-8080}:8080"] and proxy["restart"] == "unless-stopped"
    assert proxy["healthcheck"]["test"]
    assert {name: c["condition"] for name, c in proxy["depends_on"].items()} == {
        name: "service_healthy" for name in WEB + ["console"]}
    published = {name: svc["ports"] for name, svc in compose["services"].items() if svc.get("ports")}
    fixed = {name: ports for name, ports in published.items() if name not in ("proxy", "mail")
             and ports != ["127.0.0.1::8000"]}
    assert not fixed, "only the proxy and the mail catcher publish a fixed host port"

    conf = (ROOT / "deploy" / "nginx" / "recoverynet.conf").read_text()
    assert re.search(r"^\s*resolver 127\.0\.0\.11 valid=\d+s", conf, re.M), "Docker's DNS, re-asked while running"
    assert re.search(r"^\s*listen 8080", conf, re.M)
    assert "proxy_set_header X-Forwarded-Prefix $forwarded_prefix" in conf
    locations = _nginx_locations(conf)
    for name in WEB:
        directives = locations[f"/{name}/"]
        # a variable upstream: nginx resolves it again (valid=10s), so scaled copies join and leave
        assert directives == [f"set $service {name}", f"rewrite ^/{name}(/.*)$ $1 break",
                              "proxy_pass http://$service:8000"], name
        assert name in compose["services"] and compose["services"][name]["healthcheck"]["test"]
    assert locations["/"] == ["set $service console", "proxy_pass http://$service:8000"]
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    stage = dockerfile.split("AS proxy", 1)[1].split("\nFROM ", 1)[0]
    assert "apt-get install" in stage and " nginx" in stage, "nginx from Debian's packages (no registry here)"
    assert "COPY deploy/nginx/recoverynet.conf /etc/nginx/conf.d/" in stage


@pytest.mark.parametrize("name", WEB)
def test_workers_run_the_worker_stage_without_the_web_port_or_check(compose, name):
    worker = compose["services"][f"{name}-worker"]
    assert worker["build"]["target"] == "worker" and worker["image"] != compose["services"][name]["image"]
    assert worker["healthcheck"]["test"] == ["CMD-SHELL", "python -m deploy.healthcheck worker $${SERVICE}"]
    assert "ports" not in worker
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    stage = dockerfile.split("AS worker", 1)[1].split("\nFROM ", 1)[0]
    assert "EXPOSE" not in stage and "deploy.healthcheck worker" in stage and "/readyz" not in stage
    assert compose["services"]["setup"]["healthcheck"] == {"disable": True}


def test_secrets_come_from_dotenv_written_once_by_compose_init(compose, tmp_path):
    text = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    assert required == {"UNSUBSCRIBE_SECRET", "CONSOLE_SECRET_KEY", "REPORTING_PSEUDONYM_KEY"}
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    example = (ROOT / ".env.example").read_text()
    named = set(re.findall(r"^#?([A-Z_]+)=", example, re.M))
    assert required | {"PUBLIC_URL", "PROXY_PORT", "MAIL_UI_PORT", "SMTP_HOST", "SMTP_STARTTLS"} <= named
    # compose-init on a copy: writes .env (600) with every secret generated, and keeps it when run again
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "compose-init").write_text((ROOT / "deploy" / "compose-init").read_text())
    (tmp_path / ".env.example").write_text(example)
    import subprocess
    import sys
    run = [sys.executable, str(tmp_path / "deploy" / "compose-init"), "--public-url", "https://recovery.example.org"]
    subprocess.run(run, check=True, capture_output=True)
    env = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines()
               if re.match(r"^[A-Z_]+=", line))
    assert env["PUBLIC_URL"] == "https://recovery.example.org"
    assert all(len(env[name]) >= 32 for name in required)
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    first = (tmp_path / ".env").read_text()
    subprocess.run(run[:2], check=True, capture_output=True)
    assert (tmp_path / ".env").read_text() == first
