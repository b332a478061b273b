"""Reports (issue 18, in the console): the outcome report for funders and boards, read from reporting's
GET /v1/reports/outcomes with the signed-in person's token. Admins choose among their organization's sites,
coordinators among theirs (reporting itself answers a coordinator only about their sites); a date range
(default: the last 12 months). The figures in words grouped as the report is, small cells shown as
"fewer than 11", monthly trends as server-drawn SVG charts each with its table, and "Download as CSV",
which passes reporting's own CSV (the same suppression) through the console.
"""
from __future__ import annotations

from datetime import date, datetime, timezone

from flask import Blueprint, Response, render_template, request, stream_with_context
from flask_babel import format_date, format_datetime

from console.i18n import gettext as _
from console.api_client import ApiError
from console.views import api
from console.views.members import staff_only
from console.views.members_words import site_names
from console.views.reports_words import Words, default_range

blp = Blueprint("reports", __name__)

MAX_RANGE_DAYS = 5 * 366  # reporting's own limit


def _choice(sites: dict[str, str]) -> tuple[dict, dict, dict]:
    """(what the form shows, the query for reporting, field errors) from the address's site_id, from, to."""
    first_default, last_default = default_range(datetime.now(timezone.utc).date())
    errors: dict[str, str] = {}
    site_id = (request.args.get("site_id") or "").strip()
    if site_id and site_id not in sites:
        errors["site_id"] = _("Choose one of your sites.")
        site_id = ""

    def day(name: str, default: date) -> date:
        raw = (request.args.get(name) or "").strip()
        if not raw:
            return default
        try:
            return date.fromisoformat(raw)
        except ValueError:
            errors[name] = _("Enter a date as year-month-day, for example 2025-01-31.")
            return default

    first, last = day("from", first_default), day("to", last_default)
    if last < first:
        errors["to"] = _("The last day must not be before the first day.")
        first, last = first_default, last_default
    elif (last - first).days > MAX_RANGE_DAYS:
        errors["to"] = _("Choose a range of at most five years.")
        first, last = first_default, last_default
    query = {"from": first.isoformat(), "to": last.isoformat(), **({"site_id": site_id} if site_id else {})}
    return {"site_id": site_id, "from": first.isoformat(), "to": last.isoformat()}, query, errors


@blp.get("/reports")
def index():
    person, answer = staff_only()
    if answer:
        return answer
    client = api(person)
    sites = site_names(client)
    chosen, query, errors = _choice(sites)
    report, problem = None, None
    try:
        report = client.get("reporting", "/v1/reports/outcomes", params=query)
    except ApiError as error:
        problem = _("The report could not be made: %(detail)s", detail=error.detail or error.title)
    words = Words(report) if report else None
    scope_title = made = None
    if report:
        where = (sites.get(chosen["site_id"]) if chosen["site_id"] else None) or (
            _("All my sites") if person.role == "coordinator" else _("The whole organization"))
        scope_title = _("%(where)s, %(first)s to %(last)s", where=where,
                        first=format_date(date.fromisoformat(report["from"]), "long"),
                        last=format_date(date.fromisoformat(report["to"]), "long"))
        made = format_datetime(datetime.fromisoformat(report["generated_at"]), "medium")
    return render_template("reports/index.html", sites=sites, chosen=chosen, errors=errors, report=report,
                           sections=words.sections() if words else [], problem=problem, csv_query=query,
                           scope_title=scope_title, made=made), (400 if errors else 200)


@blp.get("/reports/outcomes.csv")
def csv():
    person, answer = staff_only()
    if answer:
        return answer
    client = api(person)
    _chosen, query, _errors = _choice(site_names(client))
    upstream = client.download("reporting", "/v1/reports/outcomes.csv", params=query)
    name = f"outcomes-{query['from']}-{query['to']}.csv"

    def body():
        try:
            yield from upstream.stream(16384)
        finally:
            upstream.close()          # a download stopped before its end: its connection closed (read to the end,
            upstream.release_conn()   # it is back in the pool already); and its place in the pool given back

    return Response(stream_with_context(body()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
