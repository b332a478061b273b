"""The pieces every intake body is built of: one-field rules as the OpenAPI document states them
(time zones, phones, languages, emails, channels, HH:MM), and the strict base schema."""
from __future__ import annotations

from datetime import timezone

from marshmallow import RAISE, Schema, fields, validate

from intake.model import CHANNEL_ALIASES, CHANNELS, LANGUAGE_RE


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
