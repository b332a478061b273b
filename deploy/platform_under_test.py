"""The whole platform for journey, reliability and benchmark runs, started exactly as the local runner
starts it (``deploy.local.start``: embedded broker and database, mail catcher, gunicorn web + worker per
service), on free ports in a temporary folder; driven over HTTP only.

    platform = PlatformUnderTest.start(tmp_path)
    admin = platform.client("intake", platform.token(org, "admin"))
    admin.post("/v1/sites", json={...}).expect(201)
    platform.mail(to="ana@example.org")
    platform.stop()
"""
from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import requests

from shared.auth import issue_token
from shared.devstack.servers import free_port

SERVICES = ("intake", "matching", "scheduling", "notifications")


def _free_block(size: int) -> int:
    for _ in range(100):
        base = free_port()
        if all(_port_free(base + i) for i in range(size)):
            return base
    raise RuntimeError("no block of free ports")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class Response:
    """A requests response with assertions that print the problem+json body when they fail."""

    def __init__(self, response: requests.Response):
        self.raw = response
        self.status_code = response.status_code
        self.headers = response.headers

    @property
    def json(self):
        return self.raw.json()

    @property
    def text(self) -> str:
        return self.raw.text

    def expect(self, *statuses: int):
        assert self.status_code in statuses, (
            f"{self.raw.request.method} {self.raw.request.url} answered {self.status_code}, expected {statuses}: "
            f"{self.raw.text[:2000]}")
        return self.raw.json() if self.raw.content and "json" in self.raw.headers.get("Content-Type", "") else self.raw.text


@dataclass
class ApiClient:
    base_url: str
    token: str | None = None

    def request(self, method: str, path: str, **kwargs) -> Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        return Response(requests.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs))

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw) -> Response:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw) -> Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw) -> Response:
        return self.request("DELETE", path, **kw)

    def all_items(self, path: str, **params) -> list[dict]:
        """Every item of a paged list endpoint (``limit``/``offset``, answering ``items`` and ``total``)."""
        items, offset = [], 0
        while True:
            page = self.get(path, params={**params, "limit": 200, "offset": offset}).expect(200)
            items += page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= page.get("total", offset):
                return items


# The web processes per service as deployed (deploy/gunicorn.conf.py's default), for a platform that must
# behave as deployed under load: the benchmarks, and the fault tests' bursts (with one, they passed the
# clients' 10 s read timeout on a loaded machine).
WEB_PROCESSES_AS_DEPLOYED = {"WEB_CONCURRENCY": "2"}


class PlatformUnderTest:
    def __init__(self, platform):
        self.platform = platform

    @classmethod
    def start(cls, folder: Path, *, broker_behind_proxy: bool = False, extra_env: dict[str, str] | None = None,
              mongo_test_commands: bool = False):
        from deploy.local import DATABASE_OWNERS, Ports, start

        # one block: the four services, the console (base + 4), reporting (base + 5), then the database
        # servers, one per service
        base = _free_block(len(SERVICES) + 2 + len(DATABASE_OWNERS))
        ports = Ports(base=base, broker=free_port(), mongo=base + len(SERVICES) + 2, smtp=free_port(),
                      mail_http=free_port())
        # Every test signs in from 127.0.0.1: the per-client sign-in limit (20 per 15 minutes, meant for one
        # person's device) would refuse a whole run's sign-ins; the per-address limit stays as deployed.
        # One web process per service (its four threads answer requests at once): a test's platform needs no
        # more, and six fewer processes a platform start quicker on a machine running the suite three ways.
        # The benchmarks and the fault tests pass WEB_PROCESSES_AS_DEPLOYED.
        env = {"LOG_LEVEL": "INFO", "WEB_CONCURRENCY": "1", "SIGNIN_PER_CLIENT_LIMIT": "10000",
               "SIGNIN_TOKEN_PER_CLIENT_LIMIT": "10000", **(extra_env or {})}
        return cls(start(Path(folder), ports, quiet=True, broker_behind_proxy=broker_behind_proxy, extra_env=env,
                         mongo_test_commands=mongo_test_commands))

    def stop(self) -> None:
        self.platform.stop()

    # -- addresses ---------------------------------------------------------------------------------
    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.platform.ports.web(service)}"

    @property
    def bootstrap_servers(self) -> str:
        return self.platform.broker.bootstrap_servers

    def mongo_uri(self, owner: str) -> str:
        """The address of the database server of ``owner`` ("intake", ..., "reporting", "console")."""
        return self.platform.mongo_uri(owner)

    @property
    def mail_url(self) -> str:
        return f"http://127.0.0.1:{self.platform.ports.mail_http}"

    @property
    def logs(self) -> Path:
        return self.platform.var / "logs"

    # -- calling it --------------------------------------------------------------------------------
    def token(self, organization_id: str | None, role: str, *, sites: list[str] | None = None,
              leader_id: str | None = None, ttl_seconds: int = 3600) -> str:
        return issue_token(self.platform.token_keys(), organization_id=organization_id, role=role, sites=sites,
                           leader_id=leader_id, ttl_seconds=ttl_seconds)

    def client(self, service: str, token: str | None = None) -> ApiClient:
        return ApiClient(self.url(service), token)

    def mail(self, to: str | None = None) -> list[dict]:
        params = {"to": to} if to else None
        return requests.get(f"{self.mail_url}/messages", params=params, timeout=10).json()

    # -- faults ------------------------------------------------------------------------------------
    def process(self, name: str):
        """The subprocess of "intake-web", "matching-worker", "mailcatcher", ..."""
        return self.platform.process(name)

    def restart(self, name: str):
        return self.platform.restart(name)

    def spawn_copy(self, name: str, copy_name: str, *, port: int | None = None):
        """Start a second copy of process ``name`` (same command and environment) as ``copy_name``;
        a web copy needs its own ``port``. ``stop()`` stops it with the rest."""
        args, env = self.platform.commands[name]
        env = dict(env)
        if port is not None:
            env["PORT"] = str(port)
        return self.platform.spawn(copy_name, list(args), env)
