"""Bodies of organizations, sites and staff (with staff invitations)."""
from __future__ import annotations

from marshmallow import Schema, fields, pre_dump, validate

from intake.model import STAFF_ROLES, STAFF_STATUSES
from intake.model import self_service as self_service_of
from intake.schemas.common import (NAME, Str, StrictSchema, channels_field, email_field, language_field, phone_field,
                                   time_zone_field)


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
