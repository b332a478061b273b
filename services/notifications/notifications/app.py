"""create_app(settings): the notifications service's Flask app (gunicorn: "notifications.app:create_app()")."""
from __future__ import annotations

from flask import Flask

from shared.web import create_service_app

from notifications import api
from notifications.config import Settings
from notifications.repository import Repository


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = create_service_app(settings.platform, title="Notifications", description="The right message, on the right channel, at the right time, once.")
    app.extensions["notifications.settings"] = settings
    app.extensions["notifications.repository"] = Repository(app.extensions["mongo.client"], app.extensions["mongo.db"])
    app.extensions["smorest"].register_blueprint(api.blp)
    return app
