"""Bodies and queries of members and leaders: profile, status, transfer, erasure, certifications."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.events.intake import CO_OCCURRING, LEADER_STATUSES, MEETING_MODES, MEMBER_STATUSES
from shared.web.pages import PageQuery, page_schema

from intake.model import PATHWAYS
from intake.schemas.care import ConsentGrantIn, ConsentOut, PlanOut, ScreeningOut
from intake.schemas.common import (HHMM_END_PATTERN, HHMM_PATTERN, LEADER_BIO_MAX, NAME, Str, StrictSchema,
                                   channels_field, email_field, language_field, phone_field, time_zone_field)


# --- people ------------------------------------------------------------------------------------

class WindowSchema(StrictSchema):
    day = fields.Int(required=True, validate=validate.Range(0, 6), metadata={"description": "0 = Monday"})
    start = Str(required=True, metadata={"pattern": HHMM_PATTERN, "description": "HH:MM local"})
    end = Str(required=True, metadata={"pattern": HHMM_END_PATTERN, "description": "HH:MM local, after start (24:00 allowed)"})


class PersonFields(StrictSchema):
    first_name = Str(required=True, validate=NAME)
    last_name = Str(load_default=None, allow_none=True, validate=validate.Length(max=200))
    preferred_name = Str(load_default=None, allow_none=True, validate=validate.Length(max=200))
    pronouns = Str(load_default=None, allow_none=True, validate=validate.Length(max=40))
    email = email_field(load_default=None, allow_none=True)
    phone = phone_field(load_default=None, allow_none=True)
    date_of_birth = fields.Date(load_default=None, allow_none=True, metadata={
        "description": "not in the future nor before 1900; 18 or over unless the organization allows youth"})
    languages = fields.List(language_field(), load_default=lambda: ["en"], validate=validate.Length(min=1))
    preferred_language = language_field(load_default=None, allow_none=True)
    time_zone = time_zone_field(load_default=None, allow_none=True, description="IANA; default: the home site's")
    availability = fields.List(fields.Nested(WindowSchema), load_default=list)
    contact_channels = channels_field(load_default=lambda: ["email"])
    substances = fields.List(Str(validate=validate.Length(min=1, max=80)), load_default=list)
    pathways = fields.List(Str(validate=validate.OneOf(PATHWAYS)), load_default=list)


class MemberIn(PersonFields):
    site_id = Str(required=True, metadata={"description": "home site"})
    external_id = Str(load_default=None, allow_none=True, validate=validate.Length(min=1, max=120))
    co_occurring_mental_health = Str(load_default="prefer_not_to_say", validate=validate.OneOf(CO_OCCURRING))
    lived_experience_topics = fields.List(Str(validate=validate.Length(min=1, max=80)), load_default=list)
    leader_gender_preference = Str(load_default=None, allow_none=True, validate=validate.Length(max=40))
    meeting_mode = Str(load_default="either", validate=validate.OneOf(MEETING_MODES))
    consents = fields.List(fields.Nested(ConsentGrantIn), load_default=list,
                           metadata={"description": "consents recorded at intake"})


class MemberPatch(PersonFields):
    """Any subset of the member's fields (site changes go through /transfer, status through /status)."""

    time_zone = time_zone_field(description="IANA; a member keeps one (null is refused)")
    co_occurring_mental_health = Str(validate=validate.OneOf(CO_OCCURRING))
    lived_experience_topics = fields.List(Str(validate=validate.Length(min=1, max=80)))
    leader_gender_preference = Str(allow_none=True, validate=validate.Length(max=40))
    meeting_mode = Str(validate=validate.OneOf(MEETING_MODES))
    external_id = Str(allow_none=True, validate=validate.Length(min=1, max=120))


class PersonOut(Schema):
    """What members and leaders have alike: profile, contact, languages, availability, recovery."""

    first_name = Str()
    last_name = Str(allow_none=True)
    preferred_name = Str(allow_none=True)
    pronouns = Str(allow_none=True)
    email = Str(allow_none=True)
    phone = Str(allow_none=True)
    date_of_birth = fields.Date(allow_none=True)
    languages = fields.List(Str())
    preferred_language = Str(allow_none=True)
    time_zone = Str()
    availability = fields.List(fields.Nested(WindowSchema))
    contact_channels = fields.List(Str())
    substances = fields.List(Str())
    pathways = fields.List(Str())


class MemberOut(PersonOut):
    id = Str(attribute="_id")
    organization_id = Str()
    site_id = Str()
    external_id = Str(allow_none=True)
    status = Str()
    co_occurring_mental_health = Str()
    lived_experience_topics = fields.List(Str())
    leader_gender_preference = Str(allow_none=True)
    meeting_mode = Str()
    consents = fields.List(fields.Nested(ConsentOut))
    flags = fields.List(Str())
    plan = fields.Nested(PlanOut, allow_none=True)
    version = fields.Int()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


IDS_MAX = 100


def ids_field(kind: str):
    """``?ids=a&ids=b``: only these records, in one call (the console names the people a page shows)."""
    return fields.List(Str(validate=validate.Length(min=1, max=64)), validate=validate.Length(
        max=IDS_MAX, error=f"At most {IDS_MAX} ids at a time: ask again for the rest."), metadata={
        "description": f"only the {kind} with these ids (repeat the parameter, at most {IDS_MAX}); an id that is "
                       f"unknown, erased or outside the caller's scope is simply absent. Paged like the rest of "
                       f"the list: ask for ``limit`` as large as the number of ids"})


# What a list of members may be cut down to (``?fields=``): every field a member is shown with.
MEMBER_FIELDS_SHOWN = tuple(MemberOut._declared_fields)


class MemberQuery(PageQuery):
    ids = ids_field("members")
    site_id = Str()
    status = Str(validate=validate.OneOf(MEMBER_STATUSES))
    flagged = fields.Bool(metadata={"description": "only members with (true) or without (false) an open risk flag"})
    external_id = Str()
    name = Str(validate=validate.Length(min=1, max=100), metadata={
        "description": "members whose first, last or preferred name starts with this (any case)"})
    only = fields.List(Str(validate=validate.OneOf(MEMBER_FIELDS_SHOWN)), data_key="fields", metadata={
        "description": "only these fields of each member (repeat the parameter; ``id`` always comes): a page "
                       "that shows names asks for names, and receives no more of the record than it shows"})


# What ``GET /v1/members/{member_id}?include=`` adds to the member, in ``included``.
MEMBER_INCLUDES = ("screenings", "consent_history", "plan_history")
INCLUDED_SCREENINGS = 200   # the newest, as the first page of /screenings at the largest page size


class MemberReadQuery(Schema):
    include = fields.List(Str(validate=validate.OneOf(MEMBER_INCLUDES)), metadata={
        "description": "parts of the member's record to answer with it, in one read audited once (repeat the "
                       "parameter): ``screenings`` (the newest 200, as a page of /screenings), ``consent_history`` "
                       "(as /consent-history), ``plan_history`` (as /plan/history)"})


class MemberIncluded(Schema):
    screenings = fields.Nested(page_schema(ScreeningOut))
    consent_history = fields.List(fields.Dict())
    plan_history = fields.List(fields.Nested(PlanOut))


class MemberReadOut(MemberOut):
    included = fields.Nested(MemberIncluded, metadata={"description": "what ``include`` asked for"})


class StatusIn(StrictSchema):
    to_status = Str(required=True)
    reason = Str(load_default=None, allow_none=True, validate=validate.Length(max=500))


class MemberStatusIn(StatusIn):
    to_status = Str(required=True, validate=validate.OneOf(MEMBER_STATUSES))  # documented as an enum


class LeaderStatusIn(StatusIn):
    to_status = Str(required=True, validate=validate.OneOf(LEADER_STATUSES))


class TransferIn(StrictSchema):
    to_site_id = Str(required=True)
    time_zone = time_zone_field(load_default=None, allow_none=True, description="IANA; default: the new site's")
    reason = Str(load_default=None, allow_none=True, validate=validate.Length(max=500))


class ErasureIn(StrictSchema):
    reason = Str(load_default=None, allow_none=True, validate=validate.Length(max=500))


class ErasureOut(Schema):
    member_id = Str()
    erased_at = fields.DateTime()


class CertificationSchema(StrictSchema):
    name = Str(required=True, validate=NAME)
    issuer = Str(load_default=None, allow_none=True, validate=validate.Length(max=200))
    expires_on = fields.Date(load_default=None, allow_none=True)


class LeaderIn(PersonFields):
    site_ids = fields.List(Str(), required=True, validate=validate.Length(min=1))
    gender = Str(load_default=None, allow_none=True, validate=validate.Length(max=40))
    meets_virtually = fields.Bool(load_default=False)
    capacity = fields.Int(load_default=3, validate=validate.Range(0, 100))
    lived_experience_areas = fields.List(Str(validate=validate.Length(min=1, max=80)), load_default=list)
    co_occurring_mental_health_experience = fields.Bool(load_default=False)
    certifications = fields.List(fields.Nested(CertificationSchema), load_default=list)
    bio = Str(load_default=None, allow_none=True, validate=validate.Length(max=LEADER_BIO_MAX),
              metadata={"description": "a short bio the leader shares with the members they are matched with"})


class LeaderPatch(PersonFields):
    bio = Str(allow_none=True, validate=validate.Length(max=LEADER_BIO_MAX),
              metadata={"description": "a short bio the leader shares with the members they are matched with"})
    time_zone = time_zone_field(description="IANA; a leader keeps one (null is refused)")
    site_ids = fields.List(Str(), validate=validate.Length(min=1))
    gender = Str(allow_none=True, validate=validate.Length(max=40))
    meets_virtually = fields.Bool()
    capacity = fields.Int(validate=validate.Range(0, 100))
    lived_experience_areas = fields.List(Str(validate=validate.Length(min=1, max=80)))
    co_occurring_mental_health_experience = fields.Bool()
    certifications = fields.List(fields.Nested(CertificationSchema))


class StretchedOut(Schema):
    since = fields.DateTime(metadata={"description": "when the leader said they are stretched"})
    note = Str(allow_none=True, metadata={"description": "the leader's private word to their coordinator "
                                                         "(the leader and staff only; never in an event)"})


class StretchedIn(StrictSchema):
    note = Str(load_default=None, allow_none=True, validate=validate.Length(max=500), metadata={
        "description": "optional: anything your coordinator should know (only staff see it)"})


class LeaderOut(PersonOut):
    id = Str(attribute="_id")
    organization_id = Str()
    site_ids = fields.List(Str())
    status = Str()
    gender = Str(allow_none=True)
    meets_virtually = fields.Bool()
    capacity = fields.Int()
    lived_experience_areas = fields.List(Str())
    co_occurring_mental_health_experience = fields.Bool()
    certifications = fields.List(fields.Nested(CertificationSchema))
    certifications_current = fields.Bool()
    bio = Str(allow_none=True)
    stretched = fields.Nested(StretchedOut, allow_none=True, dump_default=None, metadata={
        "description": "set while the leader says they are stretched: no new proposals to them until lifted"})
    version = fields.Int()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


# What a list of peer leaders may be cut down to (``?fields=``): every field a peer leader is shown with.
LEADER_FIELDS_SHOWN = tuple(LeaderOut._declared_fields)


class LeaderQuery(PageQuery):
    ids = ids_field("peer leaders")
    site_id = Str()
    status = Str(validate=validate.OneOf(LEADER_STATUSES))
    only = fields.List(Str(validate=validate.OneOf(LEADER_FIELDS_SHOWN)), data_key="fields", metadata={
        "description": "only these fields of each peer leader (repeat the parameter; ``id`` always comes), as "
                       "for members"})
