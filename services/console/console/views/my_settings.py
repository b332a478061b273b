"""The member's portal, continued (issue 17, area 6): their messages and how they want to hear from us
(``/my/messages``: channels, quiet hours, language), their consents with what each means
(``/my/consents``), and their information (``/my/information``: a readable page built from the four
services' exports, and ``/my/information.json``). Sign out everywhere is the footer's button.
"""
from __future__ import annotations

import json

from flask import Blueprint, Response, flash, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext

from console.api_client import ApiError
from console.i18n import LANGUAGES, gettext as _
from console.views import api
from console.views.matching_words import when
from console.views.my import member_only, profile, zone_of

blp = Blueprint("my_settings", __name__, url_prefix="/my")

CHANNELS = {"inapp": lazy_gettext("Messages here, in the app"), "email": lazy_gettext("Email"),
            "sms": lazy_gettext("Text messages (SMS)")}
# What each consent means, in one plain sentence (the purposes a member may give themselves).
CONSENTS = {
    "matching": lazy_gettext("We may use what you told us to find a peer leader who fits you."),
    "share:leader": lazy_gettext("Your peer leader may see your email and phone number, so they can reach you."),
    "notify:email": lazy_gettext("We may send you messages by email."),
    "notify:sms": lazy_gettext("We may send you text messages."),
    "notify:inapp": lazy_gettext("We may leave you messages here, in the app."),
}
EXPORTS = ("intake", "matching", "scheduling", "notifications")


@blp.get("/messages")
def messages():
    person, refused = member_only()
    if refused:
        return refused
    client = api(person)
    inbox = client.get("notifications", f"/v1/people/{person.person_id}/inbox", params={"limit": 20, "offset": 0}) or {}
    preferences = client.get("notifications", f"/v1/people/{person.person_id}/preferences") or {}
    me = profile(client)
    zone = zone_of(me)
    return render_template("my/messages.html", zone=preferences.get("time_zone") or zone, channels=CHANNELS,
                           inbox=[dict(m, when=when(m.get("created_at"), zone)) for m in inbox.get("items", [])],
                           on=_channels_on(preferences), quiet=preferences.get("quiet_hours") or {},
                           preferred=(me.get("preferred_language") or "").split("-")[0], languages=LANGUAGES,
                           errors=session.pop("my_errors", {}))


def _channels_on(preferences: dict) -> set[str]:
    chosen = preferences.get("channels") or {}
    effective = set(preferences.get("effective_channels") or [])
    return {c for c in CHANNELS if chosen.get(c, c in effective)}


@blp.post("/messages/preferences")
def save_preferences():
    person, refused = member_only()
    if refused:
        return refused
    client = api(person)
    path = f"/v1/people/{person.person_id}/preferences"
    current, etag = client.get_with_etag("notifications", path)
    start, end = request.form.get("quiet_start", "").strip(), request.form.get("quiet_end", "").strip()
    if bool(start) != bool(end):
        session["my_errors"] = {"quiet_hours": [_("Give both times, or leave both empty.")]}
        return redirect(url_for("my_settings.messages") + "#how", 303)
    body = {"channels": {c: c in request.form.getlist("channels") for c in CHANNELS},
            "quiet_hours": {"start": start, "end": end} if start else None,
            "digest": bool((current or {}).get("digest"))}
    try:
        client.send("PUT", "notifications", path, json=body, if_match=etag)
        flash(_("Saved. We will reach you the way you chose."), "info")
    except ApiError as problem:
        errors = problem.field_errors()
        session["my_errors"] = {("quiet_hours" if k.startswith("quiet") else k): v for k, v in errors.items()} or {
            "channels": [problem.detail or problem.title]}
    return redirect(url_for("my_settings.messages") + "#how", 303)


@blp.post("/messages/read/<message_id>")
def mark_read(message_id):
    person, refused = member_only()
    if refused:
        return refused
    try:
        api(person).post("notifications", f"/v1/people/{person.person_id}/inbox/{message_id}/read")
    except ApiError:
        pass   # already read or gone: the list shows it as it is
    return redirect(url_for("my_settings.messages"), 303)


@blp.post("/language")
def language():
    person, refused = member_only()
    if refused:
        return refused
    chosen = request.form.get("preferred_language", "")
    try:
        api(person).send("PATCH", "intake", "/v1/me", json={"preferred_language": chosen})
    except ApiError as problem:
        session["my_errors"] = {"preferred_language": problem.field_errors().get("preferred_language")
                                or [problem.detail or problem.title]}
        return redirect(url_for("my_settings.messages") + "#language-choice", 303)
    if chosen in LANGUAGES:
        session["lang"] = chosen
    flash(_("Your language is saved."), "info")
    return redirect(url_for("my_settings.messages") + "#language-choice", 303)


@blp.get("/consents")
def consents():
    person, refused = member_only()
    if refused:
        return refused
    client = api(person)
    given = {c["purpose"]: c for c in client.get("intake", "/v1/me/consents") or []}
    zone = zone_of(profile(client))
    rows = [{"purpose": p, "meaning": m, "given": p in given,
             "since": when(given[p].get("granted_at"), zone) if p in given else ""} for p, m in CONSENTS.items()]
    return render_template("my/consents.html", rows=rows)


@blp.post("/consents")
def give():
    person, refused = member_only()
    if refused:
        return refused
    purpose = request.form.get("purpose", "")
    if purpose in CONSENTS:
        try:
            api(person).post("intake", "/v1/me/consents", json={"purpose": purpose})
            flash(_("Thank you. Your choice is saved."), "info")
        except ApiError as problem:
            flash(problem.detail or problem.title, "info")
    return redirect(url_for("my_settings.consents"), 303)


@blp.post("/consents/withdraw")
def withdraw():
    person, refused = member_only()
    if refused:
        return refused
    purpose = request.form.get("purpose", "")
    if purpose in CONSENTS:
        try:
            api(person).send("DELETE", "intake", f"/v1/me/consents/{purpose}")
            flash(_("Your choice is saved. You can change it again at any time."), "info")
        except ApiError as problem:
            flash(problem.detail or problem.title, "info")
    return redirect(url_for("my_settings.consents"), 303)


def _exports(person) -> dict:
    client = api(person)
    return {service: client.get(service, "/v1/me/export") for service in EXPORTS}


@blp.get("/information")
def information():
    person, refused = member_only()
    if refused:
        return refused
    everything = _exports(person)
    record = (everything["intake"] or {}).get("member") or {}
    zone = record.get("time_zone") or "UTC"
    scheduling = everything["scheduling"] or {}
    notifications = everything["notifications"] or {}
    return render_template(
        "my/information.html", record=record,
        consents=[dict(c, since=when(c.get("granted_at"), zone)) for c in record.get("consents") or []],
        meanings=CONSENTS, matches=len((everything["matching"] or {}).get("matches") or []),
        sessions=len(scheduling.get("sessions") or []), registrations=len(scheduling.get("registrations") or []),
        deliveries=len(notifications.get("deliveries") or []),
        inbox=len(notifications.get("inbox") or notifications.get("inapp_messages") or []))


@blp.get("/information.json")
def information_json():
    person, refused = member_only()
    if refused:
        return refused
    body = json.dumps(_exports(person), indent=2, ensure_ascii=False, default=str)
    return Response(body, mimetype="application/json",
                    headers={"Content-Disposition": 'attachment; filename="my-information.json"'})
