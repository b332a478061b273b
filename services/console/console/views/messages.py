"""Messages (issue 16): the delivery log (notifications' /v1/deliveries) with filters by channel, status,
date and member, and sending a failed delivery again (admins); the organization's wording per kind of
message, channel and language with a preview (admins; the preview is rendered by notifications, on submit
without JavaScript and as the admin types with static/messages.js); webhooks (admins: list, add, delete).
Coordinators see the log of their sites only (notifications answers so); the rest is not offered to them.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import lazy_gettext

from console.i18n import gettext as _
from console.api_client import ApiError
from console.views import api
from console.views.lookup import home_zone, local, member_name, pages, remember_member_names, sites, staff_only

blp = Blueprint("messages", __name__)

PAGE_SIZE = 25
CHANNELS = {"email": lazy_gettext("Email"), "sms": lazy_gettext("Text message"), "inapp": lazy_gettext("In the app"),
            "webhook": lazy_gettext("Webhook")}
STATUSES = {"pending": lazy_gettext("Waiting to be sent"), "held": lazy_gettext("Held for quiet hours"),
            "digest": lazy_gettext("Waiting for the daily summary"), "sending": lazy_gettext("Being sent"),
            "delivered": lazy_gettext("Delivered"), "failed": lazy_gettext("Failed"),
            "digested": lazy_gettext("Sent in the daily summary"), "cancelled": lazy_gettext("Cancelled")}
KINDS = {"match_proposed": lazy_gettext("A peer leader was proposed"),
         "match_accepted": lazy_gettext("A match was confirmed"), "match_ended": lazy_gettext("A match ended"),
         "meeting_updated": lazy_gettext("A meeting changed"), "meeting_cancelled": lazy_gettext("A meeting was cancelled"),
         "occurrence_cancelled": lazy_gettext("One meeting date was cancelled"),
         "occurrence_moved": lazy_gettext("One meeting date was moved"),
         "registration_created": lazy_gettext("Registered for a meeting"),
         "registration_promoted": lazy_gettext("A place opened up at a meeting"),
         "session_booked": lazy_gettext("A session was booked"), "session_rescheduled": lazy_gettext("A session was moved"),
         "session_cancelled": lazy_gettext("A session was cancelled"), "reminder": lazy_gettext("Reminder"),
         "risk_flagged": lazy_gettext("A risk flag was raised"), "waiting_too_long": lazy_gettext("Waiting too long"),
         "digest": lazy_gettext("Daily summary"), "sign_in": lazy_gettext("Sign-in link")}
PARTS = {"email": ("subject", "text", "html"), "sms": ("text",), "inapp": ("subject", "text")}
PART_NAMES = {"subject": lazy_gettext("Subject"), "text": lazy_gettext("Text"), "html": lazy_gettext("HTML version")}
TEMPLATE_LANGUAGES = {"en": "English", "es": "Español"}
# Sample data a preview is rendered with: every field the shipped wording uses.
SAMPLE = {"name": "Rivera", "title": "Tuesday Circle", "start": "2026-03-03T18:00:00+00:00",
          "starts_at": "2026-03-03T18:00:00+00:00", "new_start": "2026-03-04T18:00:00+00:00",
          "original_start": "2026-03-03T18:00:00+00:00", "previous_start": "2026-03-03T18:00:00+00:00",
          "expires_at": "2026-03-05T18:00:00+00:00", "reason": "schedule change", "days_waiting": 12,
          "member_id": "m-sample", "status": "registered", "waitlist_position": 2, "band": "moderate",
          "instrument": "BARC-10", "re_proposal_follows": True}


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@blp.get("/messages")
def log():
    person, away = staff_only()
    if away:
        return away
    client = api(person)
    args = request.args
    errors: dict[str, list[str]] = {}
    params: dict = {"limit": PAGE_SIZE, "offset": max(0, args.get("offset", 0, type=int) or 0)}
    if args.get("channel") in CHANNELS:
        params["channel"] = args["channel"]
    if args.get("status") in STATUSES:
        params["status"] = args["status"]
    zone = home_zone(client)
    for name, key in (("from", "created_from"), ("to", "created_to")):
        if args.get(name):
            day = _date(args[name])
            if day is None:
                errors[name] = [_("Enter a date like 2026-03-02.")]
            else:
                params[key] = datetime.combine(day + timedelta(days=1 if name == "to" else 0), time(),
                                               ZoneInfo(zone)).isoformat()
    member_id, choices = args.get("member_id"), []
    if member_id:
        params["recipient_id"] = member_id
    elif args.get("member", "").strip():
        found = client.get("intake", "/v1/members", params={"name": args["member"].strip()[:100], "limit": 10})
        choices = found.get("items", [])
        if len(choices) == 1:
            member_id = params["recipient_id"] = choices[0]["id"]
            choices = []
        elif not choices:
            errors["member"] = [_("No member's name starts with this. Check the spelling.")]
    result = {"items": [], "total": 0}
    if not errors and not choices:
        result = client.get("notifications", "/v1/deliveries", params=params)
    site_list = sites(client)
    remember_member_names(client, [i["recipient_id"] for i in result["items"] if i.get("recipient_kind") == "member"]
                          + [member_id] * bool(member_id))   # every name on the page in one call
    rows = []
    for item in result["items"]:
        site = site_list.get(item.get("site_id") or "") or {}
        name = member_name(client, item["recipient_id"]) if item.get("recipient_kind") == "member" else None
        rows.append(dict(item, name=name, when=local(item.get("created_at"), site.get("time_zone") or zone),
                         kind_words=KINDS.get(item.get("template"), item.get("template")),
                         channel_words=CHANNELS.get(item.get("channel"), item.get("channel")),
                         status_words=STATUSES.get(item.get("status"), item.get("status"))))
    filters = {k: v for k, v in args.items() if k != "offset" and v}
    return render_template("messages/log.html", rows=rows, total=result["total"], errors=errors, args=args,
                           choices=choices, zone=zone, channels=CHANNELS, statuses=STATUSES, filters=filters,
                           member_filter_name=member_name(client, member_id) if member_id else None,
                           pager=pages(result["total"], params["offset"], PAGE_SIZE), can_retry=person.role == "admin")


@blp.post("/messages/<delivery_id>/retry")
def retry(delivery_id):
    person, away = staff_only(admin=True)
    if away:
        return away
    try:
        api(person).post("notifications", f"/v1/deliveries/{delivery_id}/retry")
        flash(_("The message will be sent again in a moment."), "info")
    except ApiError as problem:
        if problem.status == 404:
            abort(404)
        flash(_("Only a failed message can be sent again. It may have been sent already."), "info")
    return redirect(url_for("messages.log", status="failed"))


def _template_choice():
    kind = request.values.get("kind", "match_proposed")
    channel = request.values.get("channel", "email")
    language = request.values.get("language", "en")
    if kind not in KINDS or kind == "sign_in" or channel not in PARTS or language not in TEMPLATE_LANGUAGES:
        abort(404)
    return kind, channel, language


def _preview(client, kind, channel, language, draft: dict) -> tuple[dict | None, dict]:
    try:
        return client.post("notifications", f"/v1/templates/{kind}/{channel}/{language}/preview",
                           json={"data": SAMPLE, "name": "Alex", "time_zone": "America/Chicago", "parts": draft}), {}
    except ApiError as problem:
        return None, problem.field_errors() or {"text": [problem.detail or problem.title]}


@blp.route("/messages/wording", methods=["GET", "POST"])
def wording():
    person, away = staff_only(admin=True)
    if away:
        return away
    client = api(person)
    kind, channel, language = _template_choice()
    saved = next((t["parts"] for t in client.get("notifications", "/v1/templates")
                  if (t["kind"], t["channel"], t["language"]) == (kind, channel, language)), {})
    draft = {part: request.form.get(part, "") for part in PARTS[channel]} if request.method == "POST" else dict(saved)
    errors: dict = {}
    action = request.form.get("action")
    if action == "save":
        parts = {p: v for p, v in draft.items() if v.strip()}
        try:
            if parts:
                client.send("PUT", "notifications", f"/v1/templates/{kind}/{channel}/{language}", json=parts)
            elif saved:
                client.send("DELETE", "notifications", f"/v1/templates/{kind}/{channel}/{language}")
            flash(_("Saved. New messages use this wording.") if parts else _("Saved. New messages use the standard wording."), "info")
            return redirect(url_for("messages.wording", kind=kind, channel=channel, language=language))
        except ApiError as problem:
            errors = problem.field_errors()
    preview, preview_errors = _preview(client, kind, channel, language, {p: v for p, v in draft.items() if v.strip()})
    errors = errors or preview_errors
    return render_template("messages/wording.html", kind=kind, channel=channel, language=language, kinds=KINDS,
                           channels={c: CHANNELS[c] for c in PARTS}, languages=TEMPLATE_LANGUAGES,
                           parts=PARTS[channel], part_names=PART_NAMES, draft=draft, saved=saved, errors=errors,
                           preview=preview), 422 if errors and request.method == "POST" else 200


@blp.post("/messages/wording/preview")
def wording_preview():
    """The preview alone (JSON), for the page's script as the admin types. Changes nothing."""
    person, away = staff_only(admin=True)
    if away:
        return away
    kind, channel, language = _template_choice()
    draft = {p: request.form.get(p, "") for p in PARTS[channel] if request.form.get(p, "").strip()}
    preview, errors = _preview(api(person), kind, channel, language, draft)
    return jsonify(preview=preview, errors=errors)


@blp.route("/messages/webhooks", methods=["GET", "POST"])
def webhooks():
    person, away = staff_only(admin=True)
    if away:
        return away
    client = api(person)
    errors, form, created = {}, {}, None
    if request.method == "POST":
        form = {"url": request.form.get("url", "").strip(), "description": request.form.get("description", "").strip()}
        body = {"url": form["url"], **({"description": form["description"]} if form["description"] else {})}
        try:
            created = client.post("notifications", "/v1/webhooks", json=body)
        except ApiError as problem:
            errors = problem.field_errors() or {"url": [problem.detail or problem.title]}
    hooks = client.get("notifications", "/v1/webhooks")
    for hook in hooks:
        hook["added"] = local(hook.get("created_at"), home_zone(client))
    status = 422 if errors else 200
    return render_template("messages/webhooks.html", hooks=hooks, errors=errors, form=form, created=created), status


@blp.post("/messages/webhooks/<webhook_id>/delete")
def delete_webhook(webhook_id):
    person, away = staff_only(admin=True)
    if away:
        return away
    try:
        api(person).send("DELETE", "notifications", f"/v1/webhooks/{webhook_id}")
    except ApiError as problem:
        if problem.status != 404:
            raise
    flash(_("The webhook was removed. Nothing more is sent to it."), "info")
    return redirect(url_for("messages.webhooks"))
