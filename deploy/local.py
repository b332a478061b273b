"""The local runner: the whole platform on one machine with no Docker engine (DESIGN.md, way 1).

    python -m deploy.local            (./deploy/up does this after preparing the virtual environment)

Starts the embedded MongoDB-protocol servers, one per service (data under var/mongo/<service>, kept across
restarts), the embedded Kafka-protocol broker (memory only), the local mail catcher, creates topics and
indexes, then each service's gunicorn web process and worker, prints where everything answers, and stops it
all on Ctrl-C.

Why a database server per service: each service owns its database, and the embedded server is one Python
process, so one server for all of them can use one core at most; at 10 registrations a second it was the
platform's bound (bench/README.md, "A database server per service"). docker-compose's MongoDB is one
server, as a deployment's is: it uses every core.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from shared.auth import SigningKey, write_key_pair
from shared.devstack.servers import EmbeddedBroker, EmbeddedMongo, wait_for_port
from shared.messaging.kafka import SERVICES

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "recoverynet_"   # MONGO_DATABASE_PREFIX's default: a service's database is recoverynet_<service>
# The console (issue 16) is a web process only: it holds no Kafka client and calls the services' HTTP APIs.
CONSOLE = "console"
# Reporting (issue 18) consumes every topic but the contacts one and publishes nothing; web + worker, port base+5.
REPORTING = "reporting"
SERVICE_PATHS = [str(ROOT / "services" / name) for name in (*SERVICES, CONSOLE, REPORTING)]
# Whose database each embedded server holds, in the order of their ports (Ports.database).
DATABASE_OWNERS = (*SERVICES, REPORTING, CONSOLE)


@dataclass
class Ports:
    base: int = 8001                # intake 8001, matching 8002, scheduling 8003, notifications 8004, console 8005, reporting 8006
    broker: int = 29092
    mongo: int = 27027              # the first database server's: intake 27027, matching 27028, ... console 27032
    smtp: int = 8025
    mail_http: int = 8026

    def web(self, service: str) -> int:
        if service == CONSOLE:
            return self.base + len(SERVICES)
        if service == REPORTING:
            return self.base + len(SERVICES) + 1
        return self.base + SERVICES.index(service)

    def database(self, owner: str) -> int:
        return self.mongo + DATABASE_OWNERS.index(owner)


@dataclass
class Platform:
    """Everything the runner started, so it can be stopped in reverse order."""
    var: Path
    ports: Ports
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    broker: EmbeddedBroker | None = None
    mongos: dict[str, EmbeddedMongo] = field(default_factory=dict)   # one server per database owner
    extra_env: dict[str, str] = field(default_factory=dict)
    commands: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)

    def token_keys(self) -> SigningKey:
        """The token key pair, made once in var/keys and kept across restarts: signing_key.pem (intake
        alone is given it) and jwks.json (its public key, which every service verifies with)."""
        folder = self.var / "keys"
        if not (folder / "signing_key.pem").exists() or not (folder / "jwks.json").exists():
            write_key_pair(folder)
        return SigningKey.load(folder / "signing_key.pem")

    def unsubscribe_secret(self) -> str:
        """Notifications' secret for unsubscribe links, made once and kept across restarts."""
        path = self.var / "unsubscribe_secret"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    def reporting_pseudonym_key(self) -> str:
        """The key of reporting's pseudonyms (never in its database), made once and kept across restarts."""
        path = self.var / "reporting_pseudonym_key"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    def console_secret(self) -> str:
        path = self.var / "console_secret"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    def console_environment(self) -> dict[str, str]:
        env = self.environment(CONSOLE)
        env.update({"PUBLIC_BASE_URL": env["CONSOLE_PUBLIC_URL"], "PORT": str(self.ports.web(CONSOLE)),
                    "CONSOLE_SECRET_KEY": self.console_secret(),
                    **{f"{name.upper()}_URL": f"http://127.0.0.1:{self.ports.web(name)}" for name in (*SERVICES, REPORTING)}})
        env.update(self.extra_env)
        return env

    def environment(self, service: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "PYTHONPATH": os.pathsep.join([str(ROOT), *SERVICE_PATHS, env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap_servers,
            "AUTH_PUBLIC_KEYS_FILE": str(self.var / "keys" / "jwks.json"),
        })
        if service in self.mongos:   # a service reaches its own server
            env["MONGO_URI"] = self.mongo_uri(service)
        else:   # the tools (deploy.setup, deploy.backup) every service's: MONGO_URI_<SERVICE>
            env.update({"MONGO_URI": self.mongo_uri(DATABASE_OWNERS[0]),
                        **{f"MONGO_URI_{owner.upper()}": self.mongo_uri(owner) for owner in self.mongos}})
        self.token_keys()
        if service == "intake":  # intake alone signs tokens
            env["AUTH_SIGNING_KEY_FILE"] = str(self.var / "keys" / "signing_key.pem")
        if service == "notifications":
            env["UNSUBSCRIBE_SECRET"] = self.unsubscribe_secret()
        if service == REPORTING:
            env["REPORTING_PSEUDONYM_KEY"] = self.reporting_pseudonym_key()
        if service in (*SERVICES, REPORTING):
            env.update({"PUBLIC_BASE_URL": f"http://127.0.0.1:{self.ports.web(service)}",
                        "PORT": str(self.ports.web(service))})
        env.update({
            "HOST": "127.0.0.1",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.ports.smtp),
            "SMS_OUTBOX_PATH": str(self.var / "sms.log"),
            "WEB_CONCURRENCY": env.get("WEB_CONCURRENCY", "2"),
            # where the console answers: intake's sign-in emails link to its /sign-in/callback
            "CONSOLE_PUBLIC_URL": f"http://127.0.0.1:{self.ports.web(CONSOLE)}",
        })
        env.update(self.extra_env)
        return env

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.var / "logs" / f"{name}.log", "ab")
        process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes = [(n, p) for n, p in self.processes if n != name] + [(name, process)]
        self.commands[name] = (args, env)
        return process

    def process(self, name: str) -> subprocess.Popen:
        return dict(self.processes)[name]

    def restart(self, name: str) -> subprocess.Popen:
        """Start ``name`` (e.g. "matching-worker") again with the same command, after it stopped or was killed."""
        old = self.process(name)
        if old.poll() is None:
            old.terminate()
            old.wait(30)
        args, env = self.commands[name]
        return self.spawn(name, args, env)

    def stop(self) -> None:
        for name, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for name, process in reversed(self.processes):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"  {name} did not stop in time; killing it")
                process.kill()
        if self.broker:
            self.broker.stop()
        for mongo in self.mongos.values():
            mongo.stop()

    def mongo_uri(self, owner: str) -> str:
        """The address of the server that holds ``owner``'s database."""
        return self.mongos[owner].uri


def start(var: Path, ports: Ports, *, quiet: bool = False, broker_behind_proxy: bool = False,
          extra_env: dict[str, str] | None = None, mongo_test_commands: bool = False) -> Platform:
    """Start everything; ``broker_behind_proxy`` puts a TCP proxy (``platform.broker.proxy``) between the
    services and the broker so a test can cut it; ``extra_env`` overrides settings of every process;
    ``mongo_test_commands`` starts the database with ``configureFailPoint`` enabled (fault tests only)."""
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    (var / "logs").mkdir(parents=True, exist_ok=True)
    platform = Platform(var=var, ports=ports, extra_env=dict(extra_env or {}))
    try:
        say(f"Starting the databases, one per service (data in {var / 'mongo'}) ...")
        earlier = _one_server_data(var / "mongo")
        platform.mongos = {owner: EmbeddedMongo(storage_path=var / "mongo" / owner, port=ports.database(owner),
                                                test_commands=mongo_test_commands,
                                                log_path=var / "logs" / f"mongo-{owner}.log")
                           for owner in DATABASE_OWNERS}
        with ThreadPoolExecutor(len(platform.mongos)) as starting:   # a server takes a second or two to start
            list(starting.map(EmbeddedMongo.start, platform.mongos.values()))
        if earlier:
            _move_to_own_servers(earlier, platform.mongos, var / "logs", say)
        say("Starting the broker (memory only) ...")
        platform.broker = EmbeddedBroker(port=ports.broker, behind_proxy=broker_behind_proxy,
                                         log_path=var / "logs" / "broker.log").start()

        env = platform.environment("setup")
        say("Creating topics and indexes ...")
        subprocess.run([sys.executable, "-m", "deploy.setup"], env=env, cwd=ROOT, check=True,
                       stdout=open(var / "logs" / "setup.log", "ab"), stderr=subprocess.STDOUT)

        if _module_exists("shared.devstack.mailcatcher"):
            (var / "mail").mkdir(exist_ok=True)
            platform.spawn("mailcatcher", [sys.executable, "-m", "shared.devstack.mailcatcher",
                                           "--smtp-port", str(ports.smtp), "--http-port", str(ports.mail_http),
                                           "--dir", str(var / "mail"), "--host", "127.0.0.1"], env)

        for service in (*SERVICES, REPORTING):
            env = platform.environment(service)
            platform.spawn(f"{service}-web", [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                                              f"{service}.app:create_app()"], env)
            platform.spawn(f"{service}-worker", [sys.executable, "-m", f"{service}.worker"], env)

        platform.spawn(f"{CONSOLE}-web", [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                                          f"{CONSOLE}.app:create_app()"], platform.console_environment())

        say("Waiting for every service to be ready ...")
        for service in (*SERVICES, REPORTING, CONSOLE):
            _wait_ready(platform, service)
        return platform
    except BaseException:
        platform.stop()
        raise


def _one_server_data(folder: Path) -> Path | None:
    """Data of the runner's earlier layout (one server for every service, its files right in var/mongo),
    moved aside to var/mongo-one-server so each service's server can start in its own folder; None when
    there is none."""
    if not folder.is_dir() or not any(p.name not in DATABASE_OWNERS for p in folder.iterdir()):
        return None
    aside = folder.with_name("mongo-one-server")
    if aside.exists():
        raise RuntimeError(f"{folder} holds data of the earlier one-server layout and {aside} exists already; "
                           f"move one of them away")
    folder.rename(aside)
    return aside


def _move_to_own_servers(earlier: Path, mongos: dict[str, EmbeddedMongo], logs: Path, say) -> None:
    """Copy each service's database from the earlier one-server data into its own server (deploy.backup's
    dump and restore); the earlier folder is kept until someone deletes it."""
    say(f"Moving each service's data from {earlier} to its own database ...")
    old = EmbeddedMongo(storage_path=earlier, log_path=logs / "mongo-one-server.log").start()
    try:
        _copy(old, mongos)
    except Exception as exc:  # noqa: BLE001 - said plainly: the earlier data is untouched
        raise RuntimeError(f"could not copy the data in {earlier} to the services' own databases ({exc}); it is "
                           f"untouched there: to go back, move {earlier.with_name('mongo')} away and {earlier} "
                           f"back to {earlier.with_name('mongo')}") from exc
    finally:
        old.stop()
    say(f"  done; {earlier} is no longer used and may be deleted")


def _copy(old: EmbeddedMongo, mongos: dict[str, EmbeddedMongo]) -> None:
    """Every service's database on ``old`` into its own server (the console's sessions are not kept:
    people sign in again)."""
    from pymongo import MongoClient

    from deploy import backup

    with tempfile.TemporaryDirectory() as folder, MongoClient(old.uri) as source:
        targets = {owner: MongoClient(mongos[owner].uri) for owner in backup.SERVICES}
        try:
            backup.dump(lambda _owner: source, PREFIX, Path(folder) / "dump")
            backup.restore(targets.get, PREFIX, Path(folder) / "dump")
        finally:
            for client in targets.values():
                client.close()


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _wait_ready(platform: Platform, service: str, timeout: float = 90) -> None:
    url = f"http://127.0.0.1:{platform.ports.web(service)}/readyz"
    deadline = time.monotonic() + timeout
    while True:
        for name, process in platform.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}; see {platform.var / 'logs' / (name + '.log')}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{service} was not ready within {timeout:.0f}s; see {platform.var / 'logs'}")
        time.sleep(0.3)


def describe(platform: Platform) -> str:
    p = platform.ports
    lines = ["", "Recovery Network is running.", ""]
    for service in (*SERVICES, REPORTING):
        lines.append(f"  {service:<14} http://127.0.0.1:{p.web(service)}   API docs: http://127.0.0.1:{p.web(service)}/docs")
    lines.append(f"  {CONSOLE:<14} http://127.0.0.1:{p.web(CONSOLE)}   (staff console: sign in with your email)")
    lines += [
        "",
        f"  broker         127.0.0.1:{p.broker}  (KAFKA_BOOTSTRAP_SERVERS; memory only)",
        *(f"  database       {owner:<14} {mongo.uri}" for owner, mongo in platform.mongos.items()),
        f"                 (data in {platform.var / 'mongo'}, one folder per service)",
    ]
    if any(name == "mailcatcher" for name, _ in platform.processes):
        lines.append(f"  mail           SMTP 127.0.0.1:{p.smtp}, received mail: http://127.0.0.1:{p.mail_http}/messages"
                     f"  (files in {platform.var / 'mail'})")
    lines += [
        f"  logs           {platform.var / 'logs'}",
        "",
        "  A token for the API (organization admin):",
        f"    AUTH_SIGNING_KEY_FILE={platform.var / 'keys' / 'signing_key.pem'} .venv/bin/python -m shared.auth token --org my-org --role admin",
        "",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local", description="Run the whole platform locally.")
    parser.add_argument("--var", default=str(ROOT / "var"), help="folder for data and logs (default ./var)")
    parser.add_argument("--base-port", type=int, default=Ports.base, help="first service port (default 8001)")
    parser.add_argument("--broker-port", type=int, default=Ports.broker)
    parser.add_argument("--mongo-port", type=int, default=Ports.mongo,
                        help=f"first database server's port; the {len(DATABASE_OWNERS)} servers take it and the next ones")
    parser.add_argument("--smtp-port", type=int, default=Ports.smtp)
    parser.add_argument("--mail-http-port", type=int, default=Ports.mail_http)
    args = parser.parse_args(argv)
    ports = Ports(args.base_port, args.broker_port, args.mongo_port, args.smtp_port, args.mail_http_port)

    stopping = {"now": False}

    def request_stop(*_):
        stopping["now"] = True

    signal.signal(signal.SIGTERM, request_stop)
    try:
        platform = start(Path(args.var).resolve(), ports)
    except KeyboardInterrupt:
        print("\nStopped before the platform was up.")
        return 130
    except RuntimeError as exc:
        print(f"\nCould not start the platform: {exc}", file=sys.stderr)
        return 1
    print(describe(platform), flush=True)
    # Ctrl-C (or kill -INT) stops it even when SIGINT was ignored when it started (a background job of a
    # script inherits SIGINT ignored, and Python then raises no KeyboardInterrupt).
    signal.signal(signal.SIGINT, request_stop)
    try:
        while not stopping["now"]:
            for name, process in platform.processes:
                if process.poll() is not None:
                    print(f"{name} exited with code {process.returncode}; stopping. See {platform.var / 'logs' / (name + '.log')}")
                    stopping["now"] = True
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    print("\nStopping ...", flush=True)
    platform.stop()
    print("Stopped. Data is kept in", platform.var / "mongo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
