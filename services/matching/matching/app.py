"""create_app(settings): the matching service's Flask app (gunicorn: "matching.app:create_app()")."""
from __future__ import annotations

from flask import Flask

from shared.repository import Repository
from shared.web import create_service_app

from matching import api
from matching.config import Settings
from matching.repository import SOURCE, Store


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = create_service_app(settings.platform, title="Matching", description=("Pairs each member with the right peer leader, and explains why. What each role sees here: staff the "
                                 "matches, waitlist and overrides of their sites; a leader their own matches (accept, decline); a member "
                                 "their own proposal or match with its reasons (`GET /v1/me/match`, accept, decline) and their record "
                                 "(`GET /v1/me/export`)."))
    app.extensions["matching.settings"] = settings
    app.extensions["matching.repository"] = Repository(app.extensions["mongo.client"], app.extensions["mongo.db"],
                                                       source=SOURCE, store=Store)
    app.extensions["smorest"].register_blueprint(api.blp)
    return app
