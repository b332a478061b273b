"""The console's API client (issue 16, "Fast"): a page's independent calls at once (``Api.together``), and a
GET sent again when the kept-alive connection it was given had just been closed by the service (the rare
503 page the console benchmark saw), against a real HTTP server on a socket; and the sites kept per person
between pages (``Api.get_kept``)."""
from __future__ import annotations

import contextvars
import json
import socket
import threading
import uuid
from dataclasses import dataclass

import pytest
import requests

from console.api_client import Api, ApiError, ServiceUnavailable, new_session

pytestmark = pytest.mark.timeout(60)


@dataclass
class Settings:
    url: str = "http://127.0.0.1:9"
    api_timeout_seconds: float = 10.0
    not_yet_known_wait_seconds: float = 0.0
    kept_answer_seconds: float = 30.0

    def service_url(self, service: str) -> str:
        return self.url


def test_together_answers_in_order_with_the_calls_made_at_once():
    client = Api(Settings(), "token")
    everyone_in = threading.Barrier(3, timeout=20)   # passes only when the three calls run at the same time

    def call(n):
        everyone_in.wait()
        return n * 10
    assert client.together(lambda: call(1), lambda: call(2), lambda: call(3)) == [10, 20, 30]
    assert client.together() == [] and client.together(lambda: "alone") == ["alone"]


def test_together_runs_each_call_in_the_caller_s_context_and_inline_when_nested():
    client = Api(Settings(), "token")
    who = contextvars.ContextVar("who")
    who.set("the page's request")
    caller = threading.get_ident()
    threads = []

    def inner():
        threads.append(threading.get_ident())
        return who.get()

    def outer():
        # a call that itself asks for calls together: they run in its own thread, one after another
        return client.together(inner, inner)

    assert client.together(outer, lambda: who.get()) == [["the page's request"] * 2, "the page's request"]
    assert len(set(threads)) == 1 and caller not in threads


def test_together_raises_the_first_failure_in_order_once_every_call_has_finished():
    client = Api(Settings(), "token")
    finished = []
    release = threading.Event()

    def slow_ok():
        release.wait(20)
        finished.append("slow")
        return "ok"

    def refused():
        release.set()
        raise ApiError(403, "Forbidden")

    def also_refused():
        raise ApiError(404, "Not Found")

    with pytest.raises(ApiError) as raised:
        client.together(slow_ok, refused, also_refused)
    assert raised.value.status == 403 and finished == ["slow"]


class OneShotKeepAliveServer:
    """Answers the first request of each connection (keep-alive); on its first connection, closes the socket
    as the second request arrives, without answering — what a service's gunicorn does when a kept-alive
    connection's idle time runs out just as the console reuses it."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.requests: list[str] = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.handle, args=(conn, self.connections == 1), daemon=True).start()

    def handle(self, conn, drop_second):
        with conn:
            for n in range(2):
                data = conn.recv(65536)
                if not data:
                    return
                self.requests.append(data.split(b" ", 1)[0].decode())
                if n == 1 and drop_second:
                    return                      # closed with the request unanswered
                body = b'{"ok": true}'
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    def close(self):
        self.sock.close()


@pytest.fixture
def server():
    s = OneShotKeepAliveServer()
    yield s
    s.close()


def test_a_get_on_a_connection_the_service_just_closed_is_sent_again_on_a_new_one(server):
    client = Api(Settings(url=f"http://127.0.0.1:{server.port}"), "token", http=new_session())
    assert client.get("intake", "/v1/sites") == {"ok": True}
    assert client.get("intake", "/v1/sites") == {"ok": True}     # the kept-alive connection dropped it
    assert server.connections == 2 and server.requests == ["GET", "GET", "GET"]


def test_a_post_is_not_sent_twice_and_the_reason_is_kept_for_the_log(server):
    client = Api(Settings(url=f"http://127.0.0.1:{server.port}"), "token", http=new_session())
    assert client.get("intake", "/v1/sites") == {"ok": True}
    with pytest.raises(ServiceUnavailable) as away:
        client.post("intake", "/v1/members", json={})
    assert away.value.service == "intake" and away.value.reason.startswith("ConnectionError: ")
    assert away.value.reason != "ConnectionError: " and server.requests == ["GET", "POST"]


class CountingHttp:
    """A stand-in for the connection pool that answers every GET with a fresh JSON body and counts them."""

    def __init__(self):
        self.asked: list[tuple[str, str]] = []

    def request(self, method, url, headers=None, **_):
        self.asked.append((headers.get("Authorization"), url))
        answer = requests.Response()
        answer.status_code, answer.headers["Content-Type"] = 200, "application/json"
        answer._content = json.dumps({"items": [{"id": "s1", "name": f"Site (answer {len(self.asked)})"}]}).encode()
        return answer


def test_kept_answers_are_per_person_copies_and_asked_again_when_their_time_is_up():
    http, now = CountingHttp(), [1000.0]
    settings = Settings(url="http://intake.test", kept_answer_seconds=30.0)
    ana, ben = (Api(settings, token, http=http, clock=lambda: now[0]) for token in (f"ana-{uuid.uuid4()}", f"ben-{uuid.uuid4()}"))

    first = ana.get_kept("intake", "/v1/sites", params={"limit": 200})
    first["items"][0]["name"] = "changed by the page that asked"
    assert ana.get_kept("intake", "/v1/sites", params={"limit": 200})["items"][0]["name"] == "Site (answer 1)"
    assert ben.get_kept("intake", "/v1/sites", params={"limit": 200})["items"][0]["name"] == "Site (answer 2)"
    assert ana.get_kept("intake", "/v1/sites", params={"limit": 200, "offset": 200})["items"][0]["name"] == "Site (answer 3)"
    assert len(http.asked) == 3 and {who for who, _ in http.asked} == {f"Bearer {ana.token}", f"Bearer {ben.token}"}

    now[0] += 29.9
    assert ana.get_kept("intake", "/v1/sites", params={"limit": 200})["items"][0]["name"] == "Site (answer 1)"
    now[0] += 0.2
    assert ana.get_kept("intake", "/v1/sites", params={"limit": 200})["items"][0]["name"] == "Site (answer 4)"
