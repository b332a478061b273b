"""create_app(settings): the scheduling service's Flask app (gunicorn: "scheduling.app:create_app()")."""
from __future__ import annotations

from flask import Flask

from shared.web import create_service_app

from scheduling import api
from scheduling.config import Settings
from scheduling.repository import repository


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = create_service_app(settings.platform, title="Scheduling", description=("Peer-led group meetings, one-on-one sessions, reminders and feeds. What each role sees here: staff the "
                                 "meetings and sessions of their sites; a leader their own sessions and meetings; a member the times "
                                 "suggested with their leader (`GET /v1/me/suggestions`), their own sessions (book, reschedule, cancel), "
                                 "public meetings at their site (register themself, `GET /v1/me/registrations`), their calendar link "
                                 "and their record (`GET /v1/me/export`)."))
    app.extensions["scheduling.settings"] = settings
    app.extensions["scheduling.repository"] = repository(app.extensions["mongo.client"], app.extensions["mongo.db"])
    app.extensions["smorest"].register_blueprint(api.blp)
    return app
