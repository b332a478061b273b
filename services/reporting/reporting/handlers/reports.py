"""The outcome report for a caller: the figures of their organization (or sites) over a date range,
suppressed for small numbers, and the audit entry saying who pulled it. Also its CSV form."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

from shared.auth import Principal

from reporting import access, aggregates, model
from reporting.config import Settings
from reporting.repository import Store

DEFINITIONS = {
    "onboarded": "members registered in the range (the time intake registered them)",
    "active_at_end": "members whose status was 'active' at the end of the range (or of the month)",
    "discharged / graduated": "members whose status changed to it in the range",
    "leaders_active_at_end": "peer leaders whose status was 'active' at the end of the range",
    "days_to_first_proposal / days_to_accepted_match": "for members onboarded in the range: days from "
        "registration to the first proposal / the first accepted match (median and 90th percentile, nearest rank)",
    "waiting_at_end": "members on matching's waitlist at the end of the range with no proposal since, and for how many days",
    "sessions_held": "one-on-one sessions that took place (booked and not cancelled by their end) starting in the range",
    "meeting_attendances": "members marked present at a meeting occurrence in the range",
    "engaged": "a member is engaged at day N after onboarding when they attended a meeting or held a one-on-one "
               "session in the 30 days up to day N; retention day_N counts members onboarded in the range whose "
               "day N had come by the end of the range",
    "recovery_capital": "members with 2 or more screenings of an instrument, the latest in the range: latest minus "
                        "first total, signed so that positive is better (BARC-10 higher is better; AUDIT-C, DAST-10 "
                        "and PHQ-2 lower is better)",
    "hours_to_resolve": "from a risk flag being raised until a coordinator resolved it",
    "communication": "messages delivered and failed, and unsubscribes, by channel (counts of messages)",
    "site": "a member counts at the site they belong to now (a transfer moves their figures)",
}


def outcomes(store: Store, settings: Settings, principal: Principal, query: dict, *, fmt: str = "json") -> dict:
    now = datetime.now(timezone.utc)
    first, last = model.report_range(query.get("from_"), query.get("to"), now.date())
    org = principal.organization_id
    sites = access.site_filter(principal)
    period = model.Period.of(first, last)
    monthly, timelines, leaders, names = store.report_inputs(org, sites, query.get("site_id"),
                                                             *aggregates.split_months(period))
    figures = aggregates.figures(monthly, timelines, leaders, names, period, now)
    store.audit(principal, "read", "outcome_report", "outcomes", org, site_id=query.get("site_id"),
                first=first.isoformat(), last=last.isoformat(), format=fmt)
    return {"organization_id": org, "site_id": query.get("site_id"), "sites": sites, "from_": first, "to": last,
            "generated_at": now, "min_cell": settings.min_cell,
            "suppressed": model.SUPPRESSED.format(k=settings.min_cell), "definitions": DEFINITIONS,
            **model.suppress(figures, settings.min_cell)}


def _rows(prefix: list[str], value, out: list) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _rows(prefix + [str(k)], v, out)
    elif isinstance(value, list):
        for item in value:
            label = item.get("month") or item.get("meeting") if isinstance(item, dict) else None
            rest = {k: v for k, v in item.items() if k not in ("month", "meeting")}
            _rows(prefix + [label or ""], rest, out)
    else:
        out.append(prefix + ["" if value is None else value])


def to_csv(report: dict) -> str:
    """One row per figure: section, figure, detail (month, language, series, measure: dot-separated), value."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["section", "figure", "detail", "value"])
    writer.writerow(["report", "scope", f"organization {report['organization_id']}"
                     + (f" site {report['site_id']}" if report["site_id"] else ""),
                     f"{report['from_'].isoformat()} to {report['to'].isoformat()}"])
    for section in ("reach", "access", "engagement", "recovery_capital", "safety", "communication"):
        rows: list = []
        _rows([], report[section], rows)
        for *path, value in rows:
            writer.writerow([section, path[0], ".".join(p for p in path[1:] if p), value])
    return buf.getvalue()
