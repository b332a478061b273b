"""Bodies of signing in: asking for a code, exchanging it for a token, choosing an organization, keys."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from intake.model import CHOOSE_ORGANIZATION
from intake.schemas.common import PHONE_PATTERN, Str, StrictSchema, email_field


# --- signing in ----------------------------------------------------------------------------------

SIGN_IN_ROLES = ("admin", "coordinator", "leader", "member", "operator")


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
