"""Calls to the four services' public HTTP APIs with the signed-in person's token, exactly as an outside
client would (DESIGN.md: the console is a backend-for-frontend).

Answers become what a page needs:
- 2xx: the JSON body (or None);
- problem+json "not yet known" (a service has not yet heard of something intake just created): waited
  out here, once per Retry-After, within ``not_yet_known_wait_seconds``; after that it is an ``ApiError``;
- 401: ``SignedOut`` (the token expired or was revoked: the session ends and the person signs in again);
- any other problem+json: ``ApiError`` with the field errors (``errors``: field -> messages), which forms
  show next to the field they name;
- no answer, or a 5xx: ``ServiceUnavailable`` (the error page says which part is away, never a trace).

A page's independent calls go out at once (``Api.together``), on a small pool of threads per process, each
call with this client's token (so with the signed-in person's own rights, nothing shared between people).
The calls go through urllib3 directly, not requests: CPU per click is what limits the console under load, and
requests' preparation, setting merges, cookie jar and hooks around the same urllib3 call cost about a third
of a call's CPU (measured against a local server: 1.8 -> 1.2 ms of CPU a call; 0.83 -> 0.53 ms on a faster
machine with a 35 KB answer; a page makes about four). What requests did for the console is done here alike:
the query (``_query``: a list gives repeated keys, None is left out, other values as ``str()``), a JSON body or
a multipart file upload (``_body``), and the names its errors had in the log (``_failure``: "ConnectionError:
RemoteDisconnected", "ReadTimeout: ReadTimeoutError"). Redirects are not followed (requests followed them; no
service answers with one): a 3xx comes back as it is.
The connections are kept alive in one pool per process (``_shared_pool``); a GET that meets a connection
the service closed as it was being reused is sent again once, on a new connection (see ``_ReusedConnectionRetry``).
Reference data nearly every page shows and the console never changes (the sites) is kept per person for a few
seconds (``Api.get_kept``), so each click does not ask for it again; so are the names of people a list shows
(``Api.kept_records``), which Today asks for at each refresh. A write to intake from this process forgets both.
"""
from __future__ import annotations

import contextvars
import copy
import hashlib
import json as jsonlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlencode

import certifi
import urllib3
from urllib3.exceptions import (ClosedPoolError, ConnectTimeoutError, DecodeError, HTTPError, InvalidHeader,
                                LocationValueError, MaxRetryError, NewConnectionError, ProtocolError, ProxyError,
                                ReadTimeoutError, ResponseError, SSLError)
from urllib3.filepost import encode_multipart_formdata
from urllib3.util.retry import Retry

NOT_YET_KNOWN = "https://recoverynet.org/problems/not-yet-known"


@dataclass
class ApiError(Exception):
    status: int
    title: str
    detail: str | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)
    type: str = "about:blank"
    body: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.title}: {self.detail or ''}"

    def field_errors(self) -> dict[str, list[str]]:
        """``errors`` with every value a list of strings (nested errors are flattened to their text)."""
        flat: dict[str, list[str]] = {}
        for name, messages in (self.errors or {}).items():
            if isinstance(messages, str):
                flat[name] = [messages]
            elif isinstance(messages, list):
                flat[name] = [m if isinstance(m, str) else str(m) for m in messages]
            else:
                flat[name] = [str(messages)]
        return flat


class SignedOut(Exception):
    """The service refused the token (401): expired, revoked by "sign out everywhere", or deactivated."""


class ServiceUnavailable(Exception):
    def __init__(self, service: str, reason: str):
        super().__init__(f"{service} did not answer ({reason})")
        self.service, self.reason = service, reason


def _problem(response: urllib3.BaseHTTPResponse, content: bytes) -> ApiError:
    try:
        body = jsonlib.loads(content)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return ApiError(status=response.status, title=body.get("title") or response.reason or "Error",
                    detail=body.get("detail"), errors=body.get("errors") or {}, type=body.get("type", "about:blank"),
                    body=body)


def _retry_after(response: urllib3.BaseHTTPResponse, problem: ApiError) -> float:
    for raw in (response.headers.get("Retry-After"), problem.body.get("retry_after")):
        try:
            return max(0.1, float(raw))
        except (TypeError, ValueError):
            continue
    return 1.0


def _query(params: dict | None) -> str:
    """The query string of ``params`` as requests made it: a list value gives the key once per item, a None value
    (or item) is left out, anything else is ``str()``'d (``True`` -> "True"), all form-encoded (a space is "+").
    The console passes its flags as the strings the services expect ("true")."""
    pairs = []
    for key, values in (params or {}).items():
        for value in values if isinstance(values, (list, tuple)) else (values,):
            if value is not None:
                pairs.append((key, value))
    return urlencode(pairs)


def _body(service: str, json, files) -> tuple[bytes | None, str | None]:
    """(body, its Content-Type) of a call: a file upload (``files``: name -> (filename, content, content type))
    as multipart/form-data, else ``json`` (when not None) as JSON."""
    if files:
        return encode_multipart_formdata(files)
    if json is None:
        return None, None
    try:
        return jsonlib.dumps(json, allow_nan=False).encode("utf-8"), "application/json"
    except ValueError as exc:          # NaN or infinity: what requests called an InvalidJSONError
        raise ServiceUnavailable(service, _reason("InvalidJSONError", exc)) from exc


def _failure(exc: Exception, reading_body: bool = False) -> str | None:
    """Why a call got no answer, for the log; None for an error that is not about the answer (raised as it is).
    The reasons are named as they were when the console used requests (its exception's type for urllib3's, as
    requests' HTTPAdapter and Response.content named them), so the log reads the same."""
    if reading_body:                   # the status line and headers came, the body did not (all of it)
        kind = ("ChunkedEncodingError" if isinstance(exc, ProtocolError) else
                "ContentDecodingError" if isinstance(exc, DecodeError) else
                "ConnectionError" if isinstance(exc, ReadTimeoutError) else
                "SSLError" if isinstance(exc, SSLError) else None)
    elif isinstance(exc, (ProtocolError, OSError, ClosedPoolError)):
        kind = "ConnectionError"      # e.g. a POST's connection closed by the service (never sent again)
    elif isinstance(exc, MaxRetryError):
        why = exc.reason               # what urllib3 gave up on (a GET sent again, or a connection not made)
        kind = ("ConnectTimeout" if isinstance(why, ConnectTimeoutError) and not isinstance(why, NewConnectionError)
                else "RetryError" if isinstance(why, ResponseError)
                else "ProxyError" if isinstance(why, ProxyError)
                else "SSLError" if isinstance(why, SSLError)
                else "ConnectionError")
    else:
        kind = ("ProxyError" if isinstance(exc, ProxyError) else
                "SSLError" if isinstance(exc, SSLError) else
                "ReadTimeout" if isinstance(exc, ReadTimeoutError) else   # slow, not gone: not sent again
                "InvalidHeader" if isinstance(exc, InvalidHeader) else
                "InvalidURL" if isinstance(exc, LocationValueError) else None)
    return None if kind is None else _reason(kind, exc)


def _reason(kind: str, exc: Exception) -> str:
    """``kind`` and the underlying error's type ("ConnectionError: RemoteDisconnected"), never the URL's query."""
    inner = getattr(exc, "reason", exc)          # urllib3's MaxRetryError -> what it gave up on
    inner = inner.args[1] if isinstance(inner, Exception) and len(inner.args) > 1 and isinstance(inner.args[1], Exception) else inner
    return kind + (f": {type(inner).__name__}" if isinstance(inner, Exception) else "")


class Api:
    """One person's client: ``Api(settings, token).get("matching", "/v1/waitlist", params={...})``."""

    def __init__(self, settings, token: str | None, http: urllib3.PoolManager | None = None,
                 clock=time.monotonic, sleep=time.sleep):
        self.settings, self.token = settings, token
        self.http = http or _shared_pool()
        self.clock, self.sleep = clock, sleep

    def get(self, service: str, path: str, params: dict | None = None):
        return self.request("GET", service, path, params=params)

    def get_kept(self, service: str, path: str, params: dict | None = None):
        """``get``, answered from this process's memory when the same person (the same token) asked the same
        within ``settings.kept_answer_seconds``: for reference data the console never changes (the sites
        on nearly every page). A change made elsewhere shows within that time. Each caller gets its own copy."""
        key = (self._person(), service, path, repr(sorted((params or {}).items())))
        body = _KEPT.get(key, self.clock())
        if body is None:
            body = self.get(service, path, params=params)
            _KEPT.put(key, body, self.clock() + self.settings.kept_answer_seconds)
        return copy.deepcopy(body)

    def kept_records(self, kind: str, ids: list[str], fetch: Callable[[list[str]], dict[str, dict]]) -> dict[str, dict]:
        """Records by id (``kind`` names what they are, such as members' names), kept per person as ``get_kept``
        keeps answers: ``fetch`` is called with the ids not kept (at most once) and answers id -> record; an id
        it leaves out (intake will not show it to this person) is kept as such too. For the names a page that
        refreshes itself shows again and again (Today, every few seconds): each lookup by ids is a call to
        intake and an entry in its audit log. A write to intake from this process forgets everything kept."""
        person, now = self._person(), self.clock()
        records, missing = {}, []
        for record_id in ids:
            kept = _KEPT.get((person, kind, record_id), now)
            if kept is None:
                missing.append(record_id)
            elif kept is not _NOT_SHOWN:
                records[record_id] = copy.deepcopy(kept)
        if missing:
            found = fetch(missing)
            until = self.clock() + self.settings.kept_answer_seconds
            for record_id in missing:
                record = found.get(record_id)
                _KEPT.put((person, kind, record_id), _NOT_SHOWN if record is None else copy.deepcopy(record), until)
                if record is not None:
                    records[record_id] = record
        return records

    def _person(self) -> str:
        return hashlib.sha256((self.token or "").encode()).hexdigest()

    def post(self, service: str, path: str, json: dict | None = None):
        return self.request("POST", service, path, json=json if json is not None else {})

    def get_with_etag(self, service: str, path: str, params: dict | None = None) -> tuple[object, str | None]:
        """(body, ETag) of a GET: the ETag goes back in ``If-Match`` when the page saves a change."""
        return self.request("GET", service, path, params=params, with_etag=True)

    def send(self, method: str, service: str, path: str, json: dict | None = None, if_match: str | None = None):
        """A PATCH/PUT/POST/DELETE, with ``If-Match`` when given (412: someone changed it since it was read)."""
        return self.request(method, service, path, json=json, extra_headers={"If-Match": if_match} if if_match else None)

    def download(self, service: str, path: str, params: dict | None = None,
                 accept: str = "text/csv") -> urllib3.BaseHTTPResponse:
        """A GET answered in another format (CSV): urllib3's response itself, its body not yet read, errors as for
        ``get``; the caller passes the body on with ``stream(...)`` and then calls ``close()`` and ``release_conn()``
        (the Reports page's "Download as CSV"): ``close`` closes the connection when the body was not read to its
        end (the person stopped the download), ``release_conn`` gives its place in the pool back."""
        return self.request("GET", service, path, params=params, extra_headers={"Accept": accept}, raw=True, stream=True)

    def together(self, *calls: Callable[[], object]) -> list:
        """The answers of a page's independent calls, made at once: ``a, b = client.together(lambda:
        client.get(...), lambda: client.get(...))``. Each call runs in a copy of the caller's context (the
        request, ``g``, the log's request id), so what it does is what it would do in line; the answers come
        in the order given. When calls fail, the first failing one's error (in that order) is raised once
        every call has finished. Called from inside such a call, the calls run one after another (the pool
        never waits on itself)."""
        if len(calls) <= 1 or getattr(_IN_POOL, "active", False):
            return [call() for call in calls]
        futures = [_pool().submit(contextvars.copy_context().run, _in_pool, call) for call in calls]
        results, failure = [], None
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as exc:  # noqa: BLE001 - raised below, after every call has finished
                results.append(None)
                failure = failure or exc
        if failure is not None:
            raise failure
        return results

    def request(self, method: str, service: str, path: str, *, extra_headers: dict | None = None,
                with_etag: bool = False, raw: bool = False, params=None, json=None, files=None, stream: bool = False):
        """One call and its answer (see the module's docstring). ``params``: the query (``_query``); ``json``: a
        JSON body; ``files``: a multipart upload; ``raw``: a 2xx/3xx comes back as urllib3's response, its body
        not yet read when ``stream``."""
        method = method.upper()
        if method not in ("GET", "HEAD") and service == "intake":
            _KEPT.clear()   # what is kept (sites, names) comes from intake: a change made here shows at once
        url = self.settings.service_url(service) + path
        query = _query(params)
        if query:
            url += ("&" if "?" in url else "?") + query
        headers = {"Accept": "application/json", **(extra_headers or {})}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        body, content_type = _body(service, json, files)
        if content_type and not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = content_type
        if body is None and method not in ("GET", "HEAD"):
            body = b""                 # "Content-Length: 0", as requests sent with a bodiless DELETE
        deadline = self.clock() + self.settings.not_yet_known_wait_seconds
        while True:
            try:
                # Not read by urlopen (preload_content=False), as requests did: the body is read below, so a
                # body cut short is a ServiceUnavailable, not sent again even for a GET.
                response = self.http.urlopen(method, url, body=body, headers=headers, redirect=False,
                                             retries=_RETRY, timeout=self.settings.api_timeout_seconds,
                                             preload_content=False)
            except (HTTPError, OSError) as exc:
                reason = _failure(exc)
                if reason is None:
                    raise
                raise ServiceUnavailable(service, reason) from exc
            if response.status < 400 and raw and stream:
                return response
            try:
                content = response.data or b""          # the whole body; the connection goes back to the pool
            except (HTTPError, OSError) as exc:
                reason = _failure(exc, reading_body=True)
                if reason is None:
                    raise
                raise ServiceUnavailable(service, reason) from exc
            if response.status < 400 and raw:
                return response
            if response.status < 400:
                answer = jsonlib.loads(content) if content and "json" in response.headers.get("Content-Type", "") else None
                return (answer, response.headers.get("ETag")) if with_etag else answer
            if response.status == 401:
                raise SignedOut(f"{service} refused the token")
            if response.status >= 500:
                raise ServiceUnavailable(service, str(response.status))
            problem = _problem(response, content)
            if problem.type == NOT_YET_KNOWN:
                wait = _retry_after(response, problem)
                if self.clock() + wait <= deadline:
                    self.sleep(wait)
                    continue
            raise problem


# Calls in flight at once per console process, for all its pages together (gunicorn runs several requests
# per process on its threads; each page sends a handful of calls at a time).
PARALLEL_CALLS = 16
# Kept-alive connections per service per process: as many as calls can be in flight, so none is opened and
# thrown away under load.
CONNECTIONS_PER_SERVICE = PARALLEL_CALLS + 8

class _KeptAnswers:
    """Answers by key until their time is up; at most ``most`` kept (all dropped when full: simpler than an
    LRU, and a few hundred people's sites refill in one click each)."""

    def __init__(self, most: int = 5000):
        self.most, self._answers, self._lock = most, {}, threading.Lock()

    def get(self, key, now: float):
        hit = self._answers.get(key)
        return hit[1] if hit is not None and now < hit[0] else None

    def put(self, key, body, until: float) -> None:
        with self._lock:
            if len(self._answers) >= self.most:
                self._answers.clear()
            self._answers[key] = (until, body)

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()


_KEPT = _KeptAnswers()
_NOT_SHOWN = object()   # kept for an id intake did not show
_HTTP: urllib3.PoolManager | None = None
_POOL: ThreadPoolExecutor | None = None
_LOCK = threading.Lock()
_IN_POOL = threading.local()


def _in_pool(call: Callable[[], object]):
    _IN_POOL.active = True
    try:
        return call()
    finally:
        _IN_POOL.active = False


def _pool() -> ThreadPoolExecutor:
    """The process's threads for ``Api.together`` (made on first use: after gunicorn's fork)."""
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=PARALLEL_CALLS, thread_name_prefix="console-api")
        return _POOL


class _ReusedConnectionRetry(Retry):
    """Send a GET again, once, when its kept-alive connection dropped before the service answered.

    The services' gunicorn closes a connection idle for ``keepalive`` seconds. urllib3 checks that a pooled
    connection is still open before reusing it, but when the service closes it between that check and the
    request's arrival (a window that grows when the machine is busy), the request fails at once with "Remote
    end closed connection without response" or "Connection reset by peer": the console showed its 503 page
    although the service was up. A GET is safe to send again; a POST is not, so it is not retried. A read
    timeout (the service is slow, not gone) is not retried either: the page would only wait twice as long."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if isinstance(error, ReadTimeoutError):
            raise error
        return super().increment(method, url, response=response, error=error, _pool=_pool, _stacktrace=_stacktrace)


# Every call's retries (urllib3 applies them per call; the same for every method): a connection not made is
# tried once more (nothing was sent), a GET or HEAD whose reused connection the service had closed is sent again
# once, a POST (or PUT, PATCH, DELETE) never; no status is retried and no redirect followed (a 3xx is the answer).
_RETRY = _ReusedConnectionRetry(total=1, connect=1, read=1, status=0, other=0, redirect=0,
                                allowed_methods=frozenset({"GET", "HEAD"}), raise_on_status=False)


def new_pool() -> urllib3.PoolManager:
    """A connection pool as the console uses it: enough kept-alive connections per service for the calls in
    flight (more are opened, not waited for, when a burst needs them: ``block=False``), reached directly (no
    proxy, no ``.netrc``: urllib3 looks nothing up in the environment), and, should a service's URL be https,
    its certificate checked against certifi's authorities as requests did."""
    return urllib3.PoolManager(num_pools=8, maxsize=CONNECTIONS_PER_SERVICE, block=False, cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())


def _shared_pool() -> urllib3.PoolManager:
    """One connection pool per process, made on first use (after gunicorn's fork); gunicorn's threads and
    ``Api.together``'s share it (urllib3's PoolManager is safe for that use)."""
    global _HTTP
    with _LOCK:
        if _HTTP is None:
            _HTTP = new_pool()
        return _HTTP
