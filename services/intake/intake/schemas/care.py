"""Bodies of a member's consents, screenings and plan."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from shared.errors import DomainError
from shared.web.pages import PageQuery

from intake.model import CONSENT_PURPOSE_INPUT_RE, INSTRUMENTS, check_consent_purpose
from intake.schemas.common import Str, StrictSchema, aware_dt


def _messages(exc: DomainError) -> list[str]:
    """A model rule's refusal as a field's messages."""
    errors = getattr(exc, "errors", None) or {}
    return [message for messages in errors.values() for message in messages] or [exc.message]


def _consent_purpose(value: str) -> None:
    try:
        check_consent_purpose(value)
    except DomainError as exc:
        raise ValidationError(_messages(exc)) from None


class ConsentGrantIn(StrictSchema):
    # Checked by the model's rule (so notify:webhook says why it is refused), documented as its pattern.
    purpose = Str(required=True, validate=_consent_purpose,
                  metadata={"pattern": CONSENT_PURPOSE_INPUT_RE.pattern,
                            "description": "matching, notify:email|sms|inapp, share:<program> (not notify:webhook: webhooks are organizations')"})
    expires_at = aware_dt(load_default=None, allow_none=True)
    note = Str(load_default=None, allow_none=True, validate=validate.Length(max=500))


class ConsentOut(Schema):
    purpose = Str()
    in_force = fields.Bool()
    granted_at = fields.DateTime()
    recorded_by = Str()
    expires_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)
    revoked_by = Str(allow_none=True)
    note = Str(allow_none=True)


class PlanOut(Schema):
    goal = Str()
    next_steps = fields.List(Str())
    revision = fields.Int()
    updated_by = Str()
    updated_at = fields.DateTime()
    shared_with_leader = fields.Bool(metadata={"description": "the member shows the goal to their peer leader "
                                                              "(a new revision is not shown until they do again)"})


class ScreeningIn(StrictSchema):
    instrument = Str(required=True, validate=validate.OneOf(INSTRUMENTS))
    answers = fields.List(fields.Int(strict=True, validate=validate.Range(0, 6)), required=True,
                          validate=validate.Length(min=2, max=10), metadata={
        "description": "item answers in order: BARC-10 10x1-6, AUDIT-C 3x0-4, DAST-10 10x0/1 (1 = yes, "
                       "as answered; item 3 is reverse scored by the service), PHQ-2 2x0-3"})


class ScreeningOut(Schema):
    id = Str(attribute="_id")
    member_id = Str()
    site_id = Str()
    instrument = Str()
    answers = fields.List(fields.Int())
    total = fields.Int()
    band = Str()
    flagged = fields.Bool()
    reason = Str(allow_none=True)
    recorded_by = Str()
    recorded_at = fields.DateTime()


class ScreeningQuery(PageQuery):
    instrument = Str(validate=validate.OneOf(INSTRUMENTS))


class PlanIn(StrictSchema):
    goal = Str(required=True, validate=validate.Length(min=1, max=2000))
    next_steps = fields.List(Str(validate=validate.Length(min=1, max=500)), load_default=list)
