"""Peer leaders (issue 16, "Leaders"): the list with load against capacity and certification warnings,
onboarding a leader, editing one, and putting one on leave or back (intake's /v1/leaders routes; the load is
the open proposals and matches at matching's /v1/matches). Staff only; coordinators see their sites' leaders
(intake decides) and may only choose their own sites (the site list intake gives them)."""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import format_date

from console.i18n import gettext as _
from console import sessions
from console.api_client import ApiError
from console.views import api, sign_in_first, weekly
from console.views.matching_words import (Directory, all_pages, certification_warnings, display_name,
                                          status_words)

blp = Blueprint("leaders", __name__, url_prefix="/leaders")

LANGUAGE_CHOICES = ("en", "es", "fr", "pt", "zh", "vi", "ar", "ru", "ase")
PATHWAY_CHOICES = ("twelve_step", "smart", "medication_assisted", "faith_based", "harm_reduction",
                   "tapering_prescribed_medication", "other")
# API field -> the form field its error is shown next to
ERROR_FIELDS = {"certifications": "certification_name", "availability": "availability", "site_ids": "site_ids"}


def _staff():
    person = sessions.current_person()
    if person is None:
        return None
    if not person.is_staff:
        abort(404)
    return person


@blp.get("")
def index():
    person = _staff()
    if person is None:
        return sign_in_first()
    client = api(person)
    names = Directory(client)
    leaders = sorted(names.leaders().values(), key=lambda l: (l.get("status") != "active", display_name(l) or ""))
    load = Counter()
    for status in ("proposed", "active"):
        for match in all_pages(client, "matching", "/v1/matches", {"status": status}):
            load[match["leader_id"]] += 1
    today = date.today()
    rows = [dict(leader, name=display_name(leader), load=load[leader["id"]], status_words=status_words(leader.get("status")),
                 sites=[names.site_name(s) for s in leader.get("site_ids") or []],
                 warnings=certification_warnings(leader, today), stretch=stretch_words(leader)) for leader in leaders]
    return render_template("leaders/list.html", leaders=rows)


@blp.route("/new", methods=["GET", "POST"])
def new():
    person = _staff()
    if person is None:
        return sign_in_first()
    client = api(person)
    sites = Directory(client).sites()
    form, errors = (request.form, {}) if request.method == "POST" else ({}, {})
    if request.method == "POST":
        body, errors = _from_form(request.form, sites)
        if not errors:
            try:
                made = client.post("intake", "/v1/leaders", json=body)
            except ApiError as error:
                errors = _api_errors(error)
            else:
                flash(_("%(name)s is onboarded as a peer leader.", name=display_name(made)))
                return redirect(url_for("leaders.index"))
    return render_template("leaders/form.html", form=_view(form), errors=errors, sites=sites, editing=None,
                           **_choices()), (400 if errors else 200)


@blp.route("/<leader_id>/edit", methods=["GET", "POST"])
def edit(leader_id):
    person = _staff()
    if person is None:
        return sign_in_first()
    client = api(person)
    sites = Directory(client).sites()
    try:
        leader, etag = client.get_with_etag("intake", f"/v1/leaders/{leader_id}")
    except ApiError as error:
        if error.status == 404:
            abort(404)
        raise
    errors = {}
    if request.method == "POST":
        body, errors = _from_form(request.form, sites, before=leader)
        if not errors:
            try:
                client.send("PATCH", "intake", f"/v1/leaders/{leader_id}", json=body,
                            if_match=request.form.get("etag") or etag)
            except ApiError as error:
                errors = _api_errors(error)
            else:
                flash(_("%(name)s's details are saved.", name=display_name(leader)))
                return redirect(url_for("leaders.index"))
        form = _view(request.form)
    else:
        form = _view_of(leader)
    return render_template("leaders/form.html", form=form, errors=errors, sites=sites, editing=leader, etag=etag,
                           stretch=stretch_words(leader), **_choices()), (400 if errors else 200)


@blp.post("/<leader_id>/status")
def change_status(leader_id):
    person = _staff()
    if person is None:
        return sign_in_first()
    to_status = request.form.get("to_status")
    if to_status not in ("active", "on_leave"):
        abort(400)
    client = api(person)
    try:
        leader = client.post("intake", f"/v1/leaders/{leader_id}/status",
                             json={"to_status": to_status, "reason": request.form.get("reason") or None})
    except ApiError as error:
        if error.status == 404:
            abort(404)
        flash(_("That could not be done: %(why)s", why=error.detail or error.title))
    else:
        flash(_("%(name)s is on leave: no new members will be proposed to them.", name=display_name(leader))
              if to_status == "on_leave" else _("%(name)s is back from leave.", name=display_name(leader)))
    return redirect(url_for("leaders.index"))


def stretch_words(leader: dict) -> dict | None:
    """A leader's "I'm stretched" as their coordinator reads it: since when (a date in words) and their note."""
    signal = leader.get("stretched")
    if not signal:
        return None
    since = signal.get("since") or ""
    try:
        day = format_date(datetime.fromisoformat(since.replace("Z", "+00:00")).date(), "long")
    except ValueError:
        day = since[:10]
    return {"since": day, "note": signal.get("note")}


@blp.post("/<leader_id>/stretched/lift")
def lift_stretched(leader_id):
    """A coordinator lifts the pause a leader asked for (intake's DELETE /v1/leaders/{id}/stretched)."""
    person = _staff()
    if person is None:
        return sign_in_first()
    client = api(person)
    try:
        leader = client.send("DELETE", "intake", f"/v1/leaders/{leader_id}/stretched")
    except ApiError as error:
        if error.status == 404:
            abort(404)
        flash(_("That could not be done: %(why)s", why=error.detail or error.title))
    else:
        flash(_("The pause is lifted: new members can be proposed to %(name)s again.", name=display_name(leader)))
    if request.form.get("back") == "edit":
        return redirect(url_for("leaders.edit", leader_id=leader_id), 303)
    return redirect(url_for("leaders.index"), 303)


# --- the form ---------------------------------------------------------------------------------------

def _choices() -> dict:
    from console.views.matching_words import language_name, pathway_name
    return {"language_choices": [(c, language_name(c)) for c in LANGUAGE_CHOICES],
            "pathways": [(c, pathway_name(c)) for c in PATHWAY_CHOICES], **weekly.choices()}


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _view(form) -> dict:
    """What the form shows (as typed, after a refusal)."""
    get = form.get if hasattr(form, "get") else (lambda k, d=None: d)
    getlist = form.getlist if hasattr(form, "getlist") else (lambda k: [])
    return {k: get(k, "") for k in ("first_name", "last_name", "preferred_name", "email", "phone", "capacity",
                                     "gender", "lived_experience_areas", "substances", "certification_name",
                                     "certification_issuer", "certification_expires_on")} | {
        "site_ids": getlist("site_ids"), "languages": getlist("languages") or ([] if form else ["en"]),
        "pathways": getlist("pathways"), "slots": set(getlist("slots")),
        "meets_virtually": bool(get("meets_virtually")), "co_occurring": bool(get("co_occurring")),
        "capacity": get("capacity", "") or ("" if form else "3")}


def _view_of(leader: dict) -> dict:
    cert = (leader.get("certifications") or [{}])[0]
    return {"first_name": leader.get("first_name") or "", "last_name": leader.get("last_name") or "",
            "preferred_name": leader.get("preferred_name") or "", "email": leader.get("email") or "",
            "phone": leader.get("phone") or "", "capacity": str(leader.get("capacity", "")),
            "gender": leader.get("gender") or "", "site_ids": leader.get("site_ids") or [],
            "languages": leader.get("languages") or [], "pathways": leader.get("pathways") or [],
            "lived_experience_areas": ", ".join(leader.get("lived_experience_areas") or []),
            "substances": ", ".join(leader.get("substances") or []),
            "certification_name": cert.get("name") or "", "certification_issuer": cert.get("issuer") or "",
            "certification_expires_on": (cert.get("expires_on") or "")[:10], "slots": weekly.slots_of(leader.get("availability")),
            "meets_virtually": bool(leader.get("meets_virtually")),
            "co_occurring": bool(leader.get("co_occurring_mental_health_experience"))}


def _from_form(form, sites: dict, before: dict | None = None) -> tuple[dict, dict]:
    """The API body from the form, and the errors the console can name before asking."""
    errors: dict[str, list[str]] = {}
    if not form.get("first_name", "").strip():
        errors["first_name"] = [_("Enter the leader's first name.")]
    site_ids = [s for s in form.getlist("site_ids") if s in sites]
    if not site_ids:
        errors["site_ids"] = [_("Choose at least one site where the leader works.")]
    languages = [c for c in form.getlist("languages") if c in LANGUAGE_CHOICES]
    if not languages:
        errors["languages"] = [_("Choose at least one language the leader speaks.")]
    try:
        capacity = int(form.get("capacity") or 3)
        if not 0 <= capacity <= 100:
            raise ValueError
    except ValueError:
        errors["capacity"] = [_("Enter how many members the leader can support at once, a whole number from 0 to 100.")]
        capacity = 3
    body = {"first_name": form.get("first_name", "").strip(), "last_name": form.get("last_name", "").strip() or None,
            "preferred_name": form.get("preferred_name", "").strip() or None,
            "email": form.get("email", "").strip() or None, "phone": form.get("phone", "").strip() or None,
            "site_ids": site_ids, "languages": languages, "capacity": capacity,
            "gender": form.get("gender", "").strip() or None, "meets_virtually": bool(form.get("meets_virtually")),
            "co_occurring_mental_health_experience": bool(form.get("co_occurring")),
            "lived_experience_areas": _split(form.get("lived_experience_areas")),
            "substances": _split(form.get("substances")),
            "pathways": [p for p in form.getlist("pathways") if p in PATHWAY_CHOICES]}
    cert_name = form.get("certification_name", "").strip()
    if cert_name:
        cert = {"name": cert_name, "issuer": form.get("certification_issuer", "").strip() or None,
                "expires_on": form.get("certification_expires_on") or None}
        body["certifications"] = [cert] + list((before or {}).get("certifications") or [])[1:]
    elif before is not None:
        body["certifications"] = list(before.get("certifications") or [])[1:]
    slots = form.getlist("slots")
    # times set elsewhere (not one of the form's parts of the day) are kept as they are
    windows = weekly.windows_of(slots) if before is None else weekly.changed(before.get("availability"), slots)
    if windows is not None:
        body["availability"] = windows
    return body, errors


def _api_errors(error: ApiError) -> dict[str, list[str]]:
    """The API's field errors, keyed by the form field that caused them (nested ones flattened)."""
    def leaves(value) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            return [m for v in value.values() for m in leaves(v)]
        if isinstance(value, list):
            return [m for v in value for m in leaves(v)]
        return [str(value)]

    errors: dict[str, list[str]] = {}
    for name, value in (error.errors or {}).items():
        target = ERROR_FIELDS.get(name, name)
        if name == "certifications" and isinstance(value, dict):
            nested = next(iter(value.values()), {})
            if isinstance(nested, dict) and "expires_on" in nested:
                target = "certification_expires_on"
        errors.setdefault(target, []).extend(leaves(value))
    if not errors:
        errors["form"] = [error.detail or error.title]
    return errors
