"""HTTP bodies of self-service (``/v1/me``): what a member, a leader or a staff member reads and changes
of their own, and the leader's minimum-necessary view of the members they are matched with. Shapes only;
who may change what is ``model.MEMBER_SELF_FIELDS`` / ``LEADER_SELF_FIELDS``, the rules ``model``'s."""
from __future__ import annotations

import copy

from marshmallow import Schema, fields, validate

from shared.web.pages import PageQuery

from intake.model import CONSENT_PURPOSE_MEANINGS, INSTRUMENTS
from intake.schemas import (LEADER_BIO_MAX, AuditOut, ConsentGrantIn, ConsentOut, LeaderOut, PlanOut, ScreeningOut,
                            StaffOut, StrictSchema, WindowSchema, channels_field, language_field)

Str = fields.Str
PURPOSES = "; ".join(f"{p}: {meaning}" for p, meaning in CONSENT_PURPOSE_MEANINGS.items())


class MyConsentOut(Schema):
    purpose = Str()
    granted_at = fields.DateTime()
    expires_at = fields.DateTime(allow_none=True)


class MemberSelfOut(Schema):
    """What a member sees of their own record: no staff notes, no risk flags, no recovery profile."""
    id = Str(attribute="_id")
    organization_id = Str()
    site_id = Str()
    status = Str()
    first_name = Str(allow_none=True)
    last_name = Str(allow_none=True)
    preferred_name = Str(allow_none=True)
    pronouns = Str(allow_none=True)
    email = Str(allow_none=True)
    phone = Str(allow_none=True)
    date_of_birth = fields.Date(allow_none=True)
    languages = fields.List(Str())
    preferred_language = Str(allow_none=True)
    time_zone = Str(allow_none=True)
    availability = fields.List(fields.Nested(WindowSchema))
    contact_channels = fields.List(Str())
    meeting_mode = Str(allow_none=True)
    leader_gender_preference = Str(allow_none=True)
    consents = fields.List(fields.Nested(MyConsentOut), metadata={"description": "the consents in force"})


class MeOut(Schema):
    """The caller: their role and organization, and their own record (one of member, leader, staff)."""
    role = Str()
    organization_id = Str(allow_none=True)
    site_ids = fields.List(Str())
    member = fields.Nested(MemberSelfOut, allow_none=True)
    leader = fields.Nested(LeaderOut, allow_none=True)
    staff = fields.Nested(StaffOut, allow_none=True, metadata={
        "description": "a coordinator's or admin's staff record, when their token names one"})


class MePatch(StrictSchema):
    """A member may change: preferred_name, pronouns, languages, preferred_language, contact_channels,
    availability. A leader: bio, preferred_name, pronouns, languages, preferred_language, availability.
    Anything else (status, site, flags, capacity, certifications) is refused."""
    preferred_name = Str(allow_none=True, validate=validate.Length(max=200))
    pronouns = Str(allow_none=True, validate=validate.Length(max=40))
    languages = fields.List(language_field(), validate=validate.Length(min=1))
    preferred_language = language_field(allow_none=True)
    contact_channels = channels_field()
    availability = fields.List(fields.Nested(WindowSchema))
    bio = Str(allow_none=True, validate=validate.Length(max=LEADER_BIO_MAX),
              metadata={"description": "leaders: the short bio members matched with them see"})


def _purpose_field():
    """ConsentGrantIn's purpose field (the model's rule), documented with what each purpose means."""
    field = copy.copy(ConsentGrantIn._declared_fields["purpose"])
    field.metadata = {**field.metadata, "description": PURPOSES}
    return field


class MyConsentIn(StrictSchema):
    """A consent the member gives themselves (recorded as given by them)."""
    purpose = _purpose_field()
    expires_at = ConsentGrantIn._declared_fields["expires_at"]


class PlanSharingIn(StrictSchema):
    shared_with_leader = fields.Bool(required=True, metadata={
        "description": "show the plan's goal and next steps to the peer leader you are matched with"})


class MyScreeningOut(Schema):
    """A screening's result as the member sees it (when the organization shares scores)."""
    id = Str(attribute="_id")
    instrument = Str()
    total = fields.Int()
    band = Str()
    recorded_at = fields.DateTime()


class MyScreeningQuery(PageQuery):
    instrument = Str(validate=validate.OneOf(INSTRUMENTS))


class LeaderPublicOut(Schema):
    first_name = Str(allow_none=True)
    languages = fields.List(Str())
    bio = Str(allow_none=True)


class MyLeaderOut(Schema):
    waiting = fields.Bool(metadata={"description": "true when no match is in force"})
    reason = Str(allow_none=True, metadata={"description": "why, in plain words, when waiting"})
    match_id = Str(allow_none=True)
    status = Str(allow_none=True, metadata={"enum": ["proposed", "accepted", "active"]})
    leader = fields.Nested(LeaderPublicOut, allow_none=True)


class SharedGoalOut(Schema):
    goal = Str()
    next_steps = fields.List(Str())


class MemberContactOut(Schema):
    email = Str(allow_none=True)
    phone = Str(allow_none=True)
    contact_channels = fields.List(Str())


class MatchedMemberOut(Schema):
    """The leader's minimum-necessary view of a member they are matched with."""
    member_id = Str()
    match_id = Str()
    match_status = Str(metadata={"enum": ["proposed", "accepted", "active"]})
    name = Str(allow_none=True, metadata={"description": "the preferred name, or the first name"})
    languages = fields.List(Str())
    time_zone = Str(allow_none=True)
    availability = fields.List(fields.Nested(WindowSchema))
    shared_goals = fields.List(fields.Nested(SharedGoalOut), metadata={
        "description": "the plan's goal when the member shared it with their leader"})
    contact_shared = fields.Bool(metadata={"description": "the member gave share:leader"})
    contact = fields.Nested(MemberContactOut, allow_none=True, metadata={
        "description": "only while the member's share:leader consent is in force"})


class MatchKnownOut(Schema):
    match_id = Str()
    leader_id = Str()
    site_id = Str()
    status = Str()
    open = fields.Bool()
    created_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime()


class ConsentLogOut(Schema):
    purpose = Str()
    action = Str(metadata={"description": "granted, revoked or expired"})
    by = Str()
    at = fields.DateTime()
    expires_at = fields.DateTime(allow_none=True)


class ExportMemberOut(MemberSelfOut):
    """The whole record, as intake holds it."""
    external_id = Str(allow_none=True)
    substances = fields.List(Str())
    pathways = fields.List(Str())
    co_occurring_mental_health = Str(allow_none=True)
    lived_experience_topics = fields.List(Str())
    flags = fields.List(Str())
    consents = fields.List(fields.Nested(ConsentOut), metadata={"description": "every consent, in force or not"})
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ExportOut(Schema):
    """Everything intake holds about the member (right of access)."""
    exported_at = fields.DateTime()
    member = fields.Nested(ExportMemberOut)
    consent_history = fields.List(fields.Nested(ConsentLogOut))
    screenings = fields.List(fields.Nested(ScreeningOut))
    plan = fields.Nested(PlanOut, allow_none=True)
    plan_history = fields.List(fields.Nested(PlanOut))
    matches = fields.List(fields.Nested(MatchKnownOut), metadata={"description": "the matches intake knows of"})
    audit = fields.List(fields.Nested(AuditOut), metadata={"description": "who read or changed the record, when"})
