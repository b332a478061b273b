"""Changes to one member (issue 16 "Members"): edit the profile (If-Match with the ETag read with the
form), transfer to another site, record a screening, edit the plan, resolve a risk flag, erase (admins:
the reason and the member's name typed to confirm). Each is a form that posts and redirects.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from console.i18n import gettext as _
from console.api_client import ApiError
from console.views import api
from console.views import members_words as words
from console.views import weekly
from console.views.members import MEETING_MODES, staff_only

blp = Blueprint("member_actions", __name__)

EDIT_FIELDS = ("first_name", "last_name", "preferred_name", "pronouns", "email", "phone", "date_of_birth",
               "meeting_mode")
INSTRUMENT_ITEMS = {"BARC-10": (10, 1, 6), "AUDIT-C": (3, 0, 4), "DAST-10": (10, 0, 1), "PHQ-2": (2, 0, 3)}


def _member_path(member_id: str, rest: str = "") -> str:
    return f"/v1/members/{member_id}{rest}"


@blp.route("/members/<member_id>/edit", methods=["GET", "POST"])
def edit(member_id: str):
    person, answer = staff_only()
    if answer:
        return answer
    client = api(person)
    try:
        member, etag = client.get_with_etag("intake", _member_path(member_id))
    except ApiError as error:
        if error.status in (403, 404, 410, 422):
            words.member_or_404(client, member_id)
        raise
    errors, general, form = {}, [], {k: member.get(k) or "" for k in EDIT_FIELDS}
    slots = weekly.slots_of(member.get("availability"))
    if request.method == "POST":
        form = {k: (request.form.get(k) or "").strip() for k in EDIT_FIELDS}
        slots = set(request.form.getlist("slots"))
        patch = {k: (v or None) for k, v in form.items() if (v or None) != (member.get(k) or None)}
        if not form["first_name"]:
            errors["first_name"] = [_("Enter the member's first name.")]
        if patch.get("meeting_mode") is None:
            patch.pop("meeting_mode", None)
        if (windows := weekly.changed(member.get("availability"), slots)) is not None:
            patch["availability"] = windows
        if not errors and not patch:
            flash(_("Nothing was changed."))
            return redirect(url_for("members.show", member_id=member_id))
        if not errors:
            try:
                client.send("PATCH", "intake", _member_path(member_id), json=patch,
                            if_match=request.form.get("etag") or etag)
            except ApiError as error:
                if error.status == 412:
                    general = [_("Someone changed this member while you were editing. The form now shows the "
                                 "latest details; make your change again.")]
                    form = {k: member.get(k) or "" for k in EDIT_FIELDS}
                    slots = weekly.slots_of(member.get("availability"))
                else:
                    errors, general = words.form_errors(error, EDIT_FIELDS + ("availability",))
            else:
                flash(_("The member's details were saved."))
                return redirect(url_for("members.show", member_id=member_id))
    return render_template("members/edit.html", member=member, etag=etag, form=form, errors=errors,
                           general=general, modes=MEETING_MODES, slots=slots, **weekly.choices())


@blp.route("/members/<member_id>/transfer", methods=["GET", "POST"])
def transfer(member_id: str):
    person, answer = staff_only()
    if answer:
        return answer
    client = api(person)
    member = words.member_or_404(client, member_id)
    sites = {k: v for k, v in words.site_names(client).items() if k != member.get("site_id")}
    errors, general = {}, []
    if request.method == "POST":
        to_site = request.form.get("to_site_id", "")
        if to_site not in sites:
            errors["to_site_id"] = [_("Choose the site the member moves to.")]
        else:
            try:
                client.post("intake", _member_path(member_id, "/transfer"),
                            json={"to_site_id": to_site, "reason": request.form.get("reason") or None})
            except ApiError as error:
                errors, general = words.form_errors(error, ("to_site_id", "reason"))
            else:
                flash(_("The member now belongs to %(site)s.", site=sites[to_site]))
                return redirect(url_for("members.show", member_id=member_id))
    return render_template("members/transfer.html", member=member, sites=sites, errors=errors, general=general)


@blp.route("/members/<member_id>/screenings", methods=["GET", "POST"])
def screening(member_id: str):
    person, answer = staff_only()
    if answer:
        return answer
    client = api(person)
    member = words.member_or_404(client, member_id)
    errors, general, form = {}, [], {"instrument": request.args.get("instrument", "BARC-10"), "answers": ""}
    if request.method == "POST":
        form = {"instrument": request.form.get("instrument", ""), "answers": request.form.get("answers", "")}
        try:
            answers = [int(part) for part in form["answers"].replace(";", ",").replace(" ", ",").split(",") if part]
        except ValueError:
            answers = None
            errors["answers"] = [_("Enter the answers as whole numbers separated by commas.")]
        if form["instrument"] not in INSTRUMENT_ITEMS:
            errors["instrument"] = [_("Choose the screening.")]
        if not errors:
            try:
                result = client.post("intake", _member_path(member_id, "/screenings"),
                                     json={"instrument": form["instrument"], "answers": answers})
            except ApiError as error:
                errors, general = words.form_errors(error, ("instrument", "answers"))
            else:
                flash(_("The %(instrument)s screening was recorded: %(total)d, %(band)s.",
                        instrument=result["instrument"], total=result["total"], band=words.band_words(result["band"])))
                return redirect(url_for("members.show", member_id=member_id) + "#screenings")
    return render_template("members/screening.html", member=member, form=form, errors=errors, general=general,
                           instruments=INSTRUMENT_ITEMS)


@blp.route("/members/<member_id>/plan", methods=["GET", "POST"])
def plan(member_id: str):
    person, answer = staff_only()
    if answer:
        return answer
    client = api(person)
    member = words.member_or_404(client, member_id)
    current = member.get("plan") or {}
    form = {"goal": current.get("goal", ""), "next_steps": "\n".join(current.get("next_steps") or [])}
    errors, general = {}, []
    if request.method == "POST":
        form = {"goal": (request.form.get("goal") or "").strip(), "next_steps": request.form.get("next_steps", "")}
        steps = [line.strip() for line in form["next_steps"].splitlines() if line.strip()]
        if not form["goal"]:
            errors["goal"] = [_("Write the member's goal in their own words.")]
        else:
            try:
                client.request("PUT", "intake", _member_path(member_id, "/plan"),
                               json={"goal": form["goal"], "next_steps": steps})
            except ApiError as error:
                errors, general = words.form_errors(error, ("goal", "next_steps"))
            else:
                flash(_("The plan was saved."))
                return redirect(url_for("members.show", member_id=member_id) + "#plan")
    return render_template("members/plan.html", member=member, form=form, errors=errors, general=general)


@blp.post("/members/<member_id>/flags/<flag>/resolve")
def resolve_flag(member_id: str, flag: str):
    person, answer = staff_only()
    if answer:
        return answer
    client = api(person)
    words.member_or_404(client, member_id)
    try:
        client.request("DELETE", "intake", _member_path(member_id, f"/flags/{flag}"))
    except ApiError as error:
        flash(error.detail or error.title)
    else:
        flash(_("The flag was resolved."))
    return redirect(url_for("members.show", member_id=member_id))


@blp.route("/members/<member_id>/erase", methods=["GET", "POST"])
def erase(member_id: str):
    person, answer = staff_only()
    if answer:
        return answer
    if person.role != "admin":
        abort(404)
    client = api(person)
    member = words.member_or_404(client, member_id)
    name = words.full_name(member)
    errors, general = {}, []
    if request.method == "POST":
        typed = " ".join((request.form.get("confirm_name") or "").split())
        reason = (request.form.get("reason") or "").strip()
        if not reason:
            errors["reason"] = [_("Say why the member's data is erased (for example: the member asked).")]
        if typed.casefold() != name.casefold():
            errors["confirm_name"] = [_("Type the member's name exactly as shown: %(name)s", name=name)]
        if not errors:
            try:
                client.post("intake", _member_path(member_id, "/erasure"), json={"reason": reason})
            except ApiError as error:
                errors, general = words.form_errors(error, ("reason",))
            else:
                flash(_("The member's data was erased."))
                return redirect(url_for("members.index"))
    return render_template("members/erase.html", member=member, name=name, errors=errors, general=general)
