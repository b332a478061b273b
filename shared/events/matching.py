"""Events matching publishes. Keyed by member id, so one member's matching story stays in order."""
from marshmallow import Schema, fields, validate

from shared.events.base import EventSchema, event

MATCHES = "recoverynet.matching.matches"

END_REASONS = (
    "member_choice",        # the member ended it or asked for a different leader
    "leader_choice",
    "coordinator",
    "leader_left",          # on leave or retired
    "certification_lapsed",
    "consent_revoked",
    "member_inactive",      # paused, discharged, graduated, transferred away
    "member_erased",
)


class ScorePart(Schema):
    part = fields.Str(required=True, metadata={"description": "e.g. shared_pathway, language, availability"})
    points = fields.Float(required=True)
    max_points = fields.Float(required=True)
    explanation = fields.Str(required=True, metadata={"description": "in words a coordinator understands"})


class MatchRef(EventSchema):
    match_id = fields.Str(required=True)
    member_id = fields.Str(required=True)
    leader_id = fields.Str(required=True)
    site_id = fields.Str(required=True)


@event("org.recoverynet.matching.match.proposed", version=1, topic=MATCHES, key="member_id")
class MatchProposed(MatchRef):
    """A leader was proposed for a member, with the reasons."""

    score = fields.Float(required=True, validate=validate.Range(0, 100))
    breakdown = fields.List(fields.Nested(ScorePart), required=True)
    rules_passed = fields.List(fields.Str(), required=True)
    expires_at = fields.DateTime(required=True)
    origin = fields.Str(load_default="new", metadata={"description": "new, batch, re_proposal, after_decline, pinned"})


@event("org.recoverynet.matching.match.accepted", version=1, topic=MATCHES, key="member_id")
class MatchAccepted(MatchRef):
    accepted_by_role = fields.Str(required=True)


@event("org.recoverynet.matching.match.activated", version=1, topic=MATCHES, key="member_id")
class MatchActivated(MatchRef):
    """The pairing is in effect: scheduling suggests one-on-one session times."""


@event("org.recoverynet.matching.match.declined", version=1, topic=MATCHES, key="member_id")
class MatchDeclined(MatchRef):
    declined_by_role = fields.Str(required=True)
    reason = fields.Str(required=True)


@event("org.recoverynet.matching.match.expired", version=1, topic=MATCHES, key="member_id")
class MatchExpired(MatchRef):
    """Nobody answered the proposal in time."""


@event("org.recoverynet.matching.match.ended", version=1, topic=MATCHES, key="member_id")
class MatchEnded(MatchRef):
    ended_by_role = fields.Str(required=True, metadata={"description": "member, leader, coordinator, admin or system"})
    reason_code = fields.Str(required=True, validate=validate.OneOf(END_REASONS))
    reason = fields.Str(allow_none=True, load_default=None)
    re_proposal_follows = fields.Bool(required=True)


@event("org.recoverynet.matching.member.waitlisted", version=1, topic=MATCHES, key="member_id")
class MemberWaitlisted(EventSchema):
    """No leader can take the member now; they wait, and the reason says why."""

    member_id = fields.Str(required=True)
    site_id = fields.Str(required=True)
    reason = fields.Str(required=True)
    reason_codes = fields.List(fields.Str(), load_default=list)
    waiting_since = fields.DateTime(required=True)


@event("org.recoverynet.matching.member.waiting_too_long", version=1, topic=MATCHES, key="member_id")
class MemberWaitingTooLong(EventSchema):
    """A waitlisted member has waited past the organization's threshold: the coordinator should act."""

    member_id = fields.Str(required=True)
    site_id = fields.Str(required=True)
    reason = fields.Str(required=True)
    waiting_since = fields.DateTime(required=True)
    days_waiting = fields.Int(required=True)
