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
  /v1/unsubscribe?token=...                    GET, POST (public)    the signed link in every email: GET shows
                                                                     a page, POST (its button, or RFC 8058 one-click) unsubscribes
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
from shared.web.pages import etag_of, page, page_schema, documents_if_match, require_if_match

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

    @documents_if_match(blp)
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
        addresses from the contact directory). Empty means nobody would be told. A site that is not the
        organization's (or that intake never announced) answers 404, as on every other route."""
        org = require_organization()
        principal = require_role("admin", "service", "coordinator")
        if not principal.can_access_site(site_id) or not _repo().knows_site(org, site_id):
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


# The pages behind the link in every email. Plain and self-contained: nothing is loaded from another host
# (inline style only, and the Content-Security-Policy says so), and the token is not leaked as a referrer.
_CHANNEL_WORDS = {"email": ("emails", "Stop emails"), "sms": ("text messages", "Stop text messages"),
                  "inapp": ("messages in the app", "Stop messages in the app")}
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; font-size: 1.1rem; line-height: 1.5; margin: 0; padding: 1rem; color: #1a1a1a; background: #fff; }}
main {{ max-width: 36rem; margin: 0 auto; }}
button {{ font: inherit; padding: 0.6rem 1.2rem; border: 2px solid #1a1a1a; border-radius: 0.4rem; background: #1a1a1a; color: #fff; cursor: pointer; }}
button:focus {{ outline: 3px solid #2b6cb0; outline-offset: 2px; }}
</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
}


def _unsubscribe_page(title: str, body: str) -> Response:
    """``title`` and ``body`` are HTML already (every value in them escaped by ``_what_stops``)."""
    return Response(_PAGE.format(title=title, body=body), 200, mimetype="text/html", headers=_PAGE_HEADERS)


def _what_stops(claims: dict) -> tuple[str, str, str]:
    """(what, from whom, the button's words), already escaped."""
    what, button = _CHANNEL_WORDS.get(claims["channel"], (f"{claims['channel']} messages", "Stop these messages"))
    sender = claims.get("organization_name") or "your peer support program"
    return escape(what), escape(sender), escape(button)


def _unsubscribe_claims(apply: bool, token: str) -> dict:
    try:
        if apply:
            return handlers.unsubscribe(_settings(), _repo(), token)
        return handlers.unsubscribe_request(_settings(), _repo(), token)
    except model.BadToken:
        abort(400, message="This unsubscribe link is not valid.", errors={"token": ["Not a valid unsubscribe token."]})


@public
@blp.route("/unsubscribe")
class Unsubscribe(MethodView):
    @blp.arguments(schemas.UnsubscribeQuery, location="query")
    @blp.response(200, content_type="text/html")
    def get(self, query):
        """The signed link in every email (no bearer token: the link is the credential). Opening it changes
        nothing -- mail scanners and link previews open links on their own -- it shows what would stop and a
        button that POSTs to the same URL."""
        claims = _unsubscribe_claims(False, query["token"])
        what, sender, button = _what_stops(claims)
        # No action attribute: the form posts to this very URL, token included.
        return _unsubscribe_page(f"{button}?", f"""<h1>{button}?</h1>
<p>You will no longer get {what} from {sender}, such as reminders and updates about your meetings and sessions.</p>
<p>Other ways we reach you do not change. You can ask your coordinator to turn {what} back on at any time.</p>
<form method="post">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">{button}</button>
</form>
<p>Want to keep getting {what}? You can close this page. Nothing has changed.</p>""")

    @blp.arguments(schemas.UnsubscribeQuery, location="query")
    @blp.arguments(schemas.UnsubscribeForm, location="form", required=False)
    @blp.response(200, content_type="text/html")
    def post(self, query, _form):
        """Unsubscribe: the page's button, or a mail client's one-click unsubscribe (RFC 8058: the body is
        ``List-Unsubscribe=One-Click``, form-encoded). Turns that channel off for that person; doing it
        again changes nothing more."""
        claims = _unsubscribe_claims(True, query["token"])
        what, sender, _ = _what_stops(claims)
        return _unsubscribe_page("You are unsubscribed", f"""<h1>You are unsubscribed</h1>
<p>You will no longer get {what} from {sender}.</p>
<p>Other ways we reach you do not change. If this was a mistake, your coordinator can turn {what} back on.</p>""")
