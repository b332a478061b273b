"""Sign in with an emailed link (intake's sign-in API, issue 15), choose the organization, sign out.

The link in the email opens ``/sign-in/callback?code=...``, a page with one "Continue" button that posts the
code: mail scanners open links on their own, and a code exchanged on a plain GET would be spent before the
person clicks. The same form takes the code typed by hand from the email.
"""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from console.i18n import gettext as _
from console import sessions
from console.api_client import ApiError
from console.views import api

blp = Blueprint("signin", __name__)

PENDING = "pending_sign_in"   # the code and organizations offered, while the person chooses one


def _looks_like_email(value: str) -> bool:
    name, at, domain = value.partition("@")
    return bool(name and at and "." in domain and " " not in value)


@blp.get("/sign-in")
def start():
    if sessions.current_person():
        return redirect(url_for("home.index"))
    return render_template("sign_in.html", email="", errors={})


@blp.post("/sign-in")
def send_link():
    email = request.form.get("email", "").strip()
    if not _looks_like_email(email):
        return render_template("sign_in.html", email=email,
                               errors={"email": [_("Enter your email address, like name@example.org.")]}), 422
    try:
        api().post("intake", "/v1/sign-in", {"email": email})
    except ApiError as problem:
        if problem.status == 429:
            return render_template("sign_in.html", email=email, errors={"email": [
                _("Too many sign-in emails were asked for. Please wait a few minutes and try again.")]}), 429
        if problem.status == 422:
            return render_template("sign_in.html", email=email, errors=_messages(problem, "email")), 422
        raise
    return redirect(url_for("signin.sent"), 303)


@blp.get("/sign-in/sent")
def sent():
    return render_template("check_email.html", errors={})


@blp.get("/sign-in/callback")
def callback():
    return render_template("continue_sign_in.html", code=request.args.get("code", ""), errors={})


@blp.post("/sign-in/callback")
def exchange():
    code = request.form.get("code", "").strip()
    if not code:
        return render_template("check_email.html", errors={"code": [_("Enter the code from the email.")]}), 422
    return _exchange(code, None)


@blp.get("/sign-in/organization")
def choose_organization():
    pending = session.get(PENDING)
    if not pending:
        return redirect(url_for("signin.start"))
    return render_template("choose_organization.html", choices=pending["choices"], errors={})


@blp.post("/sign-in/organization")
def chose_organization():
    pending = session.get(PENDING)
    if not pending:
        return redirect(url_for("signin.start"))
    chosen = request.form.get("organization_id", "")
    if chosen not in {c["organization_id"] for c in pending["choices"]}:
        return render_template("choose_organization.html", choices=pending["choices"],
                               errors={"organization_id": [_("Choose one of the organizations.")]}), 422
    return _exchange(pending["code"], chosen)


def _exchange(code: str, organization_id: str | None):
    body = {"code": code}
    if organization_id:
        body["organization_id"] = organization_id
    try:
        answer = api().post("intake", "/v1/sign-in/token", body)
    except ApiError as problem:
        if problem.status == 409 and problem.body.get("choices"):
            session[PENDING] = {"code": code, "choices": [
                {"organization_id": c.get("organization_id"), "organization_name": c.get("organization_name"),
                 "role": c.get("role")} for c in problem.body["choices"]]}
            return redirect(url_for("signin.choose_organization"), 303)
        if problem.status in (400, 404, 410, 422):
            session.pop(PENDING, None)
            return render_template("check_email.html", errors={"code": [
                _("This sign-in link or code has been used or has expired. Ask for a new one below.")]}), 400
        raise
    pending = session.pop(PENDING, None) or {}
    name = next((c.get("organization_name") for c in pending.get("choices", ())
                 if c["organization_id"] == answer.get("organization_id")), None)
    sessions.sign_in(answer["access_token"], answer["role"], answer.get("person_id"), answer.get("organization_id"),
                     expires_in=int(answer.get("expires_in") or 0), organization_name=name)
    return redirect(url_for("home.index"), 303)


@blp.post("/sign-out")
def sign_out():
    sessions.sign_out()
    flash(_("You are signed out."), "info")
    return redirect(url_for("signin.start"), 303)


@blp.post("/sign-out-everywhere")
def sign_out_everywhere():
    person = sessions.current_person()
    if person:
        api(person).post("intake", "/v1/sign-out-everywhere")
    sessions.sign_out()
    flash(_("You are signed out on every device."), "info")
    return redirect(url_for("signin.start"), 303)


def _messages(problem: ApiError, default_field: str) -> dict[str, list[str]]:
    errors = problem.field_errors()
    return errors or {default_field: [problem.detail or problem.title]}
