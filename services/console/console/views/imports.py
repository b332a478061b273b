"""CSV import of members (issue 16): upload a CSV for one site to intake's import route, then the
per-row report (created, updated, unchanged, rejected and why), downloadable as CSV. Intake imports the
whole upload before it answers, so the report is complete when the page opens: the page says so and its
progress bar stands full; nothing needs to refresh.
"""
from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from console.i18n import gettext as _
from console.api_client import ApiError
from console.views import api
from console.views import members_words as words
from console.views.members import staff_only

blp = Blueprint("imports", __name__)

OUTCOMES = ("created", "updated", "unchanged", "rejected")


def outcome_words(outcome: str) -> str:
    return {"created": _("created"), "updated": _("updated"), "unchanged": _("unchanged"),
            "rejected": _("rejected")}.get(outcome, outcome)


def reasons(row: dict) -> list[str]:
    """A rejected row's problems as "field: message" lines (the whole row's without a field name)."""
    out = []
    for name, messages in (row.get("errors") or {}).items():
        for message in messages if isinstance(messages, list) else [messages]:
            out.append(str(message) if name in ("_row", "_schema") else f"{name}: {message}")
    if row.get("existing") and not out:
        out.append(_("Already a member"))
    return out


@blp.route("/members/import", methods=["GET", "POST"])
def upload():
    person, answer = staff_only()
    if answer:
        return answer
    client = api(person)
    sites = words.site_names(client)
    errors: dict[str, list[str]] = {}
    chosen = request.form.get("site_id", "") if request.method == "POST" else request.args.get("site_id", "")
    if request.method == "POST":
        file = request.files.get("file")
        if chosen not in sites:
            errors["site_id"] = [_("Choose the site the members belong to.")]
        if file is None or not file.filename:
            errors["file"] = [_("Choose a CSV file to upload.")]
        if not errors:
            try:
                report = client.request("POST", "intake", f"/v1/sites/{chosen}/imports",
                                        files={"file": (file.filename, file.read(), "text/csv")})
            except ApiError as error:
                errors, general = words.form_errors(error, ("file", "site_id"))
                errors.setdefault("file", []).extend(general)
            else:
                flash(_("The file was imported."))
                return redirect(url_for("imports.report", import_id=report["id"]))
    return render_template("members/import.html", sites=sites, chosen=chosen, errors=errors)


def _report_or_404(person, import_id: str) -> dict:
    try:
        return api(person).get("intake", f"/v1/imports/{import_id}")
    except ApiError as error:
        if error.status in (403, 404, 422):
            abort(404)
        raise


@blp.get("/members/imports/<import_id>")
def report(import_id: str):
    person, answer = staff_only()
    if answer:
        return answer
    found = _report_or_404(person, import_id)
    rows = sorted(found.get("rows") or [], key=lambda r: r.get("row", 0))
    counts = {outcome: (found.get("counts") or {}).get(outcome, 0) for outcome in OUTCOMES}
    sites = words.site_names(api(person))
    return render_template("members/import_report.html", report=found, rows=rows, counts=counts,
                           total=len(rows), site=sites.get(found.get("site_id"), ""),
                           outcome_words=outcome_words, reasons=reasons)


@blp.get("/members/imports/<import_id>.csv")
def report_csv(import_id: str):
    person, answer = staff_only()
    if answer:
        return answer
    found = _report_or_404(person, import_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "external_id", "outcome", "member_id", "reasons"])
    for row in sorted(found.get("rows") or [], key=lambda r: r.get("row", 0)):
        writer.writerow([_cell(row.get("row")), _cell(row.get("external_id")), _cell(row.get("outcome")),
                         _cell(row.get("member_id")), _cell("; ".join(reasons(row)))])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="import-{import_id}.csv"'})


def _cell(value) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula (=, +, -, @ at the start)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
