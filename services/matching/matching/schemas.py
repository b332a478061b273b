"""Marshmallow schemas of matching's HTTP bodies and queries (not of events)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.web.documents import StoredDocument
from shared.web.pages import PageQuery

from matching import model

HAND_END_REASONS = ("member_choice", "leader_choice", "coordinator")
Reason = lambda **kw: fields.Str(validate=validate.Length(min=1, max=1000), **kw)  # noqa: E731
# A reference to another object (site, member, leader): a string of the ids' shape, nothing else (no
# operators, paths or control characters reach a query). Whether it exists is the handler's question (404).
ID_SHAPE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}\Z",
                           error="Not an id: letters, digits, '-' and '_' (starting with a letter or digit), at most 100.")
Ref = lambda **kw: fields.Str(validate=ID_SHAPE, **kw)  # noqa: E731


class ScorePartOut(Schema):
    part = fields.Str()
    points = fields.Float()
    max_points = fields.Float()
    explanation = fields.Str()


class HistoryOut(Schema):
    at = fields.DateTime()
    status = fields.Str()
    by = fields.Str()
    role = fields.Str()
    note = fields.Str(allow_none=True)


class MatchOut(Schema):
    id = fields.Str(required=True)
    member_id = fields.Str()
    leader_id = fields.Str()
    site_id = fields.Str()
    status = fields.Str(metadata={"description": "proposed, active, declined, expired or ended"})
    score = fields.Float()
    breakdown = fields.List(fields.Nested(ScorePartOut))
    rules_passed = fields.List(fields.Str())
    origin = fields.Str()
    proposed_at = fields.DateTime()
    expires_at = fields.DateTime()
    accepted_at = fields.DateTime(allow_none=True)
    accepted_by_role = fields.Str(allow_none=True)
    declined_by_role = fields.Str(allow_none=True)
    decline_reason = fields.Str(allow_none=True)
    ended_at = fields.DateTime(allow_none=True)
    ended_by_role = fields.Str(allow_none=True)
    end_reason_code = fields.Str(allow_none=True)
    end_reason = fields.Str(allow_none=True)
    history = fields.List(fields.Nested(HistoryOut))


class MatchQuery(PageQuery):
    status = fields.Str(validate=validate.OneOf(model.MATCH_STATUSES))
    member_id = fields.Str()
    leader_id = fields.Str()
    site_id = fields.Str()


class DeclineIn(Schema):
    reason = Reason(required=True)


class EndIn(Schema):
    reason_code = fields.Str(required=True, validate=validate.OneOf(HAND_END_REASONS),
                             metadata={"description": "member_choice (on the member's behalf), leader_choice, coordinator"})
    reason = Reason(load_default=None)


class DifferentLeaderIn(Schema):
    reason = Reason(required=True, metadata={"description": "why the member asks for someone else"})


class CandidateOut(Schema):
    leader_id = fields.Str()
    score = fields.Float()
    breakdown = fields.List(fields.Nested(ScorePartOut))
    rules_passed = fields.List(fields.Str())


class ExcludedOut(Schema):
    leader_id = fields.Str()
    rules_failed = fields.List(fields.Str())


class ProposalsOut(Schema):
    member_id = fields.Str()
    candidates = fields.List(fields.Nested(CandidateOut))
    excluded = fields.List(fields.Nested(ExcludedOut))
    waitlist_reason = fields.Str(allow_none=True)


class ProposalsQuery(Schema):
    limit = fields.Int(load_default=5, validate=validate.Range(1, 50))


class OverrideIn(Schema):
    member_id = Ref(required=True)
    leader_id = Ref(required=True)
    kind = fields.Str(required=True, validate=validate.OneOf(("pin", "block")))
    reason = Reason(required=True)


class OverrideOut(Schema):
    id = fields.Str()
    member_id = fields.Str()
    leader_id = fields.Str()
    kind = fields.Str(metadata={"description": "pin, block, or a recorded exclusion (declined, expired, ended_*)"})
    active = fields.Bool()
    by = fields.Str()
    role = fields.Str()
    reason = fields.Str(allow_none=True)
    at = fields.DateTime()
    warning = fields.Str(allow_none=True)


class OverrideQuery(PageQuery):
    member_id = fields.Str()


class WaitlistOut(Schema):
    member_id = fields.Str()
    site_id = fields.Str(metadata={"description": "the member's site (the reason names it by its name)"})
    reason = fields.Str()
    reason_codes = fields.List(fields.Str())
    since = fields.DateTime()


class WaitlistQuery(PageQuery):
    site_id = fields.Str()


class BatchRunIn(Schema):
    site_id = Ref(load_default=None, allow_none=True,
                  metadata={"description": "one of the organization's sites (a coordinator: one of theirs); "
                                           "leave out for the whole organization (admin)"})


class UnmatchedOut(Schema):
    member_id = fields.Str()
    site_id = fields.Str(metadata={"description": "the member's site (the reason names it by its name)"})
    reason = fields.Str()
    reason_codes = fields.List(fields.Str())


class BatchRunOut(Schema):
    id = fields.Str()
    site_id = fields.Str(allow_none=True)
    status = fields.Str(metadata={"description": "queued, running, done or failed"})
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    members_considered = fields.Int(allow_none=True)
    matched = fields.Int(allow_none=True)
    total_score = fields.Float(allow_none=True)
    unmatched_count = fields.Int(allow_none=True)
    unmatched = fields.List(fields.Nested(UnmatchedOut))
    seconds = fields.Float(allow_none=True)
    error = fields.Str(allow_none=True)


class WeightsSchema(Schema):
    substances_pathway = fields.Float(validate=validate.Range(min=0, max=1000))
    lived_experience = fields.Float(validate=validate.Range(min=0, max=1000))
    availability = fields.Float(validate=validate.Range(min=0, max=1000))
    co_occurring = fields.Float(validate=validate.Range(min=0, max=1000))
    leader_load = fields.Float(validate=validate.Range(min=0, max=1000))


class SettingsIn(Schema):
    weights = fields.Nested(WeightsSchema, load_default=None)
    proposal_ttl_hours = fields.Float(load_default=None, validate=validate.Range(min=0.0001, max=24 * 60, min_inclusive=True))
    waitlist_alert_days = fields.Int(load_default=None, validate=validate.Range(min=1, max=365))


class SettingsOut(Schema):
    weights = fields.Nested(WeightsSchema, metadata={"description": "as set (any scale)"})
    points = fields.Nested(WeightsSchema, metadata={"description": "the weights as points out of 100"})
    proposal_ttl_hours = fields.Float()
    waitlist_alert_days = fields.Int()


# --- the member's own routes (/v1/me/...) ----------------------------------------------------------

class MyMatchOut(Schema):
    id = fields.Str()
    leader_id = fields.Str(metadata={"description": "the leader's first name and bio are at intake's GET /v1/me/leader"})
    site_id = fields.Str()
    status = fields.Str(metadata={"description": "proposed (answer it: accept or decline) or active"})
    origin = fields.Str(allow_none=True)
    proposed_at = fields.DateTime()
    expires_at = fields.DateTime(allow_none=True, metadata={"description": "a proposal not answered by then expires"})
    accepted_at = fields.DateTime(allow_none=True)
    reasons = fields.List(fields.Str(), metadata={"description": "why this leader, in plain words"})


class MyWaitOut(Schema):
    since = fields.DateTime()
    reason = fields.Str(allow_none=True, metadata={"description": "why nobody can take the member now, in words"})


class MyMatchStateOut(Schema):
    member_id = fields.Str()
    match = fields.Nested(MyMatchOut, allow_none=True, metadata={"description": "the open proposal or match, or null"})
    waitlist = fields.Nested(MyWaitOut, allow_none=True, metadata={"description": "set while the member waits"})


class MyExportOut(Schema):
    service = fields.Str()
    organization_id = fields.Str()
    member_id = fields.Str()
    member = StoredDocument(allow_none=True, metadata={"description": "matching's copy of the member (from intake's events)"})
    matches = fields.List(StoredDocument(), metadata={"description": "every match and proposal, with history and reasons"})
    waitlist = fields.List(StoredDocument(), metadata={"description": "the member's waitlist entry, if they wait"})
    overrides = fields.List(StoredDocument(), metadata={"description": "pins, blocks and recorded exclusions concerning the member"})
