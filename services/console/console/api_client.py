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
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import requests

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
        self.service = service


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
                raise ServiceUnavailable(service, type(exc).__name__) from exc
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


_SESSION: requests.Session | None = None


def _shared_session() -> requests.Session:
    """One connection pool per process (gunicorn's threads share it; requests' Session is safe for that use)."""
    global _SESSION
    if _SESSION is None:
        _SESSION = requests.Session()
    return _SESSION
