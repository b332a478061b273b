"""What the OpenAPI document says beyond flask-smorest's defaults, so that it describes the answers as
they are sent (schemathesis checks every answer against it: tests/security/test_security_fuzz.py):

- every 4xx/5xx is ``application/problem+json`` with ``ProblemSchema`` (``ProblemApi._register_responses``
  in shared/web/errors.py registers flask-smorest's per-status and default error responses that way);
- public routes say ``security: []``, decided by ``shared.web.auth.is_public_endpoint``, the very function
  the authentication hook asks, so the document and the code cannot disagree;
- /healthz, /readyz and /metrics are documented too (public, with their media types);
- a nullable nested object is ``anyOf: [{$ref}, {nullable: true, enum: [null]}]`` (``nullable_nested``):
  apispec writes the second branch as ``{type: object, nullable: true}``, which lets any object through in
  the document while the schema refuses its unknown keys;
- a schema may add JSON Schema keywords that marshmallow cannot say (``minProperties``) in
  ``Meta.openapi`` (``SchemaExtrasPlugin``).
"""
from __future__ import annotations

import marshmallow as ma
from apispec import BasePlugin
from flask import Flask

from shared.web.auth import is_public_endpoint


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem details body, as ``problem_response`` writes it (extension members allowed)."""

    class Meta:
        unknown = ma.INCLUDE  # RFC 9457 lets a problem carry extension members ("existing", "retry_after")

    type = ma.fields.String(required=True, metadata={"description": "A URI naming the problem type (about:blank)."})
    title = ma.fields.String(required=True, metadata={"description": "The HTTP status phrase."})
    status = ma.fields.Integer(required=True, metadata={"description": "The HTTP status code."})
    detail = ma.fields.String(metadata={"description": "What went wrong, for a person to read."})
    instance = ma.fields.String(metadata={"description": "The request path."})
    request_id = ma.fields.String(metadata={"description": "The request id (X-Request-Id), for support."})
    errors = ma.fields.Dict(keys=ma.fields.String(), metadata={"description": "Field name -> messages."})


class PublicRoutesPlugin(BasePlugin):
    """Marks every operation of a public route ``security: []`` (the global requirement is bearerAuth)."""

    def __init__(self, api):
        self.api = api

    def operation_helper(self, path=None, operations=None, **kwargs):
        rule = kwargs.get("rule")
        if rule is None or not operations or not is_public_endpoint(self.api._app, rule.endpoint):
            return
        for operation in operations.values():
            operation["security"] = []


class SchemaExtrasPlugin(BasePlugin):
    """Adds a marshmallow schema's ``Meta.openapi`` keywords (e.g. ``{"minProperties": 1}``) to its component."""

    def schema_helper(self, name, definition, **kwargs):
        schema = kwargs.get("schema")
        schema = schema if isinstance(schema, type) or schema is None else type(schema)
        extras = getattr(getattr(schema, "Meta", None), "openapi", None)
        return dict(extras) if extras else None


_ANY_OBJECT_OR_NULL = {"type": "object", "nullable": True}


def nullable_nested(self, field, ret, **kwargs) -> dict:
    """An apispec attribute function (OpenAPI 3.0): a nullable Nested field is its schema or null, not any object."""
    branches = ret.get("anyOf")
    if isinstance(field, ma.fields.Nested) and isinstance(branches, list) and _ANY_OBJECT_OR_NULL in branches:
        return {"anyOf": [{"nullable": True, "enum": [None]} if b == _ANY_OBJECT_OR_NULL else b for b in branches]}
    return {}


def _status_schema(*values: str) -> dict:
    return {"type": "object", "required": ["status", "service"], "additionalProperties": False,
            "properties": {"status": {"type": "string", "enum": list(values)}, "service": {"type": "string"}}}


def document_operational_routes(api, app: Flask) -> None:
    """/healthz, /readyz, /metrics in the OpenAPI (public: PublicRoutesPlugin marks them from their endpoints)."""
    components = api.spec.components
    default = {"default": components.get_ref("response", api.DEFAULT_ERROR_RESPONSE_NAME)}
    operations = {
        "healthz": {"summary": "Liveness: the process answers.",
                    "responses": {"200": {"description": "Alive.",
                                          "content": {"application/json": {"schema": _status_schema("ok")}}}}},
        "readyz": {"summary": "Readiness: the database answers (the broker is not needed to take writes).",
                   "responses": {"200": {"description": "Ready.",
                                         "content": {"application/json": {"schema": _status_schema("ready")}}},
                                 "503": components.get_ref("response", "SERVICE_UNAVAILABLE")}},
        "metrics": {"summary": "Prometheus metrics (text exposition format).",
                    "responses": {"200": {"description": "The metrics.",
                                          "content": {"text/plain": {"schema": {"type": "string"}}}}}},
    }
    for endpoint, operation in operations.items():
        rule = next(app.url_map.iter_rules(endpoint))
        operation["responses"].update(default)
        api.spec.path(rule=rule, operations={"get": {**operation, "tags": ["operations"]}}, parameters=[])
    api.spec.tag({"name": "operations", "description": "Health, readiness and metrics (public)."})
