"""create_app(settings): the notifications service's Flask app (gunicorn: "notifications.app:create_app()")."""
from __future__ import annotations

from flask import Flask
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily

from shared.mongo import utcnow
from shared.web import create_service_app

from notifications import api
from notifications.config import Settings
from notifications.repository import Repository, Store


class DeliveryGauges:
    """Deliveries waiting per status and the lateness of the oldest due one, read at scrape time."""

    def __init__(self):
        self.db = None

    def collect(self):
        if self.db is None:
            return
        waiting = GaugeMetricFamily("recoverynet_notifications_deliveries", "Deliveries by status (not yet delivered)",
                                    labels=["status"])
        late = GaugeMetricFamily("recoverynet_notifications_oldest_due_seconds",
                                 "How long the oldest due delivery has waited to be sent")
        try:
            backlog = Store(self.db).delivery_backlog(utcnow())
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
            return
        for status in ("pending", "held", "digest", "sending", "failed"):
            waiting.add_metric([status], backlog["counts"].get(status, 0))
        late.add_metric([], backlog["oldest_due_seconds"])
        yield waiting
        yield late


_GAUGES = DeliveryGauges()
REGISTRY.register(_GAUGES)  # once per process; the latest app's database is the one read


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = create_service_app(settings.platform, title="Notifications", description=("The right message, on the right channel, at the right time, once. What each role sees here: staff "
                                 "the delivery log, templates and webhooks; a member their own in-app inbox and notification preferences "
                                 "(`/v1/people/{their member id}/...`; another id answers 404) and their record (`GET /v1/me/export`). "
                                 "Sign-in codes are sent at once and never shown in the log."))
    app.extensions["notifications.settings"] = settings
    app.extensions["notifications.repository"] = Repository(app.extensions["mongo.client"], app.extensions["mongo.db"])
    app.extensions["smorest"].register_blueprint(api.blp)
    _GAUGES.db = app.extensions["mongo.db"]
    return app
