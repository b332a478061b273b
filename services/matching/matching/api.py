"""HTTP edge of the matching service: Blueprint + MethodView; validates, calls a handler, answers."""
from __future__ import annotations

from contextlib import contextmanager

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from pymongo.errors import DuplicateKeyError

from shared.audit import audit_entry
from shared.web import current_principal, require_organization, require_role
from shared.web.pages import etag_of, page, page_schema, documents_if_match, require_if_match

from matching import handlers, model, schemas
from matching.repository import Repository, Store

blp = Blueprint("matching", __name__, url_prefix="/v1", description="Pairs each member with the right peer leader, and explains why.")

STAFF = ("admin", "coordinator")
ANYONE = ("admin", "coordinator", "leader", "service")


def repo() -> Repository:
    return current_app.extensions["matching.repository"]


@contextmanager
def answers():
    """Domain errors -> problem+json."""
    try:
        yield
    except handlers.NotFound as exc:
        abort(404, message=str(exc))
    except handlers.Forbidden as exc:
        abort(403, message=str(exc))
    except handlers.Invalid as exc:
        abort(422, message=str(exc), errors=exc.errors)
    except handlers.Contradiction as exc:
        o = exc.override
        abort(409, message=str(exc), existing={"id": o["_id"], "kind": o["kind"], "member_id": o["member_id"],
                                               "leader_id": o["leader_id"], "url": f"/v1/overrides/{o['_id']}"})
    except model.TransitionError as exc:
        abort(409, message=str(exc))
    except DuplicateKeyError:
        abort(409, message="The member's match changed at the same moment; read it again and retry.")


def _out(doc: dict) -> dict:
    return {**doc, "id": doc["_id"]}


def _transaction(work):
    with answers():
        return repo().transaction(work)


def _if_match_sent(org: str, match_id: str) -> None:
    """Commands on a match check If-Match when it is sent (412 when the match changed since it was read);
    without it the state check alone applies (409 when the match is no longer in a state that allows it)."""
    if request.headers.get("If-Match"):
        doc = repo().reads().match(org, match_id)
        if doc is not None:
            require_if_match(etag_of(doc))


def _audited(principal, org: str, change: str, work):
    """A change of a member's match, with its audit entry in the same transaction (ids only)."""
    def run(uow):
        doc = work(uow)
        Store(uow.db, uow.session).audit(audit_entry(principal, "update", "member_match", doc["member_id"], org,
                                                     change=change, match_id=doc["_id"]))
        return doc
    return _transaction(run)


# --- matches ---------------------------------------------------------------------------------------

@blp.route("/matches")
class Matches(MethodView):
    @blp.arguments(schemas.MatchQuery, location="query")
    @blp.response(200, page_schema(schemas.MatchOut))
    def get(self, query):
        """List matches (leaders see only their own; coordinators their sites')."""
        principal = require_role(*ANYONE)
        org = require_organization()
        filters = {k: query[k] for k in ("status", "member_id", "leader_id", "site_id") if query.get(k)}
        if principal.role == "leader":
            if filters.get("leader_id", principal.leader_id) != principal.leader_id:
                return page([], 0, query)
            filters["leader_id"] = principal.leader_id
        elif (sites := principal.site_filter()) is not None:
            if "site_id" in filters and filters["site_id"] not in sites:
                return page([], 0, query)
            filters.setdefault("site_id", {"$in": sites})
        items, total = repo().reads().list_matches(org, filters, query["offset"], query["limit"])
        return page([_out(d) for d in items], total, query)


@blp.route("/matches/<match_id>")
class MatchOne(MethodView):
    @blp.response(200, schemas.MatchOut)
    def get(self, match_id):
        """One match, with its score breakdown and history (ETag)."""
        principal = require_role(*ANYONE)
        org = require_organization()
        doc = repo().reads().match(org, match_id)
        if doc is None or not handlers.can_see(principal, doc):
            abort(404, message=f"no match {match_id}")
        return _out(doc), 200, {"ETag": f'"{etag_of(doc)}"'}


@blp.route("/matches/<match_id>/accept")
class Accept(MethodView):
    @blp.response(200, schemas.MatchOut)
    def post(self, match_id):
        """Accept a proposal (the leader or a coordinator): the match becomes active."""
        principal = require_role("admin", "coordinator", "leader")
        org = require_organization()
        _if_match_sent(org, match_id)
        return _out(_audited(principal, org, "accept", lambda uow: handlers.accept(uow, org, match_id, principal)))


@blp.route("/matches/<match_id>/decline")
class Decline(MethodView):
    @blp.arguments(schemas.DeclineIn)
    @blp.response(200, schemas.MatchOut)
    def post(self, body, match_id):
        """Decline a proposal with a reason; the next best leader is proposed."""
        principal = require_role("admin", "coordinator", "leader")
        org = require_organization()
        _if_match_sent(org, match_id)
        return _out(_audited(principal, org, "decline",
                             lambda uow: handlers.decline(uow, org, match_id, principal, body["reason"])))


@blp.route("/matches/<match_id>/end")
class End(MethodView):
    @blp.arguments(schemas.EndIn)
    @blp.response(200, schemas.MatchOut)
    def post(self, body, match_id):
        """End a proposed or active match. Unless it is the member's choice, a new proposal follows."""
        principal = require_role("admin", "coordinator", "leader")
        org = require_organization()
        _if_match_sent(org, match_id)
        return _out(_audited(principal, org, "end", lambda uow: handlers.end(uow, org, match_id, principal,
                                                                             body["reason_code"], body["reason"])))


# --- members ---------------------------------------------------------------------------------------

@blp.route("/members/<member_id>/proposals")
class Proposals(MethodView):
    @blp.arguments(schemas.ProposalsQuery, location="query")
    @blp.response(200, schemas.ProposalsOut)
    def get(self, query, member_id):
        """The member's best candidate leaders now, each with its breakdown; and why others are out."""
        principal = require_role(*STAFF)
        org = require_organization()
        with answers():
            result = handlers.proposals_for(repo().reads(), org, member_id, principal, query["limit"])
        repo().reads().audit(audit_entry(principal, "read", "member_matching_candidates", member_id, org))
        return result


@blp.route("/members/<member_id>/different-leader")
class DifferentLeader(MethodView):
    @blp.arguments(schemas.DifferentLeaderIn)
    @blp.response(200, schemas.MatchOut)
    def post(self, body, member_id):
        """Record the member's request for a different leader (who passed it on, why) and propose the next."""
        principal = require_role(*STAFF)
        org = require_organization()

        def work(uow):
            ended = handlers.request_different_leader(uow, org, member_id, principal, body["reason"])
            Store(uow.db, uow.session).audit(audit_entry(principal, "update", "member_match", member_id, org,
                                                         change="different_leader"))
            return ended
        return _out(_transaction(work))


# --- overrides -------------------------------------------------------------------------------------

@blp.route("/overrides")
class Overrides(MethodView):
    @blp.arguments(schemas.OverrideQuery, location="query")
    @blp.response(200, page_schema(schemas.OverrideOut))
    def get(self, query):
        """Pins, blocks and recorded exclusions (declined, expired, ended), with who and why."""
        principal = require_role(*STAFF)
        org = require_organization()
        items = repo().reads().overrides(org, query.get("member_id"))
        if (sites := principal.site_filter()) is not None:
            allowed = {m["member_id"] for m in repo().reads().members(org, list({i["member_id"] for i in items}))
                       if m["site_id"] in sites}
            items = [i for i in items if i["member_id"] in allowed]
        chosen = items[query["offset"]:query["offset"] + query["limit"]]
        return page([_out(i) for i in chosen], len(items), query)

    @blp.arguments(schemas.OverrideIn)
    @blp.response(201, schemas.OverrideOut)
    def post(self, body):
        """Pin (propose this leader now) or block (never this leader) a pairing, with the reason."""
        principal = require_role(*STAFF)
        org = require_organization()

        def work(uow):
            made = handlers.add_override(uow, org, principal, body["member_id"], body["leader_id"], body["kind"],
                                         body["reason"])
            Store(uow.db, uow.session).audit(audit_entry(principal, "update", "member_match", body["member_id"], org,
                                                         change=body["kind"]))
            return made
        return _out(_transaction(work))


@blp.route("/overrides/<override_id>")
class OverrideOne(MethodView):
    @blp.response(204)
    def delete(self, override_id):
        """Lift a pin or a block (recorded: who lifted it and when; the audit log has the entry). A lifted block
        makes the leader eligible again; a waiting member is considered again at once."""
        principal = require_role(*STAFF)
        org = require_organization()

        def work(uow):
            lifted = handlers.lift_override(uow, org, principal, override_id)
            Store(uow.db, uow.session).audit(audit_entry(principal, "update", "member_match", lifted["member_id"], org,
                                                         change=f"lift_{lifted['kind']}", override_id=override_id))
            return lifted
        _transaction(work)
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
        sites = principal.site_filter()
        if query.get("site_id"):
            if sites is not None and query["site_id"] not in sites:
                return page([], 0, query)
            sites = [query["site_id"]]
        items, total = repo().reads().list_waitlist(org, sites, query["offset"], query["limit"])
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
        run = _transaction(lambda uow: handlers.start_batch_run(uow, org, principal, body["site_id"]))
        return _out(run), 202, {"Location": f"/v1/batch-runs/{run['_id']}"}

    @blp.arguments(schemas.PageQuery, location="query")
    @blp.response(200, page_schema(schemas.BatchRunOut))
    def get(self, query):
        """Batch runs, newest first (without their unmatched lists)."""
        principal = require_role(*STAFF)
        org = require_organization()
        items, total = repo().reads().list_batch_runs(org, 0, 10_000)
        if (sites := principal.site_filter()) is not None:
            items = [i for i in items if i.get("site_id") in sites]
            total = len(items)
        items = items[query["offset"]:query["offset"] + query["limit"]]
        return page([_out(i) for i in items], total, query)


@blp.route("/batch-runs/<run_id>")
class BatchRunOne(MethodView):
    @blp.response(200, schemas.BatchRunOut)
    def get(self, run_id):
        """A batch run's result: how many matched, the total score, who stays waiting and why."""
        principal = require_role(*STAFF)
        org = require_organization()
        run = repo().reads().batch_run(org, run_id)
        if run is None or (run.get("site_id") is None and not principal.is_admin) or (
                run.get("site_id") is not None and not principal.can_access_site(run["site_id"])):
            abort(404, message=f"no batch run {run_id}")
        return _out(run)


# --- organization settings -------------------------------------------------------------------------

def _settings_out(org: str) -> tuple[dict, str]:
    st = repo().reads()
    doc = st.org_settings(org)
    pol = handlers.policy(st, org)
    body = {"weights": pol["raw_weights"], "points": pol["weights"], "proposal_ttl_hours": pol["proposal_ttl_hours"],
            "waitlist_alert_days": pol["waitlist_alert_days"]}
    return body, etag_of({"_id": org, "version": doc.get("version", 0)})


@blp.route("/settings")
class OrgSettings(MethodView):
    @blp.response(200, schemas.SettingsOut)
    def get(self):
        """The organization's score weights (and as points out of 100) and timings (ETag)."""
        require_role(*STAFF)
        org = require_organization()
        body, etag = _settings_out(org)
        return body, 200, {"ETag": f'"{etag}"'}

    @documents_if_match(blp)
    @blp.arguments(schemas.SettingsIn)
    @blp.response(200, schemas.SettingsOut)
    def put(self, body):
        """Set weights (any scale; only their ratios count) and timings. Admins only; send If-Match."""
        require_role("admin")
        org = require_organization()
        version = repo().reads().org_settings(org).get("version", 0)
        require_if_match(etag_of({"_id": org, "version": version}))
        _transaction(lambda uow: handlers.save_settings(uow, org, body, version))
        out, etag = _settings_out(org)
        return out, 200, {"ETag": f'"{etag}"'}
