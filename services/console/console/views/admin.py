"""The organization administrator's pages (issue 16): the audit log (intake's /v1/audit-log: who read or
changed which record, when; newest first, with filters and pages) and staff (intake's /v1/staff: invite
by email as an administrator or as coordinator of named sites, change a coordinator's sites, deactivate).
Coordinators never see these pages (intake refuses them; the console answers 404 and shows no link).
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext

from console.i18n import gettext as _
from console.api_client import ApiError
from console.views import api
from console.views.lookup import full_name, home_zone, local, member_name, remember_member_names, sites, staff_only

blp = Blueprint("admin", __name__)

PAGE_SIZE = 25
ACTIONS = {"read": lazy_gettext("Looked at"), "list": lazy_gettext("Listed"), "create": lazy_gettext("Created"),
           "update": lazy_gettext("Changed"), "grant": lazy_gettext("Consent given"),
           "revoke": lazy_gettext("Consent withdrawn"), "expire": lazy_gettext("Consent expired"),
           "invite": lazy_gettext("Invited"), "deactivate": lazy_gettext("Deactivated"),
           "resolve_flag": lazy_gettext("Resolved a risk flag"), "export": lazy_gettext("Downloaded their data"),
           "erase": lazy_gettext("Erased"), "transfer": lazy_gettext("Moved to another site"),
           "sign_out_everywhere": lazy_gettext("Signed out everywhere")}
RECORDS = {"member": lazy_gettext("Member"), "consent": lazy_gettext("Consents"), "screening": lazy_gettext("Screenings"),
           "plan": lazy_gettext("Plan"), "leader": lazy_gettext("Peer leader"), "staff": lazy_gettext("Staff"),
           "site": lazy_gettext("Site"), "organization": lazy_gettext("Organization"), "token": lazy_gettext("Sign-in")}
ROLES = {"admin": lazy_gettext("Organization administrator"), "coordinator": lazy_gettext("Site coordinator")}
STAFF_STATUS = {"invited": lazy_gettext("Invited (has not signed in yet)"), "active": lazy_gettext("Active"),
                "inactive": lazy_gettext("Deactivated")}


def _staff_by_id(client) -> dict[str, dict]:
    found = client.get("intake", "/v1/staff", params={"limit": 200, "offset": 0})
    return {s["id"]: s for s in found.get("items", [])}


def _who(client, actor: str | None, role: str | None, staff: dict) -> str:
    kind, _sep, ident = (actor or "").partition(":")
    if actor == "system" or not actor:
        return _("The platform itself")
    if kind == "staff" and ident in staff:
        return full_name(staff[ident]) or staff[ident].get("email") or _("A staff member")
    if kind == "member":
        return member_name(client, ident) or _("A member")
    if role == "leader" or kind == "leader":
        return _("A peer leader")
    if role == "admin":
        return _("An organization administrator")
    if role == "coordinator":
        return _("A site coordinator")
    if role == "operator":
        return _("The platform operator")
    return _("A connected system")


@blp.get("/audit")
def audit():
    person, away = staff_only(admin=True)
    if away:
        return away
    client = api(person)
    args = request.args
    query = {k: args[k] for k in ("resource_type", "action") if args.get(k) in (RECORDS if k == "resource_type" else ACTIONS)}
    if args.get("resource_id", "").strip():
        query["resource_id"] = args["resource_id"].strip()
    # intake lists oldest first: the newest page is the last one
    total = client.get("intake", "/v1/audit-log", params={**query, "limit": 1, "offset": 0})["total"]
    page_from_newest = max(0, args.get("page", 0, type=int) or 0)
    end = max(0, total - page_from_newest * PAGE_SIZE)
    start = max(0, end - PAGE_SIZE)
    items = []
    if end > 0:
        items = client.get("intake", "/v1/audit-log", params={**query, "limit": end - start, "offset": start})["items"]
    staff, zone = _staff_by_id(client), home_zone(client)
    remember_member_names(client, [i for e in items for i in _members_named(e)[:MEMBERS_SHOWN]]   # in one call
                          + [(e.get("actor") or "").partition(":")[2] for e in items if (e.get("actor") or "").startswith("member:")])
    rows = []
    for entry in reversed(items):
        named = _members_named(entry)
        members = [{"id": i, "name": member_name(client, i)} for i in named[:MEMBERS_SHOWN]]
        rows.append(dict(entry, who=_who(client, entry.get("actor"), entry.get("actor_role"), staff),
                         when=local(entry.get("at"), zone), did=ACTIONS.get(entry.get("action"), entry.get("action")),
                         record=RECORDS.get(entry.get("resource_type"), entry.get("resource_type")),
                         members=members, more_members=max(0, len(named) - MEMBERS_SHOWN),
                         is_list=entry.get("resource_id") == "*"))
    filters = {k: v for k, v in args.items() if k != "page" and v}
    count = max(1, -(-total // PAGE_SIZE))
    return render_template("admin/audit.html", rows=rows, total=total, args=args, filters=filters, actions=ACTIONS,
                           records=RECORDS, zone=zone, page=page_from_newest, page_count=count)


MEMBERS_SHOWN = 5   # an entry about several members read at once names the first few, then "and N more"


def _members_named(entry: dict) -> list[str]:
    """The members an audit entry is about: one, or the several one lookup read (intake's ``resource_ids``,
    empty for a list read)."""
    if entry.get("resource_type") not in ("member", "consent", "screening", "plan"):
        return []
    return entry.get("resource_ids") or []


@blp.route("/staff", methods=["GET", "POST"])
def staff():
    person, away = staff_only(admin=True)
    if away:
        return away
    client = api(person)
    site_list = sites(client)
    errors, form = {}, {"role": "coordinator", "site_ids": []}
    if request.method == "POST":
        form = {"email": request.form.get("email", "").strip(), "role": request.form.get("role", ""),
                "site_ids": request.form.getlist("site_ids"), "first_name": request.form.get("first_name", "").strip(),
                "last_name": request.form.get("last_name", "").strip()}
        if form["role"] not in ROLES:
            errors["role"] = [_("Choose what they will do.")]
        elif form["role"] == "coordinator" and not form["site_ids"]:
            errors["site_ids"] = [_("Choose at least one site they coordinate.")]
        if not errors:
            body = {"email": form["email"], "role": form["role"],
                    "site_ids": form["site_ids"] if form["role"] == "coordinator" else [],
                    **{k: form[k] for k in ("first_name", "last_name") if form[k]}}
            try:
                invited = client.post("intake", "/v1/staff/invitations", json=body)
                flash(_("%(email)s was invited. They get an email with a link to sign in.", email=invited.get("email") or form["email"]), "info")
                return redirect(url_for("admin.staff"))
            except ApiError as problem:
                errors = problem.field_errors() or {"email": [problem.detail or problem.title]}
    people = sorted(_staff_by_id(client).values(), key=lambda s: (s.get("status") == "inactive", full_name(s) or s.get("email") or ""))
    for one in people:
        one["name"] = full_name(one) or one.get("email") or _("A staff member")
        one["site_names"] = [site_list[s]["name"] for s in one.get("site_ids") or [] if s in site_list]
    return render_template("admin/staff.html", people=people, errors=errors, form=form, sites=site_list,
                           roles=ROLES, statuses=STAFF_STATUS), 422 if errors else 200


@blp.route("/staff/<staff_id>", methods=["GET", "POST"])
def staff_member(staff_id):
    person, away = staff_only(admin=True)
    if away:
        return away
    client = api(person)
    try:
        record, etag = client.get_with_etag("intake", f"/v1/staff/{staff_id}")
    except ApiError as problem:
        if problem.status in (403, 404):
            abort(404)
        raise
    errors = {}
    if request.method == "POST":
        chosen = request.form.getlist("site_ids")
        if not chosen:
            errors["site_ids"] = [_("Choose at least one site they coordinate.")]
        else:
            try:
                client.send("PATCH", "intake", f"/v1/staff/{staff_id}", json={"site_ids": chosen}, if_match=etag)
                flash(_("Their sites were saved."), "info")
                return redirect(url_for("admin.staff_member", staff_id=staff_id))
            except ApiError as problem:
                if problem.status == 412:
                    errors["site_ids"] = [_("Someone changed this person meanwhile. Check their sites and save again.")]
                else:
                    errors = problem.field_errors() or {"site_ids": [problem.detail or problem.title]}
            record["site_ids"] = chosen
    record["name"] = full_name(record) or record.get("email")
    return render_template("admin/staff_member.html", record=record, sites=sites(client), errors=errors,
                           roles=ROLES, statuses=STAFF_STATUS, is_me=person.person_id == staff_id), 422 if errors else 200


@blp.post("/staff/<staff_id>/deactivate")
def deactivate(staff_id):
    person, away = staff_only(admin=True)
    if away:
        return away
    try:
        done = api(person).post("intake", f"/v1/staff/{staff_id}/deactivate")
    except ApiError as problem:
        if problem.status == 404:
            abort(404)
        flash(problem.detail or problem.title, "info")
        return redirect(url_for("admin.staff_member", staff_id=staff_id))
    flash(_("%(name)s was deactivated: they are signed out everywhere and cannot sign in.",
            name=full_name(done) or done.get("email") or _("The staff member")), "info")
    return redirect(url_for("admin.staff"))
