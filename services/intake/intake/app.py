"""create_app(settings): the intake service's Flask app (gunicorn: "intake.app:create_app()")."""
from __future__ import annotations

from flask import Flask

from shared.repository import Repository
from shared.web import create_service_app

from intake import api, api_me
from intake import api_tokens
from intake.config import Settings
from intake.repository import SOURCE, Store


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = create_service_app(settings.platform, title="Intake", description="Organizations, sites, members, peer leaders, consents, screenings and plans.")
    app.extensions["intake.settings"] = settings
    # retry_duplicates: two requests claiming the same email at once; the loser runs again and answers 409.
    app.extensions["intake.repository"] = Repository(app.extensions["mongo.client"], app.extensions["mongo.db"],
                                                     source=SOURCE, store=Store, retry_duplicates=True)
    app.extensions["smorest"].register_blueprint(api.blp)
    app.extensions["smorest"].register_blueprint(api_me.blp)  # self-service: /v1/me
    api_tokens.install(app)  # the signing key, /.well-known/jwks.json, /v1/sign-out-everywhere
    return app
