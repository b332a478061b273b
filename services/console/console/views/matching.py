"""Matching (issue 16, "Matching"): proposals waiting for an answer, each with why in sentences, accepted or
declined on the member's behalf; pinning or blocking a leader for a member and lifting it; who waits for a
peer leader and why; a batch assignment for a site and what it changed; the organization's weights (admins
only: coordinators neither see nor reach them). Matching holds ids only: names come from intake (see
``Directory`` for the calls that costs)."""
from __future__ import annotations

import time

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from console.i18n import gettext as _
from console import sessions
from console.api_client import ApiError
from console.views import api, sign_in_first
from console.views.matching_words import (Directory, all_pages, part_title, reasons, score_parts, wait_reason,
                                          when)

blp = Blueprint("matching", __name__, url_prefix="/matching")

SHOWN = 50
WEIGHTS = ("substances_pathway", "lived_experience", "availability", "co_occurring", "leader_load")
BATCH_WAIT_SECONDS = 5


def decline_reasons() -> dict[str, str]:
    """The reasons offered when declining for a member (matching takes the reason as text)."""
    return {"someone_else": _("The member would like someone else."),
            "times": _("The times do not work for the member."),
            "gender": _("The member would like a leader of another gender."),
            "not_ready": _("The member is not ready yet."),
            "other": _("Another reason (say which below).")}


def _staff():
    person = sessions.current_person()
    if person is None:
        return None
    if not person.is_staff:
        abort(404)
    return person


def _proposal_view(names: Directory, match: dict) -> dict:
    member, leader = names.member(match["member_id"]), names.leader(match["leader_id"])
    zone = names.site_zone(match.get("site_id"))
    return dict(match, member_name=names.member_name(match["member_id"]), leader_name=names.leader_name(match["leader_id"]),
                sentences=reasons(member, leader, match.get("breakdown"), names.site_name(match.get("site_id"))),
                parts=score_parts(match.get("breakdown")), score_rounded=round(match.get("score") or 0),
                expires=when(match.get("expires_at"), zone))


@blp.get("")
def index():
    person = _staff()
    if person is None:
        return sign_in_first()
    client = api(person)
    names = Directory(client)
    proposed, waiting, runs, _sites = client.together(
        lambda: client.get("matching", "/v1/matches", params={"status": "proposed", "limit": SHOWN, "offset": 0}),
        lambda: client.get("matching", "/v1/waitlist", params={"limit": SHOWN, "offset": 0}),
        lambda: client.get("matching", "/v1/batch-runs", params={"limit": 5, "offset": 0}),
        names.sites)
    names.load(member_ids=[m["member_id"] for m in proposed.get("items", [])],
               named_ids=[w["member_id"] for w in waiting.get("items", [])],
               leader_ids=[m["leader_id"] for m in proposed.get("items", [])])
    return render_template(
        "matching/index.html", proposals=[_proposal_view(names, m) for m in proposed.get("items", [])],
        proposals_total=proposed.get("total", 0),
        waiting=[dict(w, name=names.member_name(w["member_id"]), why=wait_reason(w), site=names.site_name(w.get("site_id")),
                      since_words=when(w.get("since"), names.site_zone(w.get("site_id")))) for w in waiting.get("items", [])],
        waiting_total=waiting.get("total", 0), sites=names.sites(), decline_reasons=decline_reasons(),
        runs=[dict(r, site=names.site_name(r["site_id"]) if r.get("site_id") else _("All sites"),
                   created=when(r.get("created_at"), names.site_zone(r.get("site_id")))) for r in runs.get("items", [])],
        is_admin=person.role == "admin")


@blp.post("/matches/<match_id>/accept")
def accept(match_id):
    person = _staff()
    if person is None:
        return sign_in_first()
    client = api(person)
    try:
        match = client.post("matching", f"/v1/matches/{match_id}/accept")
    except ApiError as error:
        return _refused(error)
    names = Directory(client)
    flash(_("Accepted for %(member)s: %(leader)s is now their peer leader.",
            member=names.member_name(match["member_id"]), leader=names.leader_name(match["leader_id"])))
    return redirect(request.form.get("back") == "member" and url_for("matching.member", member_id=match["member_id"])
                    or url_for("matching.index"))


@blp.post("/matches/<match_id>/decline")
def decline(match_id):
    person = _staff()
    if person is None:
        return sign_in_first()
    choices = decline_reasons()
    code, details = request.form.get("reason"), (request.form.get("details") or "").strip()
    if code not in choices or (code == "other" and not details):
        flash(_("Choose why the member declines (and say why when it is another reason)."))
        return redirect(url_for("matching.index"))
    reason = (choices[code] if code != "other" else "") + (" " + details if details else "")
    client = api(person)
    try:
        match = client.post("matching", f"/v1/matches/{match_id}/decline", json={"reason": reason.strip()})
    except ApiError as error:
        return _refused(error)
    flash(_("Declined for %(member)s. The next best peer leader is proposed when there is one.",
            member=Directory(client).member_name(match["member_id"])))
    return redirect(url_for("matching.index"))


def _refused(error: ApiError):
    if error.status == 404:
        abort(404)
    if error.status == 409:
        flash(_("This proposal was already answered or has expired; the page shows how things are now."))
    else:
        flash(_("That could not be done: %(why)s", why=error.detail or error.title))
    return redirect(url_for("matching.index"))


# --- one member: their proposal, candidates, pins and blocks ------------------------------------------

@blp.route("/members/<member_id>", methods=["GET", "POST"])
def member(member_id):
    person = _staff()
    if person is None:
        return sign_in_first()
    client = api(person)
    names = Directory(client)
    if names.member(member_id) is None:
        abort(404)
    errors, form = {}, {}
    if request.method == "POST":
        form = request.form
        errors = _add_override(client, names, member_id, form)
        if not errors:
            return redirect(url_for("matching.member", member_id=member_id))
    proposed, active, found_overrides, candidates, _leaders = client.together(
        lambda: client.get("matching", "/v1/matches", params={"member_id": member_id, "status": "proposed"}),
        lambda: client.get("matching", "/v1/matches", params={"member_id": member_id, "status": "active"}),
        lambda: all_pages(client, "matching", "/v1/overrides", {"member_id": member_id}),
        lambda: client.get("matching", f"/v1/members/{member_id}/proposals", params={"limit": 5}),
        names.leaders)
    open_matches = proposed.get("items", []) + active.get("items", [])
    overrides = [dict(o, leader_name=names.leader_name(o["leader_id"])) for o in found_overrides
                 if o.get("kind") in ("pin", "block")]
    m = names.member(member_id)
    return render_template(
        "matching/member.html", member_id=member_id, name=names.member_name(member_id),
        matches=[_proposal_view(names, x) for x in open_matches], overrides=overrides,
        candidates=[dict(c, leader_name=names.leader_name(c["leader_id"]), score_rounded=round(c.get("score") or 0),
                         sentences=reasons(m, names.leader(c["leader_id"]), c.get("breakdown"), names.site_name(m.get("site_id"))))
                    for c in candidates.get("candidates", [])],
        leaders=sorted(((i, names.leader_name(i)) for i in names.leaders()), key=lambda p: p[1]),
        form=form, errors=errors, decline_reasons=decline_reasons()), (400 if errors else 200)


def _add_override(client, names: Directory, member_id: str, form) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    kind, leader_id, reason = form.get("kind"), form.get("leader_id"), (form.get("reason") or "").strip()
    if kind not in ("pin", "block"):
        errors["kind"] = [_("Choose whether to pin or block the peer leader.")]
    if leader_id not in names.leaders():
        errors["leader_id"] = [_("Choose a peer leader.")]
    if not reason:
        errors["reason"] = [_("Say why, so the next coordinator knows.")]
    if errors:
        return errors
    try:
        made = client.post("matching", "/v1/overrides", json={"member_id": member_id, "leader_id": leader_id,
                                                               "kind": kind, "reason": reason})
    except ApiError as error:
        if error.status == 409:
            existing = (error.body or {}).get("existing") or {}
            said = (_("%(member)s has %(leader)s blocked. Lift that block first, then pin them.")
                    if existing.get("kind") == "block" else
                    _("%(member)s has %(leader)s pinned. Lift that pin first, then block them."))
            return {"leader_id": [said % {"member": names.member_name(member_id), "leader": names.leader_name(leader_id)}]}
        if error.status == 404:
            abort(404)
        found = {("reason" if k == "reason" else "leader_id" if k == "leader_id" else "kind"): v
                 for k, v in error.field_errors().items()}
        return found or {"leader_id": [error.detail or error.title]}
    leader = names.leader_name(leader_id)
    flash(_("%(leader)s is pinned for %(member)s.", leader=leader, member=names.member_name(member_id)) if kind == "pin"
          else _("%(leader)s is blocked for %(member)s.", leader=leader, member=names.member_name(member_id)))
    if made.get("warning"):
        flash(_("%(leader)s cannot be proposed now (a rule is not met), so %(member)s got the best other peer leader.",
                leader=leader, member=names.member_name(member_id)))
    return {}


@blp.post("/members/<member_id>/overrides/<override_id>/lift")
def lift(member_id, override_id):
    person = _staff()
    if person is None:
        return sign_in_first()
    client = api(person)
    try:
        client.request("DELETE", "matching", f"/v1/overrides/{override_id}")
    except ApiError as error:
        if error.status == 404:
            abort(404)
        flash(_("That could not be lifted: %(why)s", why=error.detail or error.title))
    else:
        flash(_("Lifted."))
    return redirect(url_for("matching.member", member_id=member_id))


# --- batch runs ----------------------------------------------------------------------------------------

@blp.post("/batch-runs")
def start_batch():
    person = _staff()
    if person is None:
        return sign_in_first()
    client = api(person)
    site_id = request.form.get("site_id") or None
    if site_id is None and person.role != "admin":
        flash(_("Choose one of your sites."))
        return redirect(url_for("matching.index"))
    try:
        run = client.post("matching", "/v1/batch-runs", json={"site_id": site_id})
    except ApiError as error:
        flash(_("The batch assignment could not start: %(why)s", why=error.detail or error.title))
        return redirect(url_for("matching.index"))
    deadline = time.monotonic() + BATCH_WAIT_SECONDS   # most runs finish in well under a second: show the result
    while run.get("status") in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
        run = client.get("matching", f"/v1/batch-runs/{run['id']}")
    return redirect(url_for("matching.batch_run", run_id=run["id"]))


@blp.get("/batch-runs/<run_id>")
def batch_run(run_id):
    person = _staff()
    if person is None:
        return sign_in_first()
    client = api(person)
    try:
        run = client.get("matching", f"/v1/batch-runs/{run_id}")
    except ApiError as error:
        if error.status == 404:
            abort(404)
        raise
    names = Directory(client)
    zone = names.site_zone(run.get("site_id"))
    matched = []
    if run.get("status") == "done":
        params = {"site_id": run["site_id"]} if run.get("site_id") else {}
        for status in ("proposed", "active"):
            for m in all_pages(client, "matching", "/v1/matches", {**params, "status": status}):
                if m.get("origin") == "batch" and run.get("started_at") and run["started_at"] <= m.get("proposed_at", "") <= (run.get("finished_at") or "~"):
                    matched.append(m)
    names.load(member_ids=[m["member_id"] for m in matched], named_ids=[u["member_id"] for u in run.get("unmatched") or []],
               leader_ids=[m["leader_id"] for m in matched])
    matched = [_proposal_view(names, m) for m in matched]
    unmatched = [dict(u, name=names.member_name(u["member_id"]), why=wait_reason(u)) for u in run.get("unmatched") or []]
    return render_template("matching/batch_run.html", run=run, matched=matched, unmatched=unmatched,
                           site=names.site_name(run["site_id"]) if run.get("site_id") else _("All sites"),
                           finished=when(run.get("finished_at"), zone), created=when(run.get("created_at"), zone))


# --- the organization's weights (admins) -----------------------------------------------------------------

@blp.route("/settings", methods=["GET", "POST"])
def settings():
    person = _staff()
    if person is None:
        return sign_in_first()
    if person.role != "admin":
        abort(404)
    client = api(person)
    current, etag = client.get_with_etag("matching", "/v1/settings")
    errors, form = {}, None
    if request.method == "POST":
        form = request.form
        body = {"weights": {}}
        for name in WEIGHTS:
            try:
                value = float(form.get(name, ""))
                if not 0 <= value <= 1000:
                    raise ValueError
                body["weights"][name] = value
            except ValueError:
                errors[name] = [_("Enter a number from 0 to 1000.")]
        try:
            body["proposal_ttl_hours"] = float(form.get("proposal_ttl_hours", ""))
        except ValueError:
            errors["proposal_ttl_hours"] = [_("Enter a number of hours.")]
        try:
            body["waitlist_alert_days"] = int(form.get("waitlist_alert_days", ""))
        except ValueError:
            errors["waitlist_alert_days"] = [_("Enter a whole number of days.")]
        if not errors:
            try:
                client.send("PUT", "matching", "/v1/settings", json=body, if_match=form.get("etag") or etag)
            except ApiError as error:
                if error.status == 412:
                    flash(_("Someone changed these settings while you were editing. Here they are now; make your change again."))
                    return redirect(url_for("matching.settings"))
                for key, messages in error.field_errors().items():
                    errors[key] = messages
                for key, nested in (error.errors or {}).get("weights", {}).items() if isinstance((error.errors or {}).get("weights"), dict) else []:
                    errors[key] = nested if isinstance(nested, list) else [str(nested)]
                errors.pop("weights", None)
                errors = errors or {"form": [error.detail or error.title]}
            else:
                flash(_("The matching weights are saved. New proposals use them from now on."))
                return redirect(url_for("matching.settings"))
    values = ({k: form.get(k, "") for k in (*WEIGHTS, "proposal_ttl_hours", "waitlist_alert_days")} if form else
              {**{k: f"{current['weights'].get(k, 0):g}" for k in WEIGHTS},
               "proposal_ttl_hours": f"{current.get('proposal_ttl_hours', 0):g}",
               "waitlist_alert_days": str(current.get("waitlist_alert_days", ""))})
    return render_template("matching/settings.html", values=values, errors=errors, etag=etag,
                           weights=[(k, part_title(k), round(current["points"].get(k, 0))) for k in WEIGHTS]), (400 if errors else 200)
