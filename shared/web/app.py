"""The Flask app factory every service builds on: flask-smorest (OpenAPI at /openapi.json, docs at
/docs), problem+json errors, bearer auth, request ids and JSON logs, /healthz, /readyz, /metrics.

Every response says ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``, and
``Cache-Control: no-store`` unless its view chose its own caching (public feeds do): API answers carry
personal data. A route whose view takes a JSON body answers 415 to any other content type (a body
webargs would otherwise ignore, validating nothing). A 413 (body over MAX_BODY_BYTES) closes the
connection (and says so, deploy/gunicorn.conf.py); a smaller body a view did not read is discarded,
so the connection stays usable.

    def create_app(settings=None):
        settings = settings or Settings.from_env()
        app = create_service_app(settings.platform, title="Intake", description=...)
        app.extensions["intake.repository"] = Repository(app.extensions["mongo.client"], app.extensions["mongo.db"])
        app.extensions["smorest"].register_blueprint(api.blp)   # or: register(app, api.blp)
        return app

The web process never holds a Kafka client: it writes state and outbox, nothing more (DESIGN.md).
"""
from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import flask_swagger_ui
from flask import Flask, Response, g, jsonify, request
from flask_smorest import abort
from werkzeug.middleware.proxy_fix import ProxyFix
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from shared.config import PlatformSettings
from shared.logging import configure_logging, request_id
from shared.messaging.outbox import outbox_backlog
from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS, DatabaseGauges
from shared.mongo import connect
from shared.tracing import current_traceparent, child_of
from shared.auth import KeySet
from shared.revocations import Revocations
from shared.web.auth import install_auth
from shared.web.errors import ProblemApi, problem_response
from shared.web.openapi import document_operational_routes

log = logging.getLogger("recoverynet.http")

MAX_BODY_BYTES = 2 * 1024 * 1024  # a CSV import of a few thousand rows fits; larger answers 413

# Swagger UI's files, from the pinned flask-swagger-ui package, served by the app itself at
# /docs/assets/ (Flask's "static" route): the docs page loads nothing from another host. The page (/docs)
# names them relative to itself ("docs/assets/..."), so they load under a proxy's path prefix too.
SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).parent / "dist"
DOCS_ASSETS_PATH = "/docs/assets"


# Said at the top of every service's OpenAPI description (info.description), before what the service's
# routes show each role.
SIGN_IN_AND_ROLES = """

**Signing in.** Every route but the few public ones needs `Authorization: Bearer <token>`. People get their
token from intake: `POST /v1/sign-in` with their email (or phone) always answers 202 with the same body (whether
the address is anyone's is never told) and sends a one-time code and link, valid 15 minutes; `POST
/v1/sign-in/token` with that code answers the token (a used, expired or unknown code: 400). Tokens are signed
by intake alone (EdDSA; public keys at intake's `/.well-known/jwks.json`); any other token, the old shared
secret's included, answers 401. `POST /v1/sign-out-everywhere` (intake) ends all of the caller's tokens.

**Roles.** `operator` (the platform operator: organizations), `admin` (everything of one organization),
`coordinator` (the sites named in the token), `leader` (a peer leader: their own matches, sessions, meetings
and the members matched with them), `member` (a person in recovery: only their own record, match, sessions,
registrations and messages; `GET /v1/me/export` downloads what this service holds about them), `service`
(a program of one organization). A route a role may not use answers 403; a record that is not the caller's
to see (another organization's, another site's, another member's) answers 404.
"""


def create_service_app(settings: PlatformSettings, *, title: str, description: str = "",
                       version: str = "1.0.0", configure_logs: bool = True) -> Flask:
    if configure_logs:
        configure_logging(settings.service_name, settings.log_level)
    app = Flask(settings.service_name, static_folder=str(SWAGGER_UI_DIST), static_url_path=DOCS_ASSETS_PATH)
    app.config.update(
        API_TITLE=f"Recovery Network — {title}",
        API_VERSION=version,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL=f"{DOCS_ASSETS_PATH.lstrip('/')}/",
        # no call to the public validator service: the docs work offline and tell no one about the API
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},
        # no /redoc: no pinned package on PyPI carries Redoc without a framework of its own; /docs is enough
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        JSON_SORT_KEYS=False,
        ETAG_DISABLED=False,
    )
    app.config["SETTINGS"] = settings
    if settings.trusted_proxy_hops:
        # Behind a proxy (docker-compose's nginx): the client's address (intake's sign-in limits count it),
        # scheme, host and the path prefix the proxy mounts the service at (url_for includes it).
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops)
    prefix = urlsplit(settings.public_base_url).path.rstrip("/")
    api = ProblemApi(app, spec_kwargs={
        # Mounted under a path (PUBLIC_BASE_URL https://host/intake): "Try it out" calls /intake/v1/...
        **({"servers": [{"url": prefix}]} if prefix else {}),
        "info": {"description": description + SIGN_IN_AND_ROLES},
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "security": [{"bearerAuth": []}],
    })
    app.extensions["smorest"] = api

    client = connect(settings.mongo_uri, settings.mongo_timeout_ms)
    db = client[settings.mongo_database]
    app.extensions["mongo.client"] = client
    app.extensions["mongo.db"] = db

    install_auth(app, KeySet.from_settings(settings.auth_public_keys_file, settings.auth_jwks_url),
                 settings.auth_audience, Revocations(db))
    _install_json_body_check(app)
    _install_request_context(app, settings.service_name)
    _install_operational_routes(app, settings.service_name, db)
    return app


def _install_request_context(app: Flask, service: str) -> None:
    @app.before_request
    def start_request():
        rid = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        g.request_id_token = request_id.set(rid[:64])
        g.trace_token = current_traceparent.set(child_of(request.headers.get("traceparent")))
        g.started = time.perf_counter()

    @app.after_request
    def finish_request(response: Response):
        if rid := request_id.get():
            response.headers["X-Request-Id"] = rid
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        endpoint = request.endpoint or "unmatched"
        HTTP_REQUESTS.labels(service, request.method, str(response.status_code)).inc()
        HTTP_LATENCY.labels(service, request.method).observe(elapsed)
        _secure_headers(response)
        _discard_unread_body()
        if endpoint not in ("healthz", "readyz", "metrics"):
            # The path only, never the body or query string: they may hold identifying data.
            log.info("request", extra={"method": request.method, "endpoint": endpoint,
                                       "status": response.status_code, "ms": round(elapsed * 1000, 1)})
        return response

    @app.teardown_request
    def reset_context(_exc):
        if token := g.pop("request_id_token", None):
            request_id.reset(token)
        if token := g.pop("trace_token", None):
            current_traceparent.reset(token)


def _secure_headers(response: Response) -> None:
    headers = response.headers
    # Answers carry personal data: no cache keeps them, unless the view chose (public feeds, docs assets).
    if "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"


def _discard_unread_body() -> None:
    """Read what is left of a body the view did not read (a 401, 404 or 415 answered before it), so
    the connection stays usable for the next request: gunicorn drains only a little of an unread body
    and otherwise closes the connection after an answer that said keep-alive. A body over
    MAX_BODY_BYTES is not read: its 413 closes the connection, and says so (deploy/gunicorn.conf.py)."""
    length = request.content_length
    if not length or length > MAX_BODY_BYTES:
        return
    try:
        stream = request.stream
        while stream.read(64 * 1024):
            pass
    except Exception:  # noqa: BLE001 - a client gone or a broken body: the server closes the connection
        log.debug("unread body not discarded", exc_info=True)


JSON_MEDIA_TYPE = "application/json"
_BODY_METHODS = {"POST": "Accept-Post", "PUT": None, "PATCH": "Accept-Patch", "DELETE": None}


def takes_json_body(view_func, method: str) -> bool:
    """Whether the view behind a route declares a JSON body (flask-smorest ``@blp.arguments``, whose
    default location is json)."""
    view_class = getattr(view_func, "view_class", None)
    func = getattr(view_class, method.lower(), None) if view_class is not None else view_func
    arguments = (getattr(func, "_apidoc", None) or {}).get("arguments") or {}
    return any(param.get("in") == "json" for param in arguments.get("parameters", ()))


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def _install_json_body_check(app: Flask) -> None:
    """A JSON route refuses a body of another media type (415) before the view runs: webargs reads only
    a JSON body and would take any other for an empty one, so nothing would be validated. A request
    with neither a body nor a Content-Type (an empty body) still reaches the view."""
    cache: dict[tuple[str, str], bool] = {}

    @app.before_request
    def require_json_body():
        if request.endpoint is None or request.method not in _BODY_METHODS:
            return None
        key = (request.endpoint, request.method)
        if key not in cache:
            cache[key] = takes_json_body(app.view_functions.get(request.endpoint), request.method)
        if not cache[key] or request.is_json:
            return None
        if not request.mimetype and not _has_body():
            return None
        accept = _BODY_METHODS[request.method]
        abort(415, message=f"Send the body as {JSON_MEDIA_TYPE} (got {request.mimetype or 'no Content-Type'}).",
              headers={accept: JSON_MEDIA_TYPE} if accept else None)
        return None


def _install_operational_routes(app: Flask, service: str, db) -> None:
    registry = CollectorRegistry()
    registry.register(DatabaseGauges(service, db, outbox_backlog))

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", service=service)

    @app.get("/readyz")
    def readyz():
        try:
            db.command("ping")
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return problem_response(503, "Service Unavailable", f"database not reachable ({type(exc).__name__})",
                                    headers={"Retry-After": "5"})
        # Writes do not need the broker (the outbox holds them), so readiness does not check it.
        return jsonify(status="ready", service=service)

    @app.get("/metrics")
    def metrics():
        body = generate_latest(REGISTRY) + generate_latest(registry)
        # exactly the exposition format's own header: ``mimetype=`` would append a second charset, which
        # Prometheus 3 (Go's mime parser) refuses, failing the scrape
        return Response(body, content_type=CONTENT_TYPE_LATEST)

    document_operational_routes(app.extensions["smorest"], app)
