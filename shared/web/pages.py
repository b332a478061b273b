"""Lists and updates, one way for every service: offset pagination and ETag / If-Match.

    @blp.arguments(MemberQuery, location="query")      # MemberQuery(PageQuery) adds its filters
    @blp.response(200, page_schema(MemberOut))
    def get(self, query):
        items, total = repo.list_members(..., skip=query["offset"], limit=query["limit"])
        return page(items, total, query)

    etag = etag_of(doc)                                  # a stable hash of the stored version
    require_if_match(etag)                               # 428 without If-Match, 412 when stale
"""
from __future__ import annotations

import functools
import hashlib
import json

from flask import Response, jsonify, request
from flask_smorest import abort
from marshmallow import Schema, fields, validate

# Ours, not flask-smorest's paginate (page/page_size, a bare list, X-Pagination): limit/offset and total are the contract.
MAX_PAGE = 200


class PageQuery(Schema):
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=MAX_PAGE),
                       metadata={"description": f"Items per page (1-{MAX_PAGE})"})
    offset = fields.Int(load_default=0, validate=validate.Range(min=0, max=1_000_000),
                        metadata={"description": "Items to skip"})


@functools.cache
def page_schema(item_schema: type[Schema]) -> Schema:
    """The envelope of a page of ``item_schema`` items (one schema class per item type: asked again, the same)."""
    return _page_envelope(f"{item_schema.__name__.removesuffix('Schema')}Page", item_schema)


def _page_envelope(name: str, items) -> Schema:
    """A page's schema: ``items`` (a schema class or instance) and the total, limit and offset."""
    return type(name, (Schema,), {
        "items": fields.List(fields.Nested(items), required=True),
        "total": fields.Int(required=True),
        "limit": fields.Int(required=True),
        "offset": fields.Int(required=True),
    })()


def page(items: list, total: int, query: dict) -> dict:
    return {"items": items, "total": total, "limit": query["limit"], "offset": query["offset"]}


def page_of_fields(item_schema: type[Schema], items: list, total: int, query: dict, only: list[str]) -> Response:
    """A page whose items carry only the fields named (``?fields=``), dumped by a schema of those fields alone:
    the view's declared page schema stays its documentation, but it would walk every field it declares for
    every item, present or not (most of a cut-down list's serialising)."""
    return jsonify(_page_schema_of_fields(item_schema, frozenset(only)).dump(page(items, total, query)))


@functools.cache
def _page_schema_of_fields(item_schema: type[Schema], only: frozenset[str]) -> Schema:
    return _page_envelope(f"{item_schema.__name__}FieldsPage", item_schema(only=sorted(only)))


# Ours, not flask-smorest's etag: it answers 428 before our 401/403/404 and hashes the body, not the stored version.
def etag_of(doc: dict) -> str:
    """A strong ETag for a stored document: its ``version`` field when it has one, else its content."""
    basis = doc.get("version")
    if basis is None:
        basis = json.dumps(doc, sort_keys=True, default=str)
    return hashlib.sha256(f"{doc.get('_id')}:{basis}".encode()).hexdigest()[:32]


def etag_header(doc: dict) -> dict[str, str]:
    """The ETag response header of a stored document, quoted as HTTP writes it."""
    return {"ETag": f'"{etag_of(doc)}"'}


def require_if_match(current_etag: str) -> None:
    """Optimistic concurrency for updates: the caller must send the ETag it read."""
    sent = request.headers.get("If-Match")
    if not sent:
        abort(428, message="Send the resource's ETag in If-Match to update it (read it first).")
    candidates = {tag.strip().removeprefix("W/").strip('"') for tag in sent.split(",")}
    if "*" not in candidates and current_etag not in candidates:
        abort(412, message="The resource changed since you read it; read it again and retry.")


IF_MATCH_HEADER = {"in": "header", "name": "If-Match", "required": True, "schema": {"type": "string", "minLength": 1},
                   "description": "The ETag you read (or *): 428 without it, 412 when the resource changed since."}


def documents_if_match(blp):
    """Documents what ``require_if_match`` enforces on an operation: the required If-Match header, and the
    412 and 428 answers (flask-smorest's per-status responses, problem+json like every error)."""
    def decorator(func):
        func = blp.alt_response(412, "PRECONDITION_FAILED")(func)
        func = blp.alt_response(428, "PRECONDITION_REQUIRED")(func)
        return blp.doc(parameters=[IF_MATCH_HEADER])(func)
    return decorator
