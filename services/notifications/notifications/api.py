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
from markupsafe import escape
from marshmallow import ValidationError

from shared.errors import Invalid
from shared.web import Blueprint, current_principal, public, require_organization, require_role
from shared.web.pages import etag_header, etag_of, page, page_schema, documents_if_match, require_if_match

from notifications import schemas
from notifications.access import ADMINS, CHANGERS_OF_PREFERENCES, MEMBER, READERS_OF_THE_LOG
from notifications.handlers import (delivery_log, inbox, members, preferences, template_overrides, unsubscribe,
                                    webhooks)
from notifications.repository import Repository

blp = Blueprint("notifications", __name__, url_prefix="/v1", description="The right message, on the right channel, at the right time, once.")


def _repo() -> Repository:
    return current_app.extensions["notifications.repository"]


def _settings():
    return current_app.extensions["notifications.settings"]


@blp.route("/people/<person_id>/preferences")
class Preferences(MethodView):
    @blp.response(200, schemas.PreferencesOut)
    def get(self, person_id):
        """A person's channel choices, quiet hours and digest choice (and where messages go now)."""
        org = require_organization()
        view = preferences.read(_repo().reader(), current_principal(), org, person_id)
        return view, 200, etag_header({"_id": person_id, "version": view["version"]})

    @documents_if_match(blp)
    @blp.arguments(schemas.PreferencesIn)
    @blp.response(200, schemas.PreferencesOut)
    def put(self, body, person_id):
        """Replace a person's preferences (send the ETag you read in If-Match)."""
        org = require_organization()
        principal = require_role(*CHANGERS_OF_PREFERENCES)
        version = preferences.version(_repo().reader(), principal, org, person_id)
        require_if_match(etag_of({"_id": person_id, "version": version}))
        view = _repo().transaction(lambda uow: preferences.save(uow, principal, org, person_id, body, version))
        return view, 200, etag_header({"_id": person_id, "version": view["version"]})


@blp.route("/people/<person_id>/inbox")
class Inbox(MethodView):
    @blp.arguments(schemas.InboxQuery, location="query")
    @blp.response(200, page_schema(schemas.InboxMessageOut))
    def get(self, query, person_id):
        """The person's in-app messages, newest first."""
        org = require_organization()
        items, total = inbox.messages(_repo().reader(), current_principal(), org, person_id, query)
        return page(items, total, query)


@blp.route("/people/<person_id>/inbox/<message_id>/read")
class InboxRead(MethodView):
    @blp.response(200, schemas.InboxMessageOut)
    def post(self, person_id, message_id):
        """Mark an in-app message read (idempotent)."""
        org = require_organization()
        principal = current_principal()
        return _repo().transaction(lambda uow: inbox.mark_read(uow, principal, org, person_id, message_id))


@blp.route("/me/export")
class MyExport(MethodView):
    @blp.response(200, schemas.MyExportOut)
    def get(self):
        """Everything notifications holds about the member (right of access), as JSON. Member tokens only.
        A member reads their inbox and preferences at /v1/people/{their member id}/inbox and /preferences."""
        require_organization()
        return members.export(_repo().reader(), require_role(*MEMBER))


@blp.route("/deliveries")
class Deliveries(MethodView):
    @blp.arguments(schemas.DeliveryQuery, location="query")
    @blp.response(200, page_schema(schemas.DeliveryOut))
    def get(self, query):
        """The delivery log: what went to whom (by id), when, on which channel, with which outcome."""
        org = require_organization()
        principal = require_role(*READERS_OF_THE_LOG)
        items, total = delivery_log.deliveries(_repo().reader(), principal, org, query)
        return page(items, total, query)


@blp.route("/deliveries/<delivery_id>")
class DeliveryOne(MethodView):
    @blp.response(200, schemas.DeliveryOut)
    def get(self, delivery_id):
        org = require_organization()
        principal = require_role(*READERS_OF_THE_LOG)
        return delivery_log.delivery(_repo().reader(), principal, org, delivery_id)


@blp.route("/deliveries/<delivery_id>/retry")
class DeliveryRetry(MethodView):
    @blp.response(200, schemas.DeliveryOut)
    def post(self, delivery_id):
        """Send a failed delivery again, from its first try (for example after a webhook endpoint was fixed).
        Exactly-once still holds: it is the same delivery, not a new one."""
        org = require_organization()
        require_role(*ADMINS)
        return _repo().transaction(lambda uow: delivery_log.retry(uow, org, delivery_id))


@blp.route("/templates/<kind>/<channel>/<language>/preview")
class TemplatePreview(MethodView):
    @blp.arguments(schemas.PreviewIn)
    @blp.response(200, schemas.PreviewOut)
    def post(self, body, kind, channel, language):
        """Render a message with the organization's overrides (or the shipped wording) for sample data."""
        org = require_organization()
        require_role("admin")
        path = _template_path(kind, channel, language)
        return template_overrides.preview(_repo().reader(), org, path["kind"], path["channel"], path["language"], body)


@blp.route("/sites/<site_id>/coordinators")
class SiteCoordinators(MethodView):
    @blp.response(200, schemas.SiteCoordinatorOut(many=True))
    def get(self, site_id):
        """Who is told about the site's risk flags and long waits (from intake's CoordinatorAssigned;
        addresses from the contact directory). Empty means nobody would be told. A site that is not the
        organization's (or that intake never announced) answers 404, as on every other route."""
        org = require_organization()
        principal = require_role(*READERS_OF_THE_LOG)
        return preferences.site_coordinators(_repo().reader(), principal, org, site_id)


@blp.route("/webhooks")
class Webhooks(MethodView):
    @blp.response(200, schemas.WebhookOut(many=True))
    def get(self):
        """The organization's webhook endpoints."""
        org = require_organization()
        require_role(*ADMINS)
        return webhooks.webhooks(_repo().reader(), org)

    @blp.arguments(schemas.WebhookIn)
    @blp.response(201, schemas.WebhookCreated)
    def post(self, body):
        """Add an endpoint. Each POST carries X-RecoveryNet-Timestamp and X-RecoveryNet-Signature:
        "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body). Failing endpoints are retried."""
        org = require_organization()
        require_role("admin")  # only organization admins change webhooks
        return _repo().transaction(lambda uow: webhooks.add(uow, org, body))


@blp.route("/webhooks/<webhook_id>")
class WebhookOne(MethodView):
    @blp.response(200, schemas.WebhookOut)
    def get(self, webhook_id):
        org = require_organization()
        require_role(*ADMINS)
        return webhooks.webhook(_repo().reader(), org, webhook_id)

    @blp.response(204)
    def delete(self, webhook_id):
        org = require_organization()
        require_role("admin")
        _repo().transaction(lambda uow: webhooks.delete(uow, org, webhook_id))


@blp.route("/templates")
class Templates(MethodView):
    @blp.response(200, schemas.TemplateOut(many=True))
    def get(self):
        """The organization's template overrides (shipped templates apply where there is none)."""
        org = require_organization()
        require_role(*ADMINS)
        return template_overrides.overrides(_repo().reader(), org)


def _template_path(kind, channel, language) -> dict:
    try:
        return schemas.TemplatePath().load({"kind": kind, "channel": channel, "language": language})
    except ValidationError as exc:
        raise Invalid(exc.messages) from None


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
        return _repo().transaction(lambda uow: template_overrides.save(uow, org, path["kind"], path["channel"],
                                                                       path["language"], body))

    @blp.response(204)
    def delete(self, kind, channel, language):
        org = require_organization()
        require_role("admin")
        path = _template_path(kind, channel, language)
        _repo().transaction(lambda uow: template_overrides.delete(uow, org, path["kind"], path["channel"],
                                                                  path["language"]))


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
    if apply:
        return _repo().transaction(lambda uow: unsubscribe.apply(uow, _settings(), token))
    return unsubscribe.request(_repo().reader(), _settings(), token)


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
