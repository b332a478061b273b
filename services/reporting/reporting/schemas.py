"""Marshmallow schemas of reporting's HTTP queries and answers (not of events)."""
from __future__ import annotations

from datetime import datetime, timezone

from marshmallow import Schema, ValidationError, fields, validates_schema

from reporting.model import MAX_RANGE_DAYS, report_range

FIGURE = ("a count, or the text 'fewer than N' where fewer than N people are behind it (N is the "
          "suppression threshold, at least 11), including figures hidden so another cannot be recovered")


class OutcomesQuery(Schema):
    site_id = fields.Str(load_default=None, metadata={"description": "one site (default: every site the caller holds)"})
    from_ = fields.Date(data_key="from", load_default=None,
                        metadata={"description": "first day, inclusive (default: the first of the month 11 months before 'to'); "
                                                    "at most 1830 days before 'to'"})
    to = fields.Date(load_default=None, metadata={"description": "last day, inclusive (default: today, UTC)"})

    @validates_schema
    def _range(self, data, **kwargs):
        # checked on the range the report will cover: a 'from' alone runs to today, a 'to' alone starts 11 months
        # before it; the field named is the one the caller sent
        named = "to" if data.get("to") else "from"
        first, last = report_range(data.get("from_"), data.get("to"), datetime.now(timezone.utc).date())
        if last < first:
            raise ValidationError("must not be before 'from'" if named == "to" else "must not be after 'to' (today by default)", named)
        if (last - first).days > MAX_RANGE_DAYS:
            raise ValidationError(f"a range of at most {MAX_RANGE_DAYS} days", named)


class OutcomesOut(Schema):
    organization_id = fields.Str(required=True)
    site_id = fields.Str(allow_none=True, metadata={"description": "the site asked for; null: every site the caller holds"})
    sites = fields.List(fields.Str(), allow_none=True, metadata={"description": "the caller's sites; null: all"})
    from_ = fields.Date(data_key="from", required=True)
    to = fields.Date(required=True)
    generated_at = fields.DateTime(required=True)
    min_cell = fields.Int(required=True, metadata={"description": "the suppression threshold (at least 11)"})
    suppressed = fields.Str(required=True, metadata={"description": "the text shown in place of a hidden figure"})
    definitions = fields.Dict(keys=fields.Str(), values=fields.Str(), metadata={"description": "what each figure means"})
    reach = fields.Dict(metadata={"description": "onboarded, active_at_end, discharged, graduated, leaders_active_at_end, "
                                                 "by_language, by_pathway, monthly[]; each figure is " + FIGURE})
    access = fields.Dict(metadata={"description": "days_to_first_proposal and days_to_accepted_match {n, median, p90}, "
                                                  "waiting_at_end {members, median, p90}, declined, declined_by_reason"})
    engagement = fields.Dict(metadata={"description": "sessions_held, members_with_sessions, sessions_per_member, "
                                                      "meeting_attendances, members_attending, attendance_by_series[], "
                                                      "retention {day_30, day_90, day_180: cohort, engaged, not_engaged, share}, monthly[]"})
    recovery_capital = fields.Dict(metadata={"description": "per instrument (BARC-10, AUDIT-C, DAST-10, PHQ-2): members "
                                                            "with 2+ screenings, mean_change (positive = better), improved, unchanged, worse"})
    safety = fields.Dict(metadata={"description": "flags_raised, members_flagged, resolved, hours_to_resolve {n, median, "
                                                  "p90}, members_open_at_end, monthly[]"})
    communication = fields.Dict(metadata={"description": "delivered, failed, unsubscribed, by_channel, monthly[] (messages)"})
