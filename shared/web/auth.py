"""Every request is authenticated, except the few routes marked public (health, metrics, docs,
and public feeds). ``current_principal()`` gives the caller; views scope every query by it."""
from __future__ import annotations

from typing import Callable

from flask import Flask, current_app, g, request
from flask_smorest import abort

from shared.auth import InvalidToken, KeySet, Principal, VerifiedTokens
from shared.revocations import Revocations

ALWAYS_PUBLIC = {"healthz", "readyz", "metrics", "api-docs.openapi_json", "api-docs.openapi_swagger_ui",
                 "api-docs.openapi_redoc", "static"}


def public(view):
    """Mark a view function or MethodView class as needing no token (for example a public feed)."""
    view.public = True
    return view


def is_public_endpoint(app: Flask, endpoint: str | None) -> bool:
    """Whether ``endpoint`` needs no token: the one answer for the authentication hook below and for
    the OpenAPI document (``security: []`` on the operation, shared.web.openapi.PublicRoutesPlugin)."""
    if endpoint is None or endpoint in ALWAYS_PUBLIC or endpoint.startswith("api-docs."):
        return True
    view = app.view_functions.get(endpoint)
    return bool(getattr(view, "public", False) or getattr(getattr(view, "view_class", None), "public", False))


def _is_public(endpoint: str | None) -> bool:
    return is_public_endpoint(current_app, endpoint)


def install_auth(app: Flask, keyset: KeySet, audience: str, revocations: Revocations) -> None:
    """Every non-public request needs a bearer token signed by intake's key (by kid, ``keyset``) whose
    version its subject has not revoked (sign-out-everywhere, ``revocations``)."""
    app.extensions["auth.tokens"] = VerifiedTokens(keyset, audience)
    app.extensions["auth.revocations"] = revocations

    @app.before_request
    def authenticate():
        if request.endpoint is None:  # 404/405: let routing answer
            return None
        if _is_public(request.endpoint):
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            abort(401, message="A bearer token is required.", headers={"WWW-Authenticate": 'Bearer realm="recoverynet"'})
        g.principal = verify_bearer(token.strip())
        return None


def verify_bearer(token: str) -> Principal:
    """The caller a bearer token names (the signature, the claims, then revocation), or 401."""
    app = current_app
    try:
        principal = app.extensions["auth.tokens"].verify(token)
        if app.extensions["auth.revocations"].is_revoked(principal.subject, principal.version):
            raise InvalidToken("the token was revoked (signed out everywhere)")
    except InvalidToken as exc:
        abort(401, message=str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return principal


def current_principal() -> Principal:
    return g.principal


def require_role(*roles: str) -> Principal:
    """The caller, if their role is one of ``roles``; otherwise 403."""
    principal = current_principal()
    if principal.role not in roles:
        abort(403, message=f"This needs one of the roles: {', '.join(roles)}.")
    return principal


def require_organization() -> str:
    """The caller's organization id (operators have none and are refused here)."""
    principal = current_principal()
    if not principal.organization_id:
        abort(403, message="This needs a token bound to an organization.")
    return principal.organization_id


RoleCheck = Callable[[Principal], bool]
