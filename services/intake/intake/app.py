"""create_app(settings): the intake service's Flask app (gunicorn: "intake.app:create_app()")."""
from __future__ import annotations

from flask import Flask

from shared.repository import Repository
from shared.web import create_service_app

from intake import api, api_me
from intake import api_tokens
from intake.config import Settings
from intake.repository import SOURCE, Store


DESCRIPTION = ("Organizations, sites, members, peer leaders, consents, screenings and plans; signing in (the public "
               "`POST /v1/sign-in` and `POST /v1/sign-in/token`), staff invitations and deactivation, the token keys "
               "(`/.well-known/jwks.json`) and self-service (`/v1/me...`). What each role sees here: an admin the whole "
               "organization; a coordinator the members and leaders of their sites; a leader their own profile and, "
               "while a match lasts, the minimum necessary of the members matched with them (`GET /v1/me/members`: "
               "preferred name, languages, availability, the goal they shared, contact details only under the "
               "member's `share:leader` consent); a member their own profile, consents (give, revoke), plan and "
               "screening results as the organization shares them, their peer leader (`GET /v1/me/leader`) and their "
               "whole record (`GET /v1/me/export`).")


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = create_service_app(settings.platform, title="Intake", description=DESCRIPTION)
    app.extensions["intake.settings"] = settings
    # retry_duplicates: two requests claiming the same email at once; the loser runs again and answers 409.
    app.extensions["intake.repository"] = Repository(app.extensions["mongo.client"], app.extensions["mongo.db"],
                                                     source=SOURCE, store=Store, retry_duplicates=True)
    app.extensions["smorest"].register_blueprint(api.blp)
    app.extensions["smorest"].register_blueprint(api_me.blp)  # self-service: /v1/me
    api_tokens.install(app)  # the signing key, /.well-known/jwks.json, /v1/sign-out-everywhere
    return app
