"""HTTP edge of intake's tokens: the public keys every service verifies tokens with (JWKS), and
sign-out-everywhere. Sign-in, which issues the tokens, is elsewhere."""
from __future__ import annotations

from flask import current_app, jsonify
from flask.views import MethodView

from shared.web import Blueprint, current_principal, public

from intake import schemas
from intake.handlers import tokens

blp = Blueprint("tokens", __name__, description="Token keys (JWKS) and sign-out-everywhere.")


def _repo():
    return current_app.extensions["intake.repository"]


@blp.route("/.well-known/jwks.json")
@public
class Jwks(MethodView):
    @blp.response(200, schemas.JwksOut)
    def get(self):
        """The public keys tokens are signed with (JWKS, RFC 7517/8037), chosen by a token's ``kid``:
        the current key and any rotated-out keys still published. Public; cached for five minutes."""
        response = jsonify(current_app.extensions["intake.token_keys"].jwks)
        response.headers["Cache-Control"] = "public, max-age=300"
        return response


@blp.route("/v1/sign-out-everywhere")
class SignOutEverywhere(MethodView):
    @blp.response(200, schemas.SignedOutOut)
    def post(self):
        """Sign the caller out everywhere (any role): every token issued to them until now, this one
        included, is refused by every service within a minute. A token issued afterwards works."""
        principal = current_principal()
        result = _repo().transaction(lambda uow: tokens.sign_out_everywhere(uow, principal))
        current_app.extensions["auth.revocations"].forget(principal.subject)
        return result


def install(app) -> None:
    """Load the signing key (AUTH_SIGNING_KEY_FILE) and the published keys; register the routes."""
    app.extensions["intake.token_keys"] = tokens.TokenKeys.load(app.extensions["intake.settings"].platform)
    app.extensions["smorest"].register_blueprint(blp)
