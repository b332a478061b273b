"""Marshmallow schemas of the notifications HTTP API (bodies and queries, not events)."""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates

from shared.clock import clock
from shared.web.documents import StoredDocument
from shared.web.pages import PageQuery

from notifications import model, templates


HHMM = validate.Regexp(r"^([01][0-9]|2[0-3]):[0-5][0-9]$", error="Use local time as HH:MM (00:00-23:59).")


def _hhmm(value: str) -> None:
    try:
        clock(value)
        if len(value) != 5:  # two digits each, as stored and shown
            raise ValueError(value)
    except ValueError as exc:
        raise ValidationError("Use local time as HH:MM (00:00-23:59).") from exc


class ChannelChoices(Schema):
    email = fields.Bool(allow_none=True, load_default=None)
    sms = fields.Bool(allow_none=True, load_default=None)
    inapp = fields.Bool(allow_none=True, load_default=None)


class QuietHours(Schema):
    start = fields.Str(required=True, validate=[HHMM, _hhmm], metadata={"description": "local HH:MM, e.g. 21:00"})
    end = fields.Str(required=True, validate=[HHMM, _hhmm], metadata={"description": "local HH:MM, e.g. 07:00 (may be the next day)"})


class PreferencesIn(Schema):
    channels = fields.Nested(ChannelChoices, load_default=dict,
                             metadata={"description": "true/false per channel; unset follows the person's intake choice"})
    quiet_hours = fields.Nested(QuietHours, allow_none=True, load_default=None,
                                metadata={"description": "in the person's own time zone; urgent messages ignore them"})
    digest = fields.Bool(load_default=False, metadata={"description": "low-priority messages once a day"})


class PreferencesOut(Schema):
    person_id = fields.Str(required=True)
    channels = fields.Dict(keys=fields.Str(), values=fields.Bool())
    quiet_hours = fields.Nested(QuietHours, allow_none=True)
    digest = fields.Bool()
    time_zone = fields.Str(allow_none=True, metadata={"description": "from the contact directory"})
    effective_channels = fields.List(fields.Str(), metadata={"description": "where a message would go now"})
    version = fields.Int()


class InboxQuery(PageQuery):
    unread_only = fields.Bool(load_default=False)


class InboxMessageOut(Schema):
    id = fields.Str(attribute="_id", required=True)
    person_id = fields.Str()
    title = fields.Str()
    body = fields.Str()
    language = fields.Str()
    template = fields.Str()
    priority = fields.Str()
    source_event_id = fields.Str()
    source_event_type = fields.Str()
    created_at = fields.DateTime()
    read_at = fields.DateTime(allow_none=True)


class DeliveryQuery(PageQuery):
    recipient_id = fields.Str(load_default=None)
    channel = fields.Str(load_default=None, validate=validate.OneOf(model.DELIVERY_CHANNELS))
    status = fields.Str(load_default=None, validate=validate.OneOf(model.STATUSES))
    source_event_id = fields.Str(load_default=None)
    site_id = fields.Str(load_default=None)
    created_from = fields.AwareDateTime(load_default=None, metadata={
        "description": "only deliveries created at or after this moment (ISO 8601 with its offset)"})
    created_to = fields.AwareDateTime(load_default=None, metadata={
        "description": "only deliveries created before this moment (ISO 8601 with its offset)"})


class DeliveryOut(Schema):
    id = fields.Str(attribute="_id", required=True)
    recipient_id = fields.Str()
    recipient_kind = fields.Str()
    channel = fields.Str()
    status = fields.Str()
    priority = fields.Str()
    template = fields.Str()
    attempts = fields.Int()
    takeovers = fields.Int(load_default=0, dump_default=0, metadata={
        "description": "times a worker died while sending this delivery and another took it over; only then "
                       "can the channel have received it twice (with the same Message-ID / delivery id)"})
    site_id = fields.Str(allow_none=True)
    site_name = fields.Str(allow_none=True, metadata={"description": "the site's name, when intake's site events named it"})
    source_event_id = fields.Str()
    source_event_type = fields.Str()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    next_attempt_at = fields.DateTime(allow_none=True)
    held_until = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    last_error = fields.Str(allow_none=True)


class WebhookIn(Schema):
    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=2000),
                     metadata={"format": "uri", "pattern": "^https?://"})
    event_types = fields.List(fields.Str(validate=validate.OneOf(sorted(model.NOTIFIABLE_TYPES))), load_default=list,
                              metadata={"description": "event types (e.g. org.recoverynet.matching.match.proposed.v1); empty: all"})
    secret = fields.Str(load_default=None, validate=validate.Length(min=16, max=200),
                        metadata={"description": "signing secret; generated when left out"})
    description = fields.Str(load_default=None, validate=validate.Length(max=200))
    active = fields.Bool(load_default=True)

    @validates("event_types")
    def _known(self, value, **kwargs):
        known = model.NOTIFIABLE_TYPES
        unknown = [t for t in value if t not in known]
        if unknown:
            raise ValidationError(f"Unknown event types: {', '.join(unknown)}")


class WebhookOut(Schema):
    id = fields.Str(attribute="_id", required=True)
    url = fields.Str()
    event_types = fields.List(fields.Str())
    description = fields.Str(allow_none=True)
    active = fields.Bool()
    created_at = fields.DateTime()


class WebhookCreated(WebhookOut):
    secret = fields.Str(metadata={"description": "shown once: verify X-RecoveryNet-Signature with it"})


class TemplateIn(Schema):
    """At least one part (the document says minProperties: 1); each part must compile as a Jinja2 template."""

    class Meta:
        openapi = {"minProperties": 1}

    subject = fields.Str(validate=validate.Length(min=1, max=500))
    text = fields.Str(validate=validate.Length(min=1, max=20000))
    html = fields.Str(validate=validate.Length(min=1, max=50000))


class TemplateOut(Schema):
    kind = fields.Str()
    channel = fields.Str()
    language = fields.Str()
    parts = fields.Dict(keys=fields.Str(), values=fields.Str())
    updated_at = fields.DateTime()


class TemplatePath(Schema):
    kind = fields.Str(required=True, validate=validate.OneOf(templates.KINDS))
    channel = fields.Str(required=True, validate=validate.OneOf(tuple(templates.PARTS)))
    language = fields.Str(required=True, validate=validate.Regexp(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"))


class UnsubscribeQuery(Schema):
    token = fields.Str(required=True, validate=validate.Length(min=10, max=2000))


class UnsubscribeForm(Schema):
    """The POST body (application/x-www-form-urlencoded): RFC 8058 one-click sends
    ``List-Unsubscribe=One-Click``; the confirmation page's button sends the same. An empty body is
    accepted too."""

    class Meta:
        unknown = EXCLUDE

    list_unsubscribe = fields.Str(data_key="List-Unsubscribe", load_default=None, allow_none=False,
                                  validate=validate.OneOf(["One-Click"]),
                                  metadata={"description": "One-Click (RFC 8058)"})


class SiteCoordinatorOut(Schema):
    staff_id = fields.Str(required=True)
    in_directory = fields.Bool(metadata={"description": "a ContactChanged was received for them"})
    has_email = fields.Bool()
    has_phone = fields.Bool()
    time_zone = fields.Str(allow_none=True)


class PreviewPartsIn(Schema):
    """A draft's parts: email has subject, text and html; sms text; inapp subject and text (422 naming a part
    the channel lacks). Each must compile as a Jinja2 template; an empty part is left out."""
    subject = fields.Str(validate=validate.Length(max=500))
    text = fields.Str(validate=validate.Length(max=20000))
    html = fields.Str(validate=validate.Length(max=50000))


class PreviewIn(Schema):
    data = fields.Dict(load_default=dict, metadata={"description": "the event's data, as the template sees it"})
    name = fields.Str(load_default="Alex", validate=validate.Length(max=100))
    role = fields.Str(load_default="member", validate=validate.OneOf(("member", "leader", "coordinator")))
    time_zone = fields.Str(load_default="UTC")
    meeting = fields.Dict(load_default=dict)
    items = fields.List(fields.Str(), load_default=list)
    parts = fields.Nested(PreviewPartsIn, load_default=None, allow_none=True,
                          metadata={"description": "unsaved wording to preview instead of the saved override (a draft: "
                                                   "subject, text, html as the channel has them); nothing is saved"})


class PreviewOut(Schema):
    language = fields.Str()
    subject = fields.Str()
    text = fields.Str()
    html = fields.Str()


class MyExportOut(Schema):
    service = fields.Str()
    organization_id = fields.Str()
    member_id = fields.Str()
    contact = StoredDocument(allow_none=True, metadata={"description": "the contact directory's copy of the member (from intake)"})
    preferences = fields.Nested(PreferencesOut, allow_none=True)
    consents = fields.List(StoredDocument(), metadata={"description": "the copy of the member's consents in force"})
    deliveries = fields.List(StoredDocument(), metadata={"description": "every delivery addressed to the member (the log's fields)"})
    inbox = fields.List(StoredDocument(), metadata={"description": "the member's in-app messages, with their bodies"})
