"""HTTP bodies and queries of the intake API (marshmallow). The rules of one field that JSON Schema can say
are stated here too, so the OpenAPI document says them (issue 13): IANA time zones, BCP 47 tags, E.164
phones, channels, HH:MM times, email syntax. The rules themselves (and those across fields: an email or
a phone, an address unless virtual, an end after its start) live in ``model``, which the HTTP API and the
bulk import share."""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import timezone


from marshmallow import RAISE, Schema, ValidationError, fields, pre_dump, validate

from shared.errors import DomainError
from shared.events.intake import CO_OCCURRING, LEADER_STATUSES, MEETING_MODES, MEMBER_STATUSES
from shared.web.pages import PageQuery
from intake.model import CHOOSE_ORGANIZATION, STAFF_ROLES, STAFF_STATUSES

SIGN_IN_ROLES = ("admin", "coordinator", "leader", "member", "operator")

from intake.model import self_service as self_service_of
from intake.model import (CHANNEL_ALIASES, CHANNELS, NOT_A_PERSON_CHANNEL, check_channels, CONSENT_PURPOSE_INPUT_RE, INSTRUMENTS, LANGUAGE_RE, PATHWAYS,
                          check_consent_purpose)

Str = fields.Str
NAME = validate.Length(min=1, max=200)
LEADER_BIO_MAX = 600

# --- one-field rules, as the document says them ------------------------------------------------
# ``model`` checks these (normalize_person collects every field's problem, so one 422 names them all); the
# fields below only say them in the document, as patterns, enums and formats, exactly as ``model`` decides.
# A time zone: the shape as a pattern and the name as format "iana-time-zone" (the tz database's names, as
# zoneinfo knows them; an enum of ~600 names at every use would weigh the document down).
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"
# E.164 ("+" country code and number, 7 to 15 digits); spaces, dots, hyphens and parentheses between the
# digits are accepted and removed ("+1 617 253 1234"); format "e164-phone": a number phonenumbers deems
# valid for its country.
PHONE_PATTERN = r"^\+[1-9](?:[ .()-]{0,2}[0-9]){6,14}$"
HHMM_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
HHMM_END_PATTERN = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"


def time_zone_field(**kw):
    description = kw.pop("description", "IANA time zone, e.g. America/Chicago")
    return Str(metadata={"pattern": TIME_ZONE_PATTERN, "format": "iana-time-zone", "description": description}, **kw)


def phone_field(**kw):
    return Str(validate=validate.Length(max=32),
               metadata={"pattern": PHONE_PATTERN, "format": "e164-phone", "description": "E.164, e.g. +14155552671"},
               **kw)


def language_field(**kw):
    return Str(metadata={"pattern": LANGUAGE_RE.pattern, "description": "BCP 47 language tag, e.g. en, es, pt-BR"}, **kw)


def email_field(**kw):
    description = kw.pop("description", "an email or a phone is required (or both)")
    return Str(validate=validate.Length(max=320), metadata={"format": "email", "description": description}, **kw)


def channels_field(**kw):
    return fields.List(Str(metadata={"enum": [*CHANNELS, *CHANNEL_ALIASES]}), **kw)


def aware_dt(**kw):
    return fields.AwareDateTime(default_timezone=timezone.utc, **kw)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


# --- organizations, sites, staff ---------------------------------------------------------------

class OrganizationIn(StrictSchema):
    id = Str(validate=validate.Regexp(r"^[a-z0-9][a-z0-9_-]{2,62}$"),
             metadata={"description": "optional slug; generated when left out"})
    name = Str(required=True, validate=NAME)
    allows_youth = fields.Bool(load_default=False)
    default_language = language_field(load_default="en")


class SelfServiceSchema(StrictSchema):
    """What members see of their own record in the app (self-service); defaults: plan yes, scores no."""
    share_plan = fields.Bool(metadata={"description": "members read their plan (/v1/me/plan); default true"})
    share_scores = fields.Bool(metadata={"description": "members read their screenings' scores "
                                                        "(/v1/me/screenings); default false"})


class OrganizationPatch(StrictSchema):
    name = Str(validate=NAME)
    allows_youth = fields.Bool()
    default_language = language_field()
    self_service = fields.Nested(SelfServiceSchema, metadata={"description": "fields left out keep their value"})


class OrganizationOut(Schema):
    id = Str(attribute="_id")
    name = Str()
    allows_youth = fields.Bool()
    default_language = Str()
    self_service = fields.Nested(SelfServiceSchema)
    created_at = fields.DateTime()

    @pre_dump
    def _self_service_defaults(self, org, **kwargs):
        return {**org, "self_service": self_service_of(org)}


class AddressSchema(StrictSchema):
    street = Str(load_default=None, allow_none=True, validate=validate.Length(max=300))
    city = Str(load_default=None, allow_none=True, validate=validate.Length(max=120))
    region = Str(load_default=None, allow_none=True, validate=validate.Length(max=120))
    postal_code = Str(load_default=None, allow_none=True, validate=validate.Length(max=20))
    country = Str(load_default=None, allow_none=True, validate=validate.Length(max=60))


class SiteIn(StrictSchema):
    name = Str(required=True, validate=NAME)
    time_zone = time_zone_field(required=True)
    virtual_only = fields.Bool(load_default=False)
    address = fields.Nested(AddressSchema, load_default=None, allow_none=True,
                            metadata={"description": "required unless virtual_only"})


class SitePatch(SiteIn):
    pass


class SiteOut(Schema):
    id = Str(attribute="_id")
    organization_id = Str()
    name = Str()
    time_zone = Str()
    virtual_only = fields.Bool()
    address = fields.Nested(AddressSchema, allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class StaffIn(StrictSchema):
    first_name = Str(required=True, validate=NAME)
    last_name = Str(load_default=None, allow_none=True, validate=validate.Length(max=200))
    preferred_name = Str(load_default=None, allow_none=True, validate=validate.Length(max=200))
    email = email_field(load_default=None, allow_none=True)
    phone = phone_field(load_default=None, allow_none=True)
    time_zone = time_zone_field(load_default=None, allow_none=True)
    languages = fields.List(language_field(), load_default=list)
    contact_channels = channels_field(load_default=lambda: ["email"])
    site_ids = fields.List(Str(), required=True, validate=validate.Length(min=1))


class StaffPatch(StaffIn):
    time_zone = time_zone_field(description="IANA; staff keep one (null is refused)")


class StaffInvitationIn(StrictSchema):
    """Invite a person by email as an organization admin, or as coordinator of the sites named."""
    email = email_field(required=True, description="the address the invitation and later sign-in codes go to")
    role = Str(required=True, validate=validate.OneOf(STAFF_ROLES))
    site_ids = fields.List(Str(), load_default=list,
                           metadata={"description": "a coordinator's sites: at least one for a coordinator (422 "
                                                    "naming site_ids otherwise); ignored for an admin"})
    first_name = Str(load_default=None, allow_none=True, validate=validate.Length(max=200))
    last_name = Str(load_default=None, allow_none=True, validate=validate.Length(max=200))
    languages = fields.List(language_field(), load_default=list)
    time_zone = time_zone_field(load_default=None, allow_none=True,
                                description="IANA time zone; the first site's when left out (UTC for an admin)")


class StaffOut(Schema):
    id = Str(attribute="_id")
    organization_id = Str()
    role = Str(dump_default="coordinator", validate=validate.OneOf(STAFF_ROLES))
    status = Str(dump_default="active", validate=validate.OneOf(STAFF_STATUSES),
                 metadata={"description": "invited until their first sign-in; inactive: deactivated, cannot sign in"})
    first_name = Str(allow_none=True)
    last_name = Str(allow_none=True)
    preferred_name = Str(allow_none=True)
    email = Str(allow_none=True)
    phone = Str(allow_none=True)
    time_zone = Str()
    languages = fields.List(Str())
    contact_channels = fields.List(Str())
    site_ids = fields.List(Str())
    version = fields.Int()


# --- signing in ----------------------------------------------------------------------------------

class SignInIn(StrictSchema):
    """An email, or a phone number for an SMS code: exactly one of them."""

    class Meta:
        unknown = RAISE
        openapi = {"minProperties": 1, "maxProperties": 1}

    email = email_field(description="the address to send the code to (or give phone)")
    # the pattern is checked here too: a sign-in by an address that is not one answers 422, never 202
    phone = Str(validate=[validate.Length(max=32), validate.Regexp(PHONE_PATTERN)],
                metadata={"pattern": PHONE_PATTERN, "format": "e164-phone", "description": "E.164, e.g. +14155552671"})


class SignInAcceptedOut(Schema):
    status = Str(required=True, metadata={"enum": ["accepted"]})
    detail = Str(required=True)


class SignInTokenIn(StrictSchema):
    code = Str(required=True, validate=validate.Length(min=4, max=200),
               metadata={"description": "the code from the message (ABCD-EFGH; case, spaces and dashes do "
                                        "not matter) or the token of the link's code parameter"})
    organization_id = Str(load_default=None, allow_none=True,
                          metadata={"description": "which organization to enter, when the code opens several"})
    role = Str(load_default=None, allow_none=True, validate=validate.OneOf(SIGN_IN_ROLES),
               metadata={"description": "which role to take, when the code opens several in one organization"})


class SignInTokenOut(Schema):
    access_token = Str(required=True)
    token_type = Str(required=True, metadata={"enum": ["Bearer"]})
    expires_in = fields.Int(required=True, metadata={"description": "seconds"})
    role = Str(required=True, validate=validate.OneOf(SIGN_IN_ROLES))
    person_id = Str(required=True)
    organization_id = Str(required=True, allow_none=True, metadata={"description": "null for an operator"})
    sites = fields.List(Str(), metadata={"description": "a coordinator's sites (a member's site, a leader's sites)"})


class SignInChoiceOut(Schema):
    organization_id = Str(allow_none=True)
    organization_name = Str(allow_none=True)
    role = Str()


class ChooseOrganizationProblem(Schema):
    """409 problem+json when a code opens several organizations (or roles): ask again naming one."""
    type = Str(metadata={"enum": [CHOOSE_ORGANIZATION]})
    title = Str()
    status = fields.Int()
    detail = Str()
    choices = fields.List(fields.Nested(SignInChoiceOut))


class TokenIn(StrictSchema):
    ttl_seconds = fields.Int(load_default=3600, validate=validate.Range(min=60, max=90 * 24 * 3600))


class TokenOut(Schema):
    token = Str()
    role = Str()
    organization_id = Str()
    sites = fields.List(Str())
    expires_in = fields.Int()


class PublicJwk(Schema):
    """One Ed25519 public key (RFC 8037) tokens are verified with; ``kid`` is its RFC 7638 thumbprint."""

    kty = Str(metadata={"example": "OKP"})
    crv = Str(metadata={"example": "Ed25519"})
    x = Str(metadata={"description": "the public key, base64url"})
    kid = Str(metadata={"description": "the key id a token's header names"})
    use = Str(metadata={"example": "sig"})
    alg = Str(metadata={"example": "EdDSA"})


class JwksOut(Schema):
    keys = fields.List(fields.Nested(PublicJwk), metadata={"description": "the current key, then rotated-out keys whose tokens may still be valid"})


class SignedOutOut(Schema):
    subject = Str(metadata={"description": "the caller's token subject"})
    min_version = fields.Int(metadata={"description": "tokens with a lower version (ver) are refused from now on"})


# --- people ------------------------------------------------------------------------------------

def _messages(exc: DomainError) -> list[str]:
    """A model rule's refusal as a field's messages."""
    errors = getattr(exc, "errors", None) or {}
    return [message for messages in errors.values() for message in messages] or [exc.message]


def _consent_purpose(value: str) -> None:
    try:
        check_consent_purpose(value)
    except DomainError as exc:
        raise ValidationError(_messages(exc)) from None


class WindowSchema(StrictSchema):
    day = fields.Int(required=True, validate=validate.Range(0, 6), metadata={"description": "0 = Monday"})
    start = Str(required=True, metadata={"pattern": HHMM_PATTERN, "description": "HH:MM local"})
    end = Str(required=True, metadata={"pattern": HHMM_END_PATTERN, "description": "HH:MM local, after start (24:00 allowed)"})


class ConsentGrantIn(StrictSchema):
    # Checked by the model's rule (so notify:webhook says why it is refused), documented as its pattern.
    purpose = Str(required=True, validate=_consent_purpose,
                  metadata={"pattern": CONSENT_PURPOSE_INPUT_RE.pattern,
                            "description": "matching, notify:email|sms|inapp, share:<program> (not notify:webhook: webhooks are organizations')"})
    expires_at = aware_dt(load_default=None, allow_none=True)
    note = Str(load_default=None, allow_none=True, validate=validate.Length(max=500))


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


class MemberQuery(PageQuery):
    site_id = Str()
    status = Str(validate=validate.OneOf(MEMBER_STATUSES))
    flagged = fields.Bool(metadata={"description": "only members with (true) or without (false) an open risk flag"})
    external_id = Str()
    name = Str(validate=validate.Length(min=1, max=100), metadata={
        "description": "members whose first, last or preferred name starts with this (any case)"})


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
    version = fields.Int()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class LeaderQuery(PageQuery):
    site_id = Str()
    status = Str(validate=validate.OneOf(LEADER_STATUSES))


# --- imports and audit -------------------------------------------------------------------------

class ImportRowOut(Schema):
    row = fields.Int(metadata={"description": "1-based data row (CSV: not counting the header)"})
    external_id = Str(allow_none=True)
    outcome = Str(metadata={"description": "created, updated, unchanged or rejected"})
    member_id = Str(allow_none=True)
    errors = fields.Dict(keys=Str(), values=fields.List(Str()), allow_none=True)
    existing = fields.Dict(allow_none=True)


class ImportOut(Schema):
    id = Str(attribute="_id")
    organization_id = Str()
    site_id = Str()
    format = Str()
    created_at = fields.DateTime()
    counts = fields.Dict(keys=Str(), values=fields.Int())
    rows = fields.List(fields.Nested(ImportRowOut))


class AuditQuery(PageQuery):
    resource_id = Str()
    resource_type = Str()
    action = Str()


class AuditOut(Schema):
    at = fields.DateTime()
    actor = Str()
    actor_role = Str()
    action = Str()
    resource_type = Str()
    resource_id = Str()
    details = fields.Dict()


# --- bulk import: CSV / JSON lines rows -> MemberIn-shaped dicts ----------------------------------

CSV_LIST_COLUMNS = ("languages", "contact_channels", "substances", "pathways", "lived_experience_topics")
CSV_COLUMNS = ("external_id", "first_name", "last_name", "preferred_name", "pronouns", "email", "phone",
               "date_of_birth", "languages", "preferred_language", "time_zone", "availability", "contact_channels",
               "substances", "pathways", "co_occurring_mental_health", "lived_experience_topics",
               "leader_gender_preference", "meeting_mode", "consents")
DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
WINDOW_RE = re.compile(r"^\s*(\w+)\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$")
IMPORT_FORMATS = {"text/csv": "csv", "application/csv": "csv", "application/x-ndjson": "jsonl",
                  "application/jsonl": "jsonl", "application/x-jsonlines": "jsonl", "application/json-lines": "jsonl"}


# The upload's request body as documented: a CSV names first_name in its header row (the only column it
# must have; a row's problems are reported per row in the answer, never refused as a whole).
CSV_HEADER_PATTERN = r'^\ufeff?([^\r\n",\x00]*,)*("first_name"|first_name)(,[^\r\n",\x00]*)*(\r?\n|$)'
IMPORT_REQUEST_BODY = {"required": True, "content": {
    "text/csv": {"schema": {"type": "string", "pattern": CSV_HEADER_PATTERN,
                            "description": "a header row naming first_name, then a member a row"}},
    "application/x-ndjson": {"schema": {"type": "string", "description": "a member object a line"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}},
}}


class RowError(ValueError):
    def __init__(self, errors: dict):
        super().__init__(str(errors))
        self.errors = errors


def _key(name: str) -> str:
    """A column or field name as a row's error key: the report is stored, and a stored key holds no NUL."""
    return name.replace("\x00", "\\x00")


def _split(cell: str) -> list[str]:
    return [part.strip() for part in re.split(r"[;|]", cell) if part.strip()]


def _windows(cell: str) -> list[dict]:
    """'mon 18:00-20:00; 2 09:00-11:00' -> availability windows."""
    out = []
    for part in _split(cell):
        match = WINDOW_RE.match(part)
        if not match:
            raise RowError({"availability": [f"{part!r} is not 'day HH:MM-HH:MM' (day: mon..sun or 0..6)."]})
        day_raw, start, end = match.groups()
        day = DAYS.get(day_raw[:3].lower()) if not day_raw.isdigit() else int(day_raw)
        if day is None:
            raise RowError({"availability": [f"{day_raw!r} is not a day (mon..sun or 0..6)."]})
        out.append({"day": day, "start": start.zfill(5), "end": end.zfill(5)})
    return out


def csv_row_to_member(row: dict) -> dict:
    """One CSV row (header names = MemberIn fields; lists separated by ';') -> a MemberIn-shaped dict."""
    unknown = sorted(k for k in row if k is not None and k not in CSV_COLUMNS)
    if None in row:
        raise RowError({"_row": ["The row has more cells than the header."]})
    if unknown:
        raise RowError({_key(k): ["Unknown column."] for k in unknown})
    out: dict = {}
    for name, cell in row.items():
        cell = (cell or "").strip()
        if not cell:
            continue
        if name in CSV_LIST_COLUMNS:
            out[name] = _split(cell)
        elif name == "availability":
            out[name] = _windows(cell)
        elif name == "consents":
            out[name] = [{"purpose": p} for p in _split(cell)]
        else:
            out[name] = cell
    return out


def parse_import(body: bytes, fmt: str) -> list[tuple[int, dict | None, dict | None]]:
    """The upload -> [(row number, member-shaped dict or None, errors or None)]. A row that cannot be
    read is reported, never fatal to the others."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RowError({"file": ["The upload is not UTF-8 text."]}) from None
    rows: list[tuple[int, dict | None, dict | None]] = []
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            raise RowError({"file": ["The CSV has no header row."]})
        missing = {"first_name"} - set(reader.fieldnames)
        if missing:
            raise RowError({"file": [f"The CSV header lacks: {', '.join(sorted(missing))}."]})
        for number, raw in enumerate(reader, start=1):
            try:
                rows.append((number, csv_row_to_member(raw), None))
            except RowError as exc:
                rows.append((number, None, exc.errors))
    else:
        number = 0
        for line in text.splitlines():
            if not line.strip():
                continue
            number += 1
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                rows.append((number, None, {"_row": [f"Not JSON: {exc.msg}."]}))
                continue
            if not isinstance(value, dict):
                rows.append((number, None, {"_row": ["Each line must be a JSON object."]}))
                continue
            rows.append((number, value, None))
    return rows


def load_import_row(data: dict, site_id: str) -> dict:
    """Shape-check an import row as a registration at ``site_id`` (raises RowError naming fields)."""
    if "site_id" in data and data["site_id"] != site_id:
        raise RowError({"site_id": ["Rows are imported into the site of the upload; leave site_id out."]})
    try:
        return MemberIn().load({**data, "site_id": site_id})
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_row": exc.messages}
        raise RowError({_key(k): (v if isinstance(v, list) else [json.dumps(v)]) for k, v in messages.items()}) from None
