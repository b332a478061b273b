"""HTTP edge of the notifications service: Blueprint + MethodView; validates, calls a handler, answers.

  /v1/people/{person_id}/preferences           GET, PUT (If-Match)   channel choices, quiet hours, digest
  /v1/people/{person_id}/inbox                 GET                   the in-app inbox
  /v1/people/{person_id}/inbox/{id}/read       POST                  mark a message read
  /v1/deliveries, /v1/deliveries/{id}          GET                   the delivery log of the organization
  /v1/deliveries/{id}/retry                    POST                  send a failed delivery again (admin)
  /v1/sites/{site_id}/coordinators             GET                   who hears of the site's risk flags
  /v1/webhooks, /v1/webhooks/{id}              GET, POST, DELETE     the organization's endpoints (admin)
  /v1/templates, /v1/templates/{kind}/{channel}/{language}   GET, PUT, DELETE   wording overrides (admin)
  /v1/templates/{kind}/{channel}/{language}/preview          POST               render with sample data
  /v1/unsubscribe?token=...                    GET, POST (public)    the signed link in every email
"""
from __future__ import annotations

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from markupsafe import escape
from marshmallow import ValidationError

from shared.audit import audit_entry
from shared.mongo import utcnow
from shared.web import current_principal, public, require_organization, require_role
from shared.web.pages import etag_of, page, page_schema, require_if_match

from notifications import handlers, model, schemas, templates
from notifications.repository import Repository

blp = Blueprint("notifications", __name__, url_prefix="/v1", description="The right message, on the right channel, at the right time, once.")

ADMINS = ("admin", "service")


def _repo() -> Repository:
    return current_app.extensions["notifications.repository"]


def _settings():
    return current_app.extensions["notifications.settings"]


def _person_in_reach(org: str, person_id: str) -> dict | None:
    """The person's contact, if the caller may see them; 404 otherwise (as if they did not exist)."""
    principal = current_principal()
    contact = _repo().get_contact(org, person_id)
    if contact is None:  # not a person of the caller's organization (nor of anyone's, as far as it can tell)
        abort(404, message="No such person.")
    if principal.is_admin:
        return contact
    if principal.role == "leader" and principal.leader_id == person_id:
        return contact
    if principal.role == "coordinator" and contact is not None and \
            any(principal.can_access_site(s) for s in contact.get("site_ids") or []):
        return contact
    abort(404, message="No such person.")


def _audit_read(org: str, person_id: str, contact: dict | None, resource_type: str) -> None:
    """Reads of a member's records go to the audit log (ids only)."""
    if contact is not None and contact.get("kind") == "member":
        _repo().audit(audit_entry(current_principal(), "read", resource_type, person_id, org))


def _preferences_view(org: str, person_id: str, contact: dict | None, prefs: dict | None) -> dict:
    prefs = prefs or {}
    consents = _repo().get_consents(org, person_id) if contact and contact.get("kind") == "member" else []
    kind = (contact or {}).get("kind", "member")
    effective = model.channels_for(contact, kind, consents, prefs, utcnow()) if contact else []
    return {"person_id": person_id, "channels": {k: v for k, v in (prefs.get("channels") or {}).items() if v is not None},
            "quiet_hours": prefs.get("quiet_hours"), "digest": bool(prefs.get("digest")),
            "time_zone": (contact or {}).get("time_zone"), "effective_channels": effective,
            "version": prefs.get("version", 0)}


def _etag(person_id: str, prefs: dict | None) -> str:
    return etag_of({"_id": person_id, "version": (prefs or {}).get("version", 0)})


@blp.route("/people/<person_id>/preferences")
class Preferences(MethodView):
    @blp.response(200, schemas.PreferencesOut)
    def get(self, person_id):
        """A person's channel choices, quiet hours and digest choice (and where messages go now)."""
        org = require_organization()
        contact = _person_in_reach(org, person_id)
        _audit_read(org, person_id, contact, "notification_preferences")
        prefs = _repo().get_preferences(org, person_id)
        response = _preferences_view(org, person_id, contact, prefs)
        return response, 200, {"ETag": f'"{_etag(person_id, prefs)}"'}

    @blp.arguments(schemas.PreferencesIn)
    @blp.response(200, schemas.PreferencesOut)
    def put(self, body, person_id):
        """Replace a person's preferences (send the ETag you read in If-Match)."""
        org = require_organization()
        require_role("admin", "service", "coordinator", "leader")
        contact = _person_in_reach(org, person_id)
        current = _repo().get_preferences(org, person_id)
        require_if_match(_etag(person_id, current))
        body["channels"] = {k: v for k, v in (body.get("channels") or {}).items() if v is not None}
        saved = handlers.save_preferences(_repo(), current_principal(), org, person_id, body,
                                          (current or {}).get("version", 0))
        if saved is None:
            abort(412, message="The preferences changed since you read them; read them again and retry.")
        return _preferences_view(org, person_id, contact, saved), 200, {"ETag": f'"{_etag(person_id, saved)}"'}


@blp.route("/people/<person_id>/inbox")
class Inbox(MethodView):
    @blp.arguments(schemas.InboxQuery, location="query")
    @blp.response(200, page_schema(schemas.InboxMessageOut))
    def get(self, query, person_id):
        """The person's in-app messages, newest first."""
        org = require_organization()
        _audit_read(org, person_id, _person_in_reach(org, person_id), "inapp_inbox")
        items, total = _repo().list_inbox(org, person_id, query["unread_only"], query["offset"], query["limit"])
        return page(items, total, query)


@blp.route("/people/<person_id>/inbox/<message_id>/read")
class InboxRead(MethodView):
    @blp.response(200, schemas.InboxMessageOut)
    def post(self, person_id, message_id):
        """Mark an in-app message read (idempotent)."""
        org = require_organization()
        _person_in_reach(org, person_id)
        doc = _repo().mark_read(org, person_id, message_id)
        if doc is None:
            abort(404, message="No such message.")
        return doc


@blp.route("/deliveries")
class Deliveries(MethodView):
    @blp.arguments(schemas.DeliveryQuery, location="query")
    @blp.response(200, page_schema(schemas.DeliveryOut))
    def get(self, query):
        """The delivery log: what went to whom (by id), when, on which channel, with which outcome."""
        org = require_organization()
        principal = require_role("admin", "service", "coordinator")
        filters = {k: query.get(k) for k in ("recipient_id", "channel", "status", "source_event_id", "site_id")}
        sites = principal.site_filter()
        if sites is not None:
            if filters["site_id"] is not None and filters["site_id"] not in sites:
                return page([], 0, query)
            if filters["site_id"] is None:
                filters["site_id"] = {"$in": sites}
        items, total = _repo().list_deliveries(org, filters, query["offset"], query["limit"])
        return page(items, total, query)


@blp.route("/deliveries/<delivery_id>")
class DeliveryOne(MethodView):
    @blp.response(200, schemas.DeliveryOut)
    def get(self, delivery_id):
        org = require_organization()
        principal = require_role("admin", "service", "coordinator")
        doc = _repo().get_delivery(org, delivery_id)
        if doc is None or (not principal.is_admin and not principal.can_access_site(doc.get("site_id"))):
            abort(404, message="No such delivery.")
        return doc


@blp.route("/deliveries/<delivery_id>/retry")
class DeliveryRetry(MethodView):
    @blp.response(200, schemas.DeliveryOut)
    def post(self, delivery_id):
        """Send a failed delivery again, from its first try (for example after a webhook endpoint was fixed).
        Exactly-once still holds: it is the same delivery, not a new one."""
        org = require_organization()
        require_role(*ADMINS)
        doc = _repo().retry_failed(org, delivery_id)
        if doc is None:
            if _repo().get_delivery(org, delivery_id) is None:
                abort(404, message="No such delivery.")
            abort(409, message="Only a failed delivery (with a recipient) can be retried.")
        return doc


@blp.route("/templates/<kind>/<channel>/<language>/preview")
class TemplatePreview(MethodView):
    @blp.arguments(schemas.PreviewIn)
    @blp.response(200, schemas.PreviewOut)
    def post(self, body, kind, channel, language):
        """Render a message with the organization's overrides (or the shipped wording) for sample data."""
        org = require_organization()
        require_role("admin")
        path = _template_path(kind, channel, language)
        try:
            return handlers.preview(_repo(), org, path["kind"], path["channel"], path["language"], body)
        except templates.TemplateProblem as exc:
            abort(422, message="The template does not render with this data.", errors={"data": [str(exc)]})


@blp.route("/sites/<site_id>/coordinators")
class SiteCoordinators(MethodView):
    @blp.response(200, schemas.SiteCoordinatorOut(many=True))
    def get(self, site_id):
        """Who is told about the site's risk flags and long waits (from intake's CoordinatorAssigned;
        addresses from the contact directory). Empty means nobody would be told."""
        org = require_organization()
        principal = require_role("admin", "service", "coordinator")
        if not principal.can_access_site(site_id):
            abort(404, message="No such site.")
        return _repo().coordinator_directory(org, site_id)


@blp.route("/webhooks")
class Webhooks(MethodView):
    @blp.response(200, schemas.WebhookOut(many=True))
    def get(self):
        """The organization's webhook endpoints."""
        org = require_organization()
        require_role(*ADMINS)
        return _repo().list_webhooks(org)

    @blp.arguments(schemas.WebhookIn)
    @blp.response(201, schemas.WebhookCreated)
    def post(self, body):
        """Add an endpoint. Each POST carries X-RecoveryNet-Timestamp and X-RecoveryNet-Signature:
        "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body). Failing endpoints are retried."""
        org = require_organization()
        require_role("admin")  # only organization admins change webhooks
        return handlers.add_webhook(_repo(), org, body)


@blp.route("/webhooks/<webhook_id>")
class WebhookOne(MethodView):
    @blp.response(200, schemas.WebhookOut)
    def get(self, webhook_id):
        org = require_organization()
        require_role(*ADMINS)
        doc = _repo().get_webhook(org, webhook_id)
        if doc is None:
            abort(404, message="No such webhook.")
        return doc

    @blp.response(204)
    def delete(self, webhook_id):
        org = require_organization()
        require_role("admin")
        if not _repo().delete_webhook(org, webhook_id):
            abort(404, message="No such webhook.")


@blp.route("/templates")
class Templates(MethodView):
    @blp.response(200, schemas.TemplateOut(many=True))
    def get(self):
        """The organization's template overrides (shipped templates apply where there is none)."""
        org = require_organization()
        require_role(*ADMINS)
        return _repo().list_templates(org)


def _template_path(kind, channel, language) -> dict:
    try:
        return schemas.TemplatePath().load({"kind": kind, "channel": channel, "language": language})
    except ValidationError as exc:
        abort(422, message="The template path is not valid.", errors=exc.messages)


@blp.route("/templates/<kind>/<channel>/<language>")
class TemplateOne(MethodView):
    @blp.arguments(schemas.TemplateIn)
    @blp.response(200, schemas.TemplateOut)
    def put(self, body, kind, channel, language):
        """Override the wording of one kind of message on one channel in one language (Jinja2, sandboxed).
        Context: name, role, data (the event's data), local(time); digest also items."""
        org = require_organization()
        require_role("admin")
        path = _template_path(kind, channel, language)
        if not body:
            abort(422, message="Give at least one part.", errors={"text": ["Missing data for required field."]})
        try:
            return handlers.save_template(_repo(), org, path["kind"], path["channel"], path["language"], body)
        except templates.TemplateProblem as exc:
            field, _, detail = str(exc).partition(": ")
            abort(422, message="The template does not compile.", errors={field: [detail or str(exc)]})

    @blp.response(204)
    def delete(self, kind, channel, language):
        org = require_organization()
        require_role("admin")
        path = _template_path(kind, channel, language)
        if not _repo().delete_template(org, path["kind"], path["channel"], path["language"].lower()):
            abort(404, message="No such template override.")


UNSUBSCRIBED_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Unsubscribed</title></head>
<body style="font-family: sans-serif"><h1>You are unsubscribed</h1>
<p>You will no longer receive {channel} messages from Recovery Network. Your coordinator can turn them back on.</p>
</body></html>"""


@public
@blp.route("/unsubscribe")
class Unsubscribe(MethodView):
    @blp.arguments(schemas.UnsubscribeQuery, location="query")
    @blp.response(200, content_type="text/html")
    def get(self, query):
        """The signed link in every email: turns that channel off for that person (no token needed)."""
        return self._apply(query["token"])

    @blp.arguments(schemas.UnsubscribeQuery, location="query")
    @blp.response(200, content_type="text/html")
    def post(self, query):
        """One-click unsubscribe (RFC 8058 List-Unsubscribe-Post)."""
        return self._apply(query["token"])

    @staticmethod
    def _apply(token: str) -> Response:
        try:
            claims = handlers.unsubscribe(_settings(), _repo(), token)
        except model.BadToken:
            abort(400, message="This unsubscribe link is not valid.", errors={"token": ["Not a valid unsubscribe token."]})
        return Response(UNSUBSCRIBED_PAGE.format(channel=escape(claims["channel"])), 200, mimetype="text/html")
