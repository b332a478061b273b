"""RFC 9457 problem details for every 4xx and 5xx: field errors included, never a stack trace.

Use cases raise the domain errors of ``shared/errors.py`` (they import no Flask); the Api below answers
each with its status and fields. Views may still ``abort(status, message=..., errors={...})``.
"""
from __future__ import annotations

import http
import logging

from flask import Response, json, request
from flask_smorest import Api, Blueprint
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException, InternalServerError

from shared.logging import request_id
from shared.mongo import is_unavailable
from shared.web.openapi import ProblemSchema, PublicRoutesPlugin, SchemaExtrasPlugin, nullable_nested
from shared.errors import DomainError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 5


def problem_response(status: int, title: str, detail: str | None = None, *, errors: dict | None = None,
                     headers: dict | None = None, type_: str = "about:blank", **extra) -> Response:
    body = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    body["instance"] = request.path
    if rid := request_id.get():
        body["request_id"] = rid
    body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten_webargs(messages: dict) -> dict:
    """webargs nests errors by location ({"json": {"email": [...]}}); callers want field -> messages."""
    flat: dict = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            for name, msgs in fields.items():
                flat[name] = msgs
        else:
            flat[location] = fields
    return flat


class ProblemApi(Api):
    """flask-smorest's Api answering errors as problem+json, and documenting them as sent."""

    ERROR_SCHEMA = ProblemSchema

    def __init__(self, app=None, *, spec_kwargs=None, **kwargs):
        # A query parameter the operation does not declare is refused (422, the schema's own RAISE) as the
        # document says, not ignored: a misspelt filter (?sit_id=) would answer the whole unfiltered list.
        Blueprint.ARGUMENTS_PARSER.DEFAULT_UNKNOWN_BY_LOCATION = {
            **Blueprint.ARGUMENTS_PARSER.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None}
        spec_kwargs = dict(spec_kwargs or {})
        spec_kwargs["extra_plugins"] = [*spec_kwargs.get("extra_plugins", ()), PublicRoutesPlugin(self),
                                        SchemaExtrasPlugin()]
        super().__init__(app, spec_kwargs=spec_kwargs, **kwargs)
        self.ma_plugin.converter.add_attribute_function(nullable_nested)

    def _register_responses(self):
        """flask-smorest's lazily registered responses (one per status, and DEFAULT_ERROR), with every
        4xx/5xx in ``application/problem+json``: the content type ``problem_response`` sends."""
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON if status >= 400 else self.DEFAULT_RESPONSE_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)

    def _register_error_handlers(self):
        self._app.register_error_handler(HTTPException, self.handle_http_exception)
        self._app.register_error_handler(DomainError, self.handle_domain_error)
        self._app.register_error_handler(Exception, self.handle_unexpected)

    def handle_http_exception(self, error: HTTPException):
        data = getattr(error, "data", None) or {}
        errors = data.get("errors")
        if errors is None and "messages" in data:
            errors = _flatten_webargs(data["messages"])
        detail = data.get("message") or error.description
        if error.code == 422 and errors:
            detail = "Some fields are invalid: " + ", ".join(sorted(map(str, errors)))
        headers = dict(data.get("headers") or {})
        if isinstance(error, InternalServerError) and error.original_exception is not None:
            return self.handle_unexpected(error.original_exception)
        return problem_response(error.code or 500, error.name, detail, errors=errors, headers=headers,
                                **{k: v for k, v in data.items() if k in ("existing",)})

    @staticmethod
    def handle_domain_error(exc: DomainError):
        """The one answer to every rule a use case enforces (shared/errors.py): its status, title, type,
        field errors, headers and extra members (``existing``, ``retry_after`` ...)."""
        return problem_response(exc.status, exc.title, exc.message, errors=exc.errors, headers=exc.headers,
                                type_=exc.type, **exc.extra)

    def handle_unexpected(self, exc: Exception):
        if isinstance(exc, HTTPException):
            return self.handle_http_exception(exc)
        if isinstance(exc, RecursionError) and "JSON" in str(exc):
            # json.loads gives up on a body nested thousands of levels deep: the client's fault, not ours
            return problem_response(400, "Bad Request", "The JSON body is nested too deeply.",
                                    errors={"json": ["Nested too deeply."]})
        if is_unavailable(exc):
            log.warning("database unavailable", extra={"error": type(exc).__name__})
            if getattr(exc, "has_error_label", lambda _label: False)("UnknownTransactionCommitResult"):
                # The commit was sent but its answer did not come back in time: it may have happened.
                detail = "The database did not confirm the change in time; it may have been stored. Check before trying again."
            else:
                detail = "The database is not reachable right now; nothing was changed. Try again shortly."
            return problem_response(503, "Service Unavailable", detail,
                                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        log.exception("unhandled error")
        return problem_response(500, "Internal Server Error", "An unexpected error occurred; it has been logged.")
