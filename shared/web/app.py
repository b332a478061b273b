"""The Flask app factory every service builds on: flask-smorest (OpenAPI at /openapi.json, docs at
/docs), problem+json errors, bearer auth, request ids and JSON logs, /healthz, /readyz, /metrics.

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

from flask import Flask, Response, g, jsonify, request
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from shared.config import PlatformSettings
from shared.logging import configure_logging, request_id
from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS, DatabaseGauges
from shared.mongo import connect
from shared.tracing import current_traceparent, child_of
from shared.web.auth import install_auth
from shared.web.errors import ProblemApi, problem_response

log = logging.getLogger("recoverynet.http")

MAX_BODY_BYTES = 2 * 1024 * 1024  # a CSV import of a few thousand rows fits; larger answers 413


def create_service_app(settings: PlatformSettings, *, title: str, description: str = "",
                       version: str = "1.0.0", configure_logs: bool = True) -> Flask:
    if configure_logs:
        configure_logging(settings.service_name, settings.log_level)
    app = Flask(settings.service_name)
    app.config.update(
        API_TITLE=f"Recovery Network — {title}",
        API_VERSION=version,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        OPENAPI_REDOC_PATH="/redoc",
        OPENAPI_REDOC_URL="https://cdn.jsdelivr.net/npm/redoc@next/bundles/redoc.standalone.js",
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        JSON_SORT_KEYS=False,
        ETAG_DISABLED=False,
    )
    app.config["SETTINGS"] = settings
    api = ProblemApi(app, spec_kwargs={
        "info": {"description": description},
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "security": [{"bearerAuth": []}],
    })
    app.extensions["smorest"] = api

    client = connect(settings.mongo_uri, settings.mongo_timeout_ms)
    db = client[settings.mongo_database]
    app.extensions["mongo.client"] = client
    app.extensions["mongo.db"] = db

    install_auth(app, settings.auth_secret, settings.auth_audience)
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


def _install_operational_routes(app: Flask, service: str, db) -> None:
    registry = CollectorRegistry()
    registry.register(DatabaseGauges(service, db))

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
        return Response(body, mimetype=CONTENT_TYPE_LATEST)
