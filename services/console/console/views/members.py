"""Members (issue 16): find them (name, status, site, open risk flag) a page at a time, onboard one from a
form (with the consents given on paper or in person, recorded as such), and a member's page: profile,
consents and their history, screenings with a BARC-10 chart, the plan and its history, matches, sessions
and messages sent. The changes (edit, transfer, screening, plan, flag, erase) are in member_actions.py.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from console.i18n import gettext as _
from console import sessions
from console.api_client import ApiError
from console.views import api, sign_in_first
from console.views import members_words as words
from console.views import weekly
from console.views.lookup import sites as site_records

blp = Blueprint("members", __name__)

MEMBER_FORM_FIELDS = ("site_id", "first_name", "last_name", "preferred_name", "pronouns", "email", "phone",
                      "date_of_birth", "preferred_language", "meeting_mode", "availability", "consents", "consent_how")
MEETING_MODES = ("either", "in_person", "virtual")


def staff_only():
    """(person, None) for admins and coordinators; else (None, the answer to give)."""
    person = sessions.current_person()
    if person is None:
        return None, sign_in_first()
    if not person.is_staff:
        abort(404)
    return person, None


@blp.app_context_processor
def member_words():
    return {"mwords": words, "meeting_mode_words": meeting_mode_words, "weekly_words": weekly.in_words}


def meeting_mode_words(mode: str | None) -> str:
    return {"either": _("in person or online"), "in_person": _("in person"), "virtual": _("online")}.get(mode or "", mode or "")


@blp.get("/members")
def index():
    person, answer = staff_only()
    if answer:
        return answer
    client = api(person)
    chosen = {key: (request.args.get(key) or "").strip() for key in ("name", "status", "site_id", "flagged")}
    try:
        offset = max(0, int(request.args.get("offset", 0)))
    except ValueError:
        offset = 0
    params = {"limit": words.PAGE_SIZE, "offset": offset, "fields": list(words.LISTED_FIELDS)}
    if chosen["name"]:
        params["name"] = chosen["name"][:100]
    if chosen["status"] in ("pending_consent", "active", "paused", "discharged", "graduated"):
        params["status"] = chosen["status"]
    if chosen["site_id"]:
        params["site_id"] = chosen["site_id"][:100]
    if chosen["flagged"] in ("true", "false"):
        params["flagged"] = chosen["flagged"]
    sites, found = client.together(lambda: words.site_names(client), lambda: client.get("intake", "/v1/members", params=params))
    if chosen["site_id"] and chosen["site_id"] not in sites:   # not one of the person's sites: the filter is left out
        params.pop("site_id")
        found = client.get("intake", "/v1/members", params=params)
    total = found.get("total", 0)
    query = {k: v for k, v in chosen.items() if v}
    pages = {"previous": url_for("members.index", **query, offset=max(0, offset - words.PAGE_SIZE)) if offset else None,
             "next": url_for("members.index", **query, offset=offset + words.PAGE_SIZE)
             if offset + words.PAGE_SIZE < total else None}
    return render_template("members/list.html", members=found.get("items", []), total=total, offset=offset,
                           sites=sites, chosen=chosen, pages=pages, filtering=bool(query))


@blp.route("/members/new", methods=["GET", "POST"])
def new():
    person, answer = staff_only()
    if answer:
        return answer
    client = api(person)
    found = site_records(client)
    sites = {site_id: site["name"] for site_id, site in found.items()}
    if not sites:
        flash(_("You have no site yet. An organization administrator adds sites and gives you yours."))
        return redirect(url_for("members.index"))
    form = request.form if request.method == "POST" else {"site_id": request.args.get("site_id", "")}
    errors, general = {}, []
    if request.method == "POST":
        body, errors = _registration(form)
        if not errors:
            try:
                member = client.post("intake", "/v1/members", json=body)
            except ApiError as error:
                errors, general = words.form_errors(error, MEMBER_FORM_FIELDS)
                if error.status == 409:
                    general = [_("Someone with this email or phone is already a member. Find them in the list.")]
            else:
                flash(_("%(name)s is now a member.", name=words.known_name(member)))
                return redirect(url_for("members.show", member_id=member["id"]))
    return render_template("members/new.html", form=form, errors=errors, general=general, sites=sites,
                           consents=words.OFFERED_CONSENTS, modes=MEETING_MODES,
                           chosen_consents=request.form.getlist("consents") if request.method == "POST" else [],
                           slots=set(request.form.getlist("slots")) if request.method == "POST" else set(),
                           site_zones=[(site["name"], site.get("time_zone") or "UTC") for site in found.values()],
                           **weekly.choices())


def _registration(form) -> tuple[dict, dict]:
    """The form as intake's MemberIn, and what the console itself can say is missing."""
    errors: dict[str, list[str]] = {}
    body: dict = {"site_id": form.get("site_id", "")}
    for name in ("first_name", "last_name", "preferred_name", "pronouns", "email", "phone", "date_of_birth"):
        value = (form.get(name) or "").strip()
        if value:
            body[name] = value
    if not body.get("first_name"):
        errors["first_name"] = [_("Enter the member's first name.")]
    if not body.get("email") and not body.get("phone"):
        errors["email"] = [_("Enter an email address or a phone number (or both).")]
    language = form.get("preferred_language") or "en"
    body["languages"] = [language]
    body["preferred_language"] = language
    body["meeting_mode"] = form.get("meeting_mode") if form.get("meeting_mode") in MEETING_MODES else "either"
    channels = ["email"] if body.get("email") else []
    if body.get("phone"):
        channels.append("sms")
    body["contact_channels"] = channels or ["email"]
    # usual weekly times, in the member's time zone (intake gives them their site's): matching proposes a
    # peer leader only when they share some of them
    body["availability"] = weekly.windows_of(form.getlist("slots"))
    given = [c for c in form.getlist("consents") if c in words.OFFERED_CONSENTS]
    how = form.get("consent_how")
    if given and how not in words.CONSENT_HOW:
        errors["consent_how"] = [_("Say how the member gave these consents: on paper or in person.")]
    note = "given on paper" if how == "paper" else "given in person"
    body["consents"] = [{"purpose": purpose, "note": note} for purpose in given]
    return body, errors


@blp.get("/members/<member_id>")
def show(member_id: str):
    person, answer = staff_only()
    if answer:
        return answer
    client = api(person)
    # the member and every part of their page at once (the parts are asked for by the member's id alone);
    # intake's parts come with the member, in one read audited once
    member, matches, booked, sent, sites = client.together(
        lambda: words.member_or_404(client, member_id, include=("screenings", "consent_history", "plan_history")),
        lambda: words.maybe(lambda: client.get("matching", "/v1/matches", params={"member_id": member_id, "limit": 50})),
        lambda: words.maybe(lambda: client.get("scheduling", "/v1/sessions", params={"member_id": member_id, "limit": 50})),
        lambda: words.maybe(lambda: client.get("notifications", "/v1/deliveries",
                                               params={"recipient_id": member_id, "limit": 50})),
        lambda: words.site_names(client))
    zone = member.get("time_zone")
    included = member.pop("included", None) or {}
    screening_items = sorted((included.get("screenings") or {}).get("items", []), key=lambda s: s["recorded_at"],
                             reverse=True)
    history, plans = included.get("consent_history") or [], included.get("plan_history") or []
    return render_template("members/show.html", member=member, zone=zone, sites=sites,
                           screenings=screening_items, chart=words.barc_chart(screening_items, zone),
                           consent_history=history, plans=plans,
                           matches=None if matches is None else matches.get("items", []),
                           booked=None if booked is None else booked.get("items", []),
                           sent=None if sent is None else sent.get("items", []),
                           can_erase=person.role == "admin", can_transfer=len(sites) > 1)
