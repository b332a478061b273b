"""The console's API client (issue 16, "Fast"): a page's independent calls at once (``Api.together``), and a
GET sent again when the kept-alive connection it was given had just been closed by the service (the rare
503 page the console benchmark saw), against a real HTTP server on a socket; and the sites kept per person
between pages (``Api.get_kept``). Since the client calls urllib3 directly (no longer requests): what a service
receives (the query, JSON and multipart bodies) and how its answers become results and errors, against a
real HTTP server too."""
from __future__ import annotations

import contextvars
import http.server
import json
import socket
import threading
import urllib.parse
import uuid
from dataclasses import dataclass

import pytest
import urllib3

from console.api_client import Api, ApiError, ServiceUnavailable, SignedOut, new_pool

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
    client = Api(Settings(url=f"http://127.0.0.1:{server.port}"), "token", http=new_pool())
    assert client.get("intake", "/v1/sites") == {"ok": True}
    assert client.get("intake", "/v1/sites") == {"ok": True}     # the kept-alive connection dropped it
    assert server.connections == 2 and server.requests == ["GET", "GET", "GET"]


def test_a_post_is_not_sent_twice_and_the_reason_is_kept_for_the_log(server):
    client = Api(Settings(url=f"http://127.0.0.1:{server.port}"), "token", http=new_pool())
    assert client.get("intake", "/v1/sites") == {"ok": True}
    with pytest.raises(ServiceUnavailable) as away:
        client.post("intake", "/v1/members", json={})
    assert away.value.service == "intake" and away.value.reason.startswith("ConnectionError: ")
    assert away.value.reason != "ConnectionError: " and server.requests == ["GET", "POST"]


class CountingHttp:
    """A stand-in for the connection pool that answers every GET with a fresh JSON body and counts them."""

    def __init__(self):
        self.asked: list[tuple[str, str]] = []

    def urlopen(self, method, url, headers=None, **_):
        self.asked.append((headers.get("Authorization"), url))
        body = json.dumps({"items": [{"id": "s1", "name": f"Site (answer {len(self.asked)})"}]}).encode()
        return urllib3.HTTPResponse(body=body, status=200, headers={"Content-Type": "application/json"})


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


def test_kept_records_asks_only_for_ids_not_kept_and_a_write_to_intake_forgets_them():
    http, now, asked = CountingHttp(), [1000.0], []
    settings = Settings(url="http://intake.test", kept_answer_seconds=30.0)
    ana, ben = (Api(settings, token, http=http, clock=lambda: now[0]) for token in (f"ana-{uuid.uuid4()}", f"ben-{uuid.uuid4()}"))
    shown = {"m1": {"first_name": "Ana"}, "m2": {"first_name": "Luis"}, "m4": {"first_name": "Rosa"}}   # m3: not shown

    def fetch(missing):
        asked.append(list(missing))
        return {i: dict(shown[i]) for i in missing if i in shown}

    first = ana.kept_records("members names", ["m1", "m2", "m3"], fetch)
    assert first == {"m1": {"first_name": "Ana"}, "m2": {"first_name": "Luis"}} and asked == [["m1", "m2", "m3"]]
    first["m1"]["first_name"] = "changed by the page that asked"
    # kept: only m4 is asked for, and m3 (not shown) is not asked again
    assert ana.kept_records("members names", ["m1", "m3", "m4"], fetch) == {"m1": {"first_name": "Ana"},
                                                                            "m4": {"first_name": "Rosa"}}
    assert asked[1:] == [["m4"]]
    assert ana.kept_records("members names", ["m1", "m3"], fetch) and asked[2:] == []
    # kept per person, and per kind
    ben.kept_records("members names", ["m1"], fetch)
    ana.kept_records("leaders names", ["m1"], fetch)
    assert asked[2:] == [["m1"], ["m1"]]
    # a change written to intake through this console forgets what is kept (for everyone: it may be about anyone)
    ana.post("intake", "/v1/members/m1/plan", json={})
    ben.kept_records("members names", ["m1"], fetch)
    assert asked[4:] == [["m1"]]
    # and a kept record is asked for again when its time is up
    now[0] += 30.1
    ben.kept_records("members names", ["m1"], fetch)
    assert asked[5:] == [["m1"]]


class RecordingServer:
    """A real HTTP/1.1 server (keep-alive) on a thread: records each request (method, path, query, headers,
    body) and the connections it was sent on, and answers with ``self.answer`` (status, headers, body)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.connections = 0
        self.answer = (200, {"Content-Type": "application/json"}, b'{"ok": true}')
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def setup(self):
                super().setup()
                recorder.connections += 1

            def answer(self):
                url = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                recorder.requests.append({"method": self.command, "path": url.path,
                                          "query": urllib.parse.parse_qsl(url.query, keep_blank_values=True),
                                          "headers": dict(self.headers), "body": self.rfile.read(length)})
                status, headers, body = recorder.answer
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = answer

            def log_message(self, *_):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def recording():
    s = RecordingServer()
    yield s
    s.close()


def test_the_query_and_the_bodies_arrive_as_requests_sent_them(recording):
    client = Api(Settings(url=recording.url), "token", http=new_pool())
    # what the pages pass: lists (members' fields, my registrations' statuses), ints, the flags as the strings the
    # services read ("true"), a name with spaces and non-ASCII letters; None is left out, as requests did, and a
    # Python bool is sent as requests sent it ("True"/"False": no page passes one)
    assert client.get("intake", "/v1/members", params={
        "limit": 20, "offset": 0, "fields": ["id", "first_name"], "flagged": "true", "name": "Zoë Ann & co",
        "site_id": None, "status": ["registered", None, "waitlisted"], "mine": True, "all": False}) == {"ok": True}
    assert client.post("intake", "/v1/members", {"first_name": "Zoë", "sites": ["s1"], "note": None}) == {"ok": True}
    assert client.send("PUT", "intake", "/v1/me/stretched", json={"on": True}, if_match='"v3"') == {"ok": True}
    assert client.request("DELETE", "matching", "/v1/overrides/o1") == {"ok": True}
    assert client.request("POST", "intake", "/v1/sites/s1/imports",
                          files={"file": ("members.csv", b"first_name\nAna\n", "text/csv")}) == {"ok": True}

    get, post, put, delete, upload = recording.requests
    assert (get["method"], get["path"]) == ("GET", "/v1/members")
    assert get["query"] == [("limit", "20"), ("offset", "0"), ("fields", "id"), ("fields", "first_name"),
                            ("flagged", "true"), ("name", "Zoë Ann & co"), ("status", "registered"),
                            ("status", "waitlisted"), ("mine", "True"), ("all", "False")]
    assert get["headers"]["Accept"] == "application/json" and get["headers"]["Authorization"] == "Bearer token"
    assert "Content-Length" not in get["headers"] and get["body"] == b""
    assert post["headers"]["Content-Type"] == "application/json"
    assert json.loads(post["body"]) == {"first_name": "Zoë", "sites": ["s1"], "note": None}
    assert put["method"] == "PUT" and put["headers"]["If-Match"] == '"v3"' and json.loads(put["body"]) == {"on": True}
    assert delete["method"] == "DELETE" and delete["headers"]["Content-Length"] == "0" and delete["body"] == b""
    assert upload["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    assert (b'Content-Disposition: form-data; name="file"; filename="members.csv"\r\nContent-Type: text/csv\r\n\r\n'
            b"first_name\nAna\n") in upload["body"]
    assert recording.connections == 1          # every answer read to its end and its connection kept for the next


def test_a_5xx_is_the_service_away_a_401_signed_out_and_a_problem_an_api_error(recording):
    client = Api(Settings(url=recording.url), "token", http=new_pool())
    recording.answer = (503, {"Content-Type": "text/html"}, b"<p>busy</p>")
    with pytest.raises(ServiceUnavailable) as away:
        client.get("matching", "/v1/waitlist")
    assert (away.value.service, away.value.reason) == ("matching", "503")
    recording.answer = (401, {"Content-Type": "application/problem+json"}, b'{"title": "Unauthorized"}')
    with pytest.raises(SignedOut):
        client.post("matching", "/v1/matches/m1/accept")
    recording.answer = (422, {"Content-Type": "application/problem+json"},
                        json.dumps({"title": "Invalid", "detail": "Check the form.", "errors": {"phone": ["Not a number."]}}).encode())
    with pytest.raises(ApiError) as refused:
        client.post("intake", "/v1/members", {"phone": "x"})
    assert (refused.value.status, refused.value.title, refused.value.field_errors()) == (422, "Invalid", {"phone": ["Not a number."]})
    recording.answer = (404, {"Content-Type": "text/html"}, b"<p>no</p>")
    with pytest.raises(ApiError) as missing:
        client.get("intake", "/v1/members/nobody")
    assert (missing.value.status, missing.value.title) == (404, "Not Found")
    recording.answer = (200, {"Content-Type": "application/json", "ETag": '"v7"'}, b'{"id": "m1"}')
    assert client.get_with_etag("intake", "/v1/members/m1") == ({"id": "m1"}, '"v7"')
    recording.answer = (204, {}, b"")
    assert client.request("DELETE", "intake", "/v1/members/m1/flags/x") is None
    assert recording.connections == 1


def test_a_download_streams_and_a_download_stopped_halfway_closes_its_connection(recording):
    client = Api(Settings(url=recording.url), "token", http=new_pool())
    csv_text = b"".join(b"row %d,some text\n" % n for n in range(20000))
    recording.answer = (200, {"Content-Type": "text/csv"}, csv_text)
    whole = client.download("reporting", "/v1/reports/outcomes.csv", params={"from": "2025-01-01", "site_id": None})
    assert b"".join(whole.stream(16384)) == csv_text
    whole.close()
    whole.release_conn()
    assert recording.requests[-1]["headers"]["Accept"] == "text/csv"
    assert recording.requests[-1]["query"] == [("from", "2025-01-01")]

    halfway = client.download("reporting", "/v1/reports/outcomes.csv")
    assert len(next(halfway.stream(16384))) == 16384
    halfway.close()
    halfway.release_conn()
    assert recording.connections == 1          # the whole download's connection was kept, then used again
    assert client.get("reporting", "/v1/reports/outcomes", params={"from": "2025-01-01"}) is None   # text/csv: no JSON
    assert recording.connections == 2          # not the one closed with the rest of its body unread
