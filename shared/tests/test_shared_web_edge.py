"""The shared HTTP edge under real conditions (issue 13): the Prometheus exposition header as
Prometheus 3 parses it, the API docs served without a CDN, and a too-large body under gunicorn over
a real socket (the connection is closed as announced, or stays usable)."""
from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin

import pytest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from shared.auth import issue_token
from shared.devstack.servers import free_port
from shared.testing import eventually
from shared.testing.fixtures import test_keys
from shared.web import create_service_app
from shared.web.app import DOCS_ASSETS_PATH, MAX_BODY_BYTES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client(platform_settings):
    return create_service_app(platform_settings("webedge"), title="Edge", configure_logs=False).test_client()


def test_metrics_answer_the_exposition_content_type_exactly_once(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    header = response.headers["Content-Type"]
    assert header == CONTENT_TYPE_LATEST
    # Go's mime.ParseMediaType (Prometheus 3) refuses a parameter named twice
    names = [part.split("=", 1)[0].strip().lower() for part in header.split(";")[1:]]
    assert len(names) == len(set(names)), header
    families = {family.name for family in text_string_to_metric_families(response.get_data(as_text=True))}
    assert {"recoverynet_http_requests", "recoverynet_outbox_backlog"} <= families, sorted(families)


def test_the_docs_page_and_its_assets_come_from_the_app(client):
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"):
        # named relative to the page, so a proxy's path prefix (/intake/docs) keeps them on this service
        reference = f"{DOCS_ASSETS_PATH.lstrip('/')}/{asset}"
        assert f'"{reference}"' in html
        assert urljoin("http://host/prefix/docs", reference) == f"http://host/prefix{DOCS_ASSETS_PATH}/{asset}"
        response = client.get(f"{DOCS_ASSETS_PATH}/{asset}")
        assert response.status_code == 200 and len(response.get_data()) > 10_000, asset
    assert client.get("/redoc").status_code == 404


# --- a too-large body under gunicorn, over one real connection -------------------------------------

@pytest.fixture(scope="module")
def served_intake(kafka_bootstrap, mongo_uri, tmp_path_factory):
    """intake's web app under gunicorn with the deployment's own configuration (one worker)."""
    port = free_port()
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "services" / "intake")]),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "MONGO_URI": mongo_uri, "MONGO_DATABASE": "test_intake",
        **test_keys().environ("intake"), "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1",
        "LOG_LEVEL": "WARNING",
    })
    log = open(tmp_path_factory.mktemp("gunicorn") / "web.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                                "intake.app:create_app()"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def ready():
        assert process.poll() is None, f"gunicorn exited with {process.returncode}"
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except OSError as exc:
            raise AssertionError(f"not answering yet: {exc}") from None
    try:
        eventually(ready, timeout=90, interval=0.2)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _send(sock: socket.socket, method: str, path: str, *, body: bytes = b"", headers: dict | None = None,
          declared_length: int | None = None) -> http.client.HTTPResponse:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or declared_length is not None:
        head.append(f"Content-Length: {declared_length if declared_length is not None else len(body)}")
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    response = http.client.HTTPResponse(sock, method=method)
    response.begin()
    response.body = response.read()
    return response


def _closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed its side (EOF or reset), polling with a deadline."""
    sock.settimeout(0.5)

    def closed():
        try:
            return sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            raise AssertionError("the connection is still open") from None
    return eventually(closed, timeout=15, interval=0)


def _next_request_works_or_close_was_announced(sock, response):
    if (response.getheader("Connection") or "").lower() == "close":
        assert _closed_by_server(sock)
        return "closed"
    again = _send(sock, "GET", "/healthz")
    assert again.status == 200, again.body
    return "kept"


def test_a_too_large_body_closes_the_connection_as_announced(served_intake):
    token = issue_token(test_keys().signing_key, organization_id=None, role="operator")
    body = b'{"name": "' + b"a" * (MAX_BODY_BYTES + 1024) + b'"}'
    with socket.create_connection(("127.0.0.1", served_intake), timeout=30) as sock:
        assert _send(sock, "GET", "/healthz").status == 200  # a kept-alive connection, used once already
        response = _send(sock, "POST", "/v1/organizations", body=body,
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        assert response.status == 413, response.body[:300]
        assert response.getheader("Content-Type") == "application/problem+json"
        assert response.getheader("Connection", "").lower() == "close"
        assert _next_request_works_or_close_was_announced(sock, response) == "closed"


@pytest.mark.parametrize("case", ["415 to a text body", "401 to a body", "422 to a JSON body"])
def test_a_refused_body_the_view_did_not_read_leaves_the_connection_usable(served_intake, case):
    """A body under the limit that no view read (refused before): discarded, so keep-alive holds."""
    token = issue_token(test_keys().signing_key, organization_id=None, role="operator")
    big = b"x" * (MAX_BODY_BYTES // 2)
    headers, body, expected = {
        "415 to a text body": ({"Authorization": f"Bearer {token}", "Content-Type": "text/plain"}, big, 415),
        "401 to a body": ({"Content-Type": "application/json"}, b'{"name": "' + big + b'"}', 401),
        "422 to a JSON body": ({"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                               b'{"name": "' + big + b'"}', 422),
    }[case]
    with socket.create_connection(("127.0.0.1", served_intake), timeout=30) as sock:
        for _ in range(2):
            response = _send(sock, "POST", "/v1/organizations", body=body, headers=headers)
            assert response.status == expected, response.body[:300]
            assert _next_request_works_or_close_was_announced(sock, response) == "kept"
