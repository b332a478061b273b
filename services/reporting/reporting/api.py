"""HTTP edge of the reporting service: Blueprint + MethodView; validates, reads through the repository,
answers JSON or CSV. Reports are aggregates only: no name or id of a person ever appears in one.

  /v1/reports/outcomes       GET   admin, coordinator   the outcome report (JSON; CSV with Accept: text/csv)
  /v1/reports/outcomes.csv   GET   admin, coordinator   the same as CSV
"""
from __future__ import annotations

from flask import Response, current_app, request
from flask.views import MethodView

from shared.repository import Repository
from shared.web import Blueprint, require_organization, require_role

from reporting import schemas
from reporting.access import READERS
from reporting.handlers import reports

blp = Blueprint("reporting", __name__, url_prefix="/v1",
                description="Outcome reports for funders and boards, built from the platform's events; small numbers suppressed.")


def repo() -> Repository:
    return current_app.extensions["reporting.repository"]


def _csv(report: dict) -> Response:
    name = f"outcomes-{report['from_'].isoformat()}-{report['to'].isoformat()}.csv"
    return Response(reports.to_csv(report), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _wants_csv() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/csv"])
    return best == "text/csv" and request.accept_mimetypes["text/csv"] > request.accept_mimetypes["application/json"]


@blp.route("/reports/outcomes")
class Outcomes(MethodView):
    @blp.arguments(schemas.OutcomesQuery, location="query")
    @blp.response(200, schemas.OutcomesOut)
    def get(self, query):
        """The outcome report: reach, access, engagement, recovery capital, safety, communication.

        Per organization (admins), per site (``site_id``; coordinators only their own sites), over a date
        range with monthly series. Any figure counting fewer than 11 people (the threshold is a setting, 11 at
        least) reads "fewer than 11", and figures that would let it be recovered by subtraction are hidden
        too. Send ``Accept: text/csv`` (or use ``/v1/reports/outcomes.csv``) for CSV. Every pull is audited."""
        principal = require_role(*READERS)
        require_organization()
        settings = current_app.extensions["reporting.settings"]
        csv_wanted = _wants_csv()
        report = reports.outcomes(repo().reader(), settings, principal, query, fmt="csv" if csv_wanted else "json")
        return _csv(report) if csv_wanted else report


@blp.route("/reports/outcomes.csv")
class OutcomesCsv(MethodView):
    @blp.arguments(schemas.OutcomesQuery, location="query")
    @blp.response(200, content_type="text/csv",
                  description="section, figure, detail, value: one row per figure (hidden figures read 'fewer than 11')")
    def get(self, query):
        """The outcome report as CSV (the same figures and suppression as the JSON)."""
        principal = require_role(*READERS)
        require_organization()
        settings = current_app.extensions["reporting.settings"]
        return _csv(reports.outcomes(repo().reader(), settings, principal, query, fmt="csv"))
