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
The connections are kept alive in one pool per process (``_shared_session``); a GET that meets a connection
the service closed as it was being reused is sent again once, on a new connection (see ``_ReusedConnectionRetry``).
Reference data nearly every page shows and the console never changes (the sites) is kept per person for a few
seconds (``Api.get_kept``), so each click does not ask for it again.
"""
from __future__ import annotations

import contextvars
import copy
import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
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


def _problem(response: requests.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return ApiError(status=response.status_code, title=body.get("title") or response.reason or "Error",
                    detail=body.get("detail"), errors=body.get("errors") or {}, type=body.get("type", "about:blank"),
                    body=body)


def _reason(exc: requests.RequestException) -> str:
    """Why a call got no answer, for the log: the exception's type and, for a connection error, the
    underlying one's ("ConnectionError: RemoteDisconnected"), never the URL's query."""
    inner = exc.args[0] if exc.args else None
    inner = getattr(inner, "reason", inner)          # urllib3's MaxRetryError -> what it gave up on
    inner = inner.args[1] if isinstance(inner, Exception) and len(inner.args) > 1 and isinstance(inner.args[1], Exception) else inner
    return type(exc).__name__ + (f": {type(inner).__name__}" if isinstance(inner, Exception) else "")


def _retry_after(response: requests.Response, problem: ApiError) -> float:
    for raw in (response.headers.get("Retry-After"), problem.body.get("retry_after")):
        try:
            return max(0.1, float(raw))
        except (TypeError, ValueError):
            continue
    return 1.0


class Api:
    """One person's client: ``Api(settings, token).get("matching", "/v1/waitlist", params={...})``."""

    def __init__(self, settings, token: str | None, http: requests.Session | None = None,
                 clock=time.monotonic, sleep=time.sleep):
        self.settings, self.token = settings, token
        self.http = http or _shared_session()
        self.clock, self.sleep = clock, sleep

    def get(self, service: str, path: str, params: dict | None = None):
        return self.request("GET", service, path, params=params)

    def get_kept(self, service: str, path: str, params: dict | None = None):
        """``get``, answered from this process's memory when the same person (the same token) asked the same
        within ``settings.kept_answer_seconds``: for reference data the console never changes (the sites
        on nearly every page). A change made elsewhere shows within that time. Each caller gets its own copy."""
        key = (hashlib.sha256((self.token or "").encode()).hexdigest(), service, path,
               repr(sorted((params or {}).items())))
        body = _KEPT.get(key, self.clock())
        if body is None:
            body = self.get(service, path, params=params)
            _KEPT.put(key, body, self.clock() + self.settings.kept_answer_seconds)
        return copy.deepcopy(body)

    def post(self, service: str, path: str, json: dict | None = None):
        return self.request("POST", service, path, json=json if json is not None else {})

    def get_with_etag(self, service: str, path: str, params: dict | None = None) -> tuple[object, str | None]:
        """(body, ETag) of a GET: the ETag goes back in ``If-Match`` when the page saves a change."""
        return self.request("GET", service, path, params=params, with_etag=True)

    def send(self, method: str, service: str, path: str, json: dict | None = None, if_match: str | None = None):
        """A PATCH/PUT/POST/DELETE, with ``If-Match`` when given (412: someone changed it since it was read)."""
        return self.request(method, service, path, json=json, extra_headers={"If-Match": if_match} if if_match else None)

    def download(self, service: str, path: str, params: dict | None = None, accept: str = "text/csv") -> requests.Response:
        """A GET answered in another format (CSV): the streamed response itself, errors as for ``get``; the
        caller passes its body on with ``iter_content`` (the Reports page's "Download as CSV")."""
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
                with_etag: bool = False, raw: bool = False, **kwargs):
        url = self.settings.service_url(service) + path
        headers = {"Accept": "application/json", **(extra_headers or {})}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        deadline = self.clock() + self.settings.not_yet_known_wait_seconds
        while True:
            try:
                response = self.http.request(method, url, headers=headers, timeout=self.settings.api_timeout_seconds,
                                             **kwargs)
            except requests.RequestException as exc:
                raise ServiceUnavailable(service, _reason(exc)) from exc
            if response.status_code < 400 and raw:
                return response
            if response.status_code < 400:
                body = response.json() if response.content and "json" in response.headers.get("Content-Type", "") else None
                return (body, response.headers.get("ETag")) if with_etag else body
            if response.status_code == 401:
                raise SignedOut(f"{service} refused the token")
            if response.status_code >= 500:
                raise ServiceUnavailable(service, str(response.status_code))
            problem = _problem(response)
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


_KEPT = _KeptAnswers()
_SESSION: requests.Session | None = None
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


def new_session() -> requests.Session:
    """A connection pool as the console uses it: enough connections per service for the calls in flight,
    and a GET sent again once when its reused connection turns out closed."""
    session = requests.Session()
    # The services are reached directly: no proxy or .netrc looked up in the environment on every call
    # (requests scans os.environ and stats ~/.netrc per request: 0.4 of its 2.4 ms of CPU a call, measured).
    session.trust_env = False
    retry = _ReusedConnectionRetry(total=1, connect=1, read=1, status=0, other=0, redirect=0,
                                   allowed_methods=frozenset({"GET", "HEAD"}), raise_on_status=False)
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=CONNECTIONS_PER_SERVICE, max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _shared_session() -> requests.Session:
    """One connection pool per process (gunicorn's threads and ``Api.together``'s share it; requests'
    Session is safe for that use)."""
    global _SESSION
    with _LOCK:
        if _SESSION is None:
            _SESSION = new_session()
        return _SESSION
