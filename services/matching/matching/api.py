"""HTTP edge of the matching service: Blueprint + MethodView; validates, opens the unit of work, calls a
handler, answers. Domain errors raised by handlers answer as problem+json (the app factory's handler)."""
from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView

from shared.errors import NotFound
from shared.repository import Repository
from shared.web import Blueprint, require_organization, require_role
from shared.web.pages import etag_header, etag_of, page, page_schema, documents_if_match, require_if_match

from matching import access, schemas
from matching.access import ANSWERERS, ANYONE, DECIDERS, MEMBER, STAFF
from matching.handlers import batch_runs, matches, members, overrides, proposals, settings

blp = Blueprint("matching", __name__, url_prefix="/v1", description="Pairs each member with the right peer leader, and explains why.")


def repo() -> Repository:
    return current_app.extensions["matching.repository"]


def _out(doc: dict) -> dict:
    return {**doc, "id": doc["_id"]}


def _if_match_sent(org: str, match_id: str) -> None:
    """Commands on a match check If-Match when it is sent (412 when the match changed since it was read);
    without it the state check alone applies (409 when the match is no longer in a state that allows it)."""
    if request.headers.get("If-Match"):
        doc = repo().reader().match(org, match_id)
        if doc is not None:
            require_if_match(etag_of(doc))


# --- matches ---------------------------------------------------------------------------------------

@blp.route("/matches")
class Matches(MethodView):
    @blp.arguments(schemas.MatchQuery, location="query")
    @blp.response(200, page_schema(schemas.MatchOut))
    def get(self, query):
        """List matches (members and leaders see only their own; coordinators their sites')."""
        principal = require_role(*ANYONE)
        org = require_organization()
        asked = {k: query[k] for k in ("status", "member_id", "leader_id", "site_id") if query.get(k)}
        filters = access.match_filters(principal, asked)
        if filters is None:
            return page([], 0, query)
        items, total = repo().reader().list_matches(org, filters, query["offset"], query["limit"])
        return page([_out(d) for d in items], total, query)


@blp.route("/matches/<match_id>")
class MatchOne(MethodView):
    @blp.response(200, schemas.MatchOut)
    def get(self, match_id):
        """One match, with its score breakdown and history (ETag)."""
        principal = require_role(*ANYONE)
        org = require_organization()
        doc = access.visible_match(repo().reader(), org, match_id, principal)
        return _out(doc), 200, etag_header(doc)


@blp.route("/matches/<match_id>/accept")
class Accept(MethodView):
    @blp.response(200, schemas.MatchOut)
    def post(self, match_id):
        """Accept a proposal (the member, the leader or a coordinator): the match becomes active."""
        principal = require_role(*ANSWERERS)
        org = require_organization()
        _if_match_sent(org, match_id)
        return _out(repo().transaction(lambda uow: matches.accept(uow, org, match_id, principal)))


@blp.route("/matches/<match_id>/decline")
class Decline(MethodView):
    @blp.arguments(schemas.DeclineIn)
    @blp.response(200, schemas.MatchOut)
    def post(self, body, match_id):
        """Decline a proposal with a reason (the member, the leader or a coordinator); the next best leader is proposed."""
        principal = require_role(*ANSWERERS)
        org = require_organization()
        _if_match_sent(org, match_id)
        return _out(repo().transaction(lambda uow: matches.decline(uow, org, match_id, principal, body["reason"])))


@blp.route("/matches/<match_id>/end")
class End(MethodView):
    @blp.arguments(schemas.EndIn)
    @blp.response(200, schemas.MatchOut)
    def post(self, body, match_id):
        """End a proposed or active match. Unless it is the member's choice, a new proposal follows."""
        principal = require_role(*DECIDERS)
        org = require_organization()
        _if_match_sent(org, match_id)
        return _out(repo().transaction(lambda uow: matches.end(uow, org, match_id, principal, body["reason_code"],
                                                               body["reason"])))


# --- the member's own ------------------------------------------------------------------------------

@blp.route("/me/match")
class MyMatch(MethodView):
    @blp.response(200, schemas.MyMatchStateOut)
    def get(self):
        """A member's current proposal or match (ids, status, the reasons in words, expiry), or their wait.
        Answer a proposal at /v1/matches/{id}/accept or /decline. Member tokens only."""
        principal = require_role(*MEMBER)
        org = require_organization()
        return members.my_match(repo().reader(), org, principal)


@blp.route("/me/export")
class MyExport(MethodView):
    @blp.response(200, schemas.MyExportOut)
    def get(self):
        """Everything matching holds about the member (right of access), as JSON. Member tokens only."""
        principal = require_role(*MEMBER)
        org = require_organization()
        return members.export(repo().reader(), org, principal)


# --- members ---------------------------------------------------------------------------------------

@blp.route("/members/<member_id>/proposals")
class Proposals(MethodView):
    @blp.arguments(schemas.ProposalsQuery, location="query")
    @blp.response(200, schemas.ProposalsOut)
    def get(self, query, member_id):
        """The member's best candidate leaders now, each with its breakdown; and why others are out."""
        principal = require_role(*STAFF)
        org = require_organization()
        return proposals.proposals_for(repo().reader(), org, member_id, principal, query["limit"])


@blp.route("/members/<member_id>/different-leader")
class DifferentLeader(MethodView):
    @blp.arguments(schemas.DifferentLeaderIn)
    @blp.response(200, schemas.MatchOut)
    def post(self, body, member_id):
        """Record the member's request for a different leader (who passed it on, why) and propose the next."""
        principal = require_role(*STAFF)
        org = require_organization()
        return _out(repo().transaction(
            lambda uow: matches.request_different_leader(uow, org, member_id, principal, body["reason"])))


# --- overrides -------------------------------------------------------------------------------------

@blp.route("/overrides")
class Overrides(MethodView):
    @blp.arguments(schemas.OverrideQuery, location="query")
    @blp.response(200, page_schema(schemas.OverrideOut))
    def get(self, query):
        """Pins, blocks and recorded exclusions (declined, expired, ended), with who and why."""
        principal = require_role(*STAFF)
        org = require_organization()
        items = overrides.visible(repo().reader(), org, principal, query.get("member_id"))
        chosen = items[query["offset"]:query["offset"] + query["limit"]]
        return page([_out(i) for i in chosen], len(items), query)

    @blp.arguments(schemas.OverrideIn)
    @blp.response(201, schemas.OverrideOut)
    def post(self, body):
        """Pin (propose this leader now) or block (never this leader) a pairing, with the reason."""
        principal = require_role(*STAFF)
        org = require_organization()
        return _out(repo().transaction(lambda uow: overrides.add_override(
            uow, org, principal, body["member_id"], body["leader_id"], body["kind"], body["reason"])))


@blp.route("/overrides/<override_id>")
class OverrideOne(MethodView):
    @blp.response(204)
    def delete(self, override_id):
        """Lift a pin or a block (recorded: who lifted it and when; the audit log has the entry). A lifted block
        makes the leader eligible again; a waiting member is considered again at once."""
        principal = require_role(*STAFF)
        org = require_organization()
        repo().transaction(lambda uow: overrides.lift_override(uow, org, principal, override_id))
        return "", 204


# --- waitlist --------------------------------------------------------------------------------------

@blp.route("/waitlist")
class Waitlist(MethodView):
    @blp.arguments(schemas.WaitlistQuery, location="query")
    @blp.response(200, page_schema(schemas.WaitlistOut))
    def get(self, query):
        """Members nobody can take now, oldest first, with the reason in words."""
        principal = require_role(*STAFF)
        org = require_organization()
        items, total = repo().reader().list_waitlist(org, access.sites_scope(principal, query.get("site_id")),
                                                     query["offset"], query["limit"])
        return page(items, total, query)


# --- batch runs ------------------------------------------------------------------------------------

@blp.route("/batch-runs")
class BatchRuns(MethodView):
    @blp.arguments(schemas.BatchRunIn)
    @blp.response(202, schemas.BatchRunOut)
    def post(self, body):
        """Start a batch run: every waiting member of the site (or organization) assigned optimally at once.
        The worker runs it; read the result at its URL."""
        principal = require_role(*STAFF)
        org = require_organization()
        run = repo().transaction(lambda uow: batch_runs.start_batch_run(uow, org, principal, body["site_id"]))
        return _out(run), 202, {"Location": f"/v1/batch-runs/{run['_id']}"}

    @blp.arguments(schemas.PageQuery, location="query")
    @blp.response(200, page_schema(schemas.BatchRunOut))
    def get(self, query):
        """Batch runs, newest first (without their unmatched lists)."""
        principal = require_role(*STAFF)
        org = require_organization()
        items, total = repo().reader().batch_runs(org, access.sites_scope(principal), query["offset"], query["limit"])
        return page([_out(i) for i in items], total, query)


@blp.route("/batch-runs/<run_id>")
class BatchRunOne(MethodView):
    @blp.response(200, schemas.BatchRunOut)
    def get(self, run_id):
        """A batch run's result: how many matched, the total score, who stays waiting and why."""
        principal = require_role(*STAFF)
        org = require_organization()
        run = repo().reader().batch_run(org, run_id)
        if run is None or not access.can_see_batch_run(principal, run):
            raise NotFound(f"no batch run {run_id}")
        return _out(run)


# --- organization settings -------------------------------------------------------------------------

def _settings_out(org: str) -> tuple[dict, dict]:
    body, version = settings.current(repo().reader(), org)
    return body, etag_header({"_id": org, "version": version})


@blp.route("/settings")
class OrgSettings(MethodView):
    @blp.response(200, schemas.SettingsOut)
    def get(self):
        """The organization's score weights (and as points out of 100) and timings (ETag)."""
        require_role(*STAFF)
        org = require_organization()
        body, headers = _settings_out(org)
        return body, 200, headers

    @documents_if_match(blp)
    @blp.arguments(schemas.SettingsIn)
    @blp.response(200, schemas.SettingsOut)
    def put(self, body):
        """Set weights (any scale; only their ratios count) and timings. Admins only; send If-Match."""
        require_role("admin")
        org = require_organization()
        version = repo().reader().org_settings(org).get("version", 0)
        require_if_match(etag_of({"_id": org, "version": version}))
        repo().transaction(lambda uow: settings.save_settings(uow, org, body, version))
        out, headers = _settings_out(org)
        return out, 200, headers
