"""create_app(settings): the reporting service's Flask app (gunicorn: "reporting.app:create_app()")."""
from __future__ import annotations

from flask import Flask

from shared.repository import Repository
from shared.web import create_service_app

from reporting import api
from reporting.config import Settings
from reporting.repository import SOURCE, Store


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = create_service_app(settings.platform, title="Reporting",
                             description="Outcome reports for funders and boards, built from the platform's events alone.")
    app.extensions["reporting.settings"] = settings
    app.extensions["reporting.repository"] = Repository(app.extensions["mongo.client"], app.extensions["mongo.db"],
                                                        source=SOURCE, store=Store)
    app.extensions["smorest"].register_blueprint(api.blp)
    return app
