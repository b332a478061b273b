"""HTTP edge of the intake service: Blueprint + MethodView; validates, opens the unit of work (or a
reader), calls a handler, answers. Who may call what: the roles each view names (``access``), then the
handler's ``access`` checks of the record itself.
"""
from __future__ import annotations

from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import abort

from shared.clock import utcnow
from shared.web import Blueprint, require_organization, require_role
from shared.web.pages import PageQuery, etag_of, page, page_of_fields, page_schema, documents_if_match, require_if_match

from intake import model, schemas
from intake.handlers import signin, staff as staff_access
from shared.web import public
from intake.access import ANYONE_OF_THE_ORGANIZATION, READERS, STAFF
from intake.handlers import consents, imports, leaders, members, organizations, screenings

blp = Blueprint("intake", __name__, url_prefix="/v1",
                description="Organizations, sites, members, peer leaders, consents, screenings and plans.")


def _repo():
    """shared.repository.Repository with intake's Store (app.py): ``transaction(work)`` for changes,
    ``reader()`` for reads (an audited read writes its entry after the read, before it answers)."""
    return current_app.extensions["intake.repository"]


def _in_transaction(work):
    return _repo().transaction(work)


def _reader():
    return _repo().reader()


def _settings():
    return current_app.extensions["intake.settings"].platform


def _principal(*roles):
    principal = require_role(*roles)
    if principal.role != "operator":
        require_organization()
    return principal


def _etag_headers(doc: dict) -> dict:
    return {"ETag": f'"{etag_of(doc)}"'}


def _if_match(doc: dict) -> None:
    require_if_match(etag_of(doc))


def _if_match_when_sent(doc: dict) -> None:
    """Other changes honour If-Match when the caller sends it (412 when stale) but do not require it."""
    if request.headers.get("If-Match"):
        require_if_match(etag_of(doc))


# --- organizations -------------------------------------------------------------------------------

@blp.route("/organizations")
class Organizations(MethodView):
    @blp.arguments(schemas.OrganizationIn)
    @blp.response(201, schemas.OrganizationOut)
    def post(self, data):
        """Create an organization (platform operators)."""
        principal = _principal("operator")
        return _in_transaction(lambda uow: organizations.create_organization(uow, principal, data))


@blp.route("/organizations/<organization_id>")
class Organization(MethodView):
    @blp.response(200, schemas.OrganizationOut)
    def get(self, organization_id):
        """An organization (operators, and the organization's own staff)."""
        principal = _principal("operator", *ANYONE_OF_THE_ORGANIZATION)
        org = organizations.get_organization(_reader(), principal, organization_id)
        return org, _etag_headers(org)

    @documents_if_match(blp)
    @blp.arguments(schemas.OrganizationPatch)
    @blp.response(200, schemas.OrganizationOut)
    def patch(self, data, organization_id):
        """Change the name, youth policy or default language (operators, the organization's admins;
        If-Match required)."""
        principal = _principal("operator", "admin")
        org = _in_transaction(lambda uow: organizations.update_organization(uow, principal, organization_id, data,
                                                                          _if_match))
        return org, _etag_headers(org)


@blp.route("/organizations/<organization_id>/admin-tokens")
class AdminTokens(MethodView):
    @blp.arguments(schemas.TokenIn)
    @blp.response(201, schemas.TokenOut)
    def post(self, data, organization_id):
        """Issue an organization-admin token (platform operators)."""
        principal = _principal("operator")
        return organizations.issue_admin_token(_reader(), principal, organization_id, data["ttl_seconds"],
                                               current_app.extensions["intake.token_keys"])


# --- sites -----------------------------------------------------------------------------------------

@blp.route("/sites")
class Sites(MethodView):
    @blp.arguments(PageQuery, location="query")
    @blp.response(200, page_schema(schemas.SiteOut))
    def get(self, query):
        """Sites of the organization (coordinators: their sites)."""
        principal = _principal(*ANYONE_OF_THE_ORGANIZATION)
        items, total = organizations.list_sites(_reader(), principal, query)
        return page(items, total, query)

    @blp.arguments(schemas.SiteIn)
    @blp.response(201, schemas.SiteOut)
    def post(self, data):
        """Add a site (organization admins)."""
        principal = _principal("admin")
        site = _in_transaction(lambda uow: organizations.create_site(uow, principal, data))
        return site, _etag_headers(site)


@blp.route("/sites/<site_id>")
class Site(MethodView):
    @blp.response(200, schemas.SiteOut)
    def get(self, site_id):
        principal = _principal(*ANYONE_OF_THE_ORGANIZATION)
        site = organizations.get_site(_reader(), principal, site_id)
        return site, _etag_headers(site)

    @documents_if_match(blp)
    @blp.arguments(schemas.SitePatch(partial=True))
    @blp.response(200, schemas.SiteOut)
    def patch(self, data, site_id):
        """Change a site (If-Match required; organization admins)."""
        principal = _principal("admin")
        site = _in_transaction(lambda uow: organizations.update_site(uow, principal, site_id, data, _if_match))
        return site, _etag_headers(site)


# --- staff -----------------------------------------------------------------------------------------

@blp.route("/staff")
class StaffList(MethodView):
    @blp.arguments(PageQuery, location="query")
    @blp.response(200, page_schema(schemas.StaffOut))
    def get(self, query):
        principal = _principal("admin")
        items, total = organizations.list_staff(_reader(), principal, query)
        return page(items, total, query)

    @blp.arguments(schemas.StaffIn)
    @blp.response(201, schemas.StaffOut)
    def post(self, data):
        """Add a site coordinator (organization admins): announces CoordinatorAssigned and their contact."""
        principal = _principal("admin")
        return _in_transaction(lambda uow: organizations.create_staff(uow, principal, data))


@blp.route("/staff/<staff_id>")
class StaffMember(MethodView):
    @blp.response(200, schemas.StaffOut)
    def get(self, staff_id):
        principal = _principal("admin")
        staff = organizations.get_staff(_reader(), principal, staff_id)
        return staff, _etag_headers(staff)

    @documents_if_match(blp)
    @blp.arguments(schemas.StaffPatch(partial=True))
    @blp.response(200, schemas.StaffOut)
    def patch(self, data, staff_id):
        """Change a coordinator's sites or contact (If-Match required)."""
        principal = _principal("admin")
        staff = _in_transaction(lambda uow: organizations.update_staff(uow, principal, staff_id, data, _if_match))
        return staff, _etag_headers(staff)


@blp.route("/staff/<staff_id>/tokens")
class StaffTokens(MethodView):
    @blp.arguments(schemas.TokenIn)
    @blp.response(201, schemas.TokenOut)
    def post(self, data, staff_id):
        """Issue a coordinator token for the staff member's sites (organization admins)."""
        principal = _principal("admin")
        return organizations.issue_staff_token(_reader(), principal, staff_id, data["ttl_seconds"],
                                               current_app.extensions["intake.token_keys"])


# --- signing in (public) and staff access -----------------------------------------------------------

def _intake_settings():
    return current_app.extensions["intake.settings"]


@public
@blp.route("/sign-in")
class SignIn(MethodView):
    @blp.arguments(schemas.SignInIn)
    @blp.response(202, schemas.SignInAcceptedOut)
    @blp.alt_response(429, description="Too many requests for this address or from this client; see Retry-After.")
    def post(self, data):
        """Ask for a sign-in code by email (or by SMS with a phone). No token needed. Always 202 with the same
        body: whether the address belongs to anyone is never told. When it belongs to people who may sign
        in (in any organization), a one-time code valid 15 minutes is sent to it (a link to the console's
        callback and the code to type). Rate-limited per address and per client address (429)."""
        s, now = _intake_settings(), utcnow()
        address = signin.count_request(_reader(), s, data, request.remote_addr, now)
        return _in_transaction(lambda uow: signin.request_code(uow, s, address, now))


@public
@blp.route("/sign-in/token")
class SignInToken(MethodView):
    @blp.arguments(schemas.SignInTokenIn)
    @blp.response(200, schemas.SignInTokenOut)
    @blp.alt_response(400, description="The code was used, expired or never existed (type "
                                       f"{model.INVALID_CODE}).")
    @blp.alt_response(409, schema=schemas.ChooseOrganizationProblem, content_type="application/problem+json",
                      description="The code opens several organizations (or roles): ask again with organization_id "
                                  "(and role) from ``choices``; the code is not used up.")
    @blp.alt_response(429, description="Too many attempts from this client; see Retry-After.")
    def post(self, data):
        """Exchange a sign-in code (typed, or the link's token) for a bearer token. No token needed. A code
        is accepted once, even by racing requests."""
        s, now = _intake_settings(), utcnow()
        signin.count_exchange(_reader(), s, request.remote_addr, now)
        keys = current_app.extensions["intake.token_keys"]
        return _in_transaction(lambda uow: signin.exchange(uow, s, keys, data, now))


@blp.route("/staff/invitations")
class StaffInvitations(MethodView):
    @blp.arguments(schemas.StaffInvitationIn)
    @blp.response(201, schemas.StaffOut)
    def post(self, data):
        """Invite staff by email as admin, or as coordinator of the sites named (organization admins): a staff
        record with status invited (or the existing one with that email), and an email with a sign-in link."""
        principal = _principal("admin")
        return _in_transaction(lambda uow: staff_access.invite(uow, principal, _intake_settings(), data, utcnow()))


@blp.route("/staff/<staff_id>/deactivate")
class StaffDeactivation(MethodView):
    @blp.response(200, schemas.StaffOut)
    def post(self, staff_id):
        """Deactivate a staff member (organization admins): status inactive, every token they hold stops
        working, and they cannot sign in again until invited again."""
        principal = _principal("admin")
        staff = _in_transaction(lambda uow: staff_access.deactivate(uow, principal, staff_id, utcnow()))
        current_app.extensions["auth.revocations"].forget(f"staff:{staff_id}")  # at once in this process
        return staff


# --- members ---------------------------------------------------------------------------------------

def _not_modified(doc: dict):
    """A conditional read (If-None-Match with the current ETag) answers 304 without a body."""
    sent = request.headers.get("If-None-Match")
    if request.method == "GET" and sent:
        tags = {t.strip().removeprefix("W/").strip('"') for t in sent.split(",")}
        if etag_of(doc) in tags or "*" in tags:
            return Response(status=304, headers=_etag_headers(doc))
    return None


def _member_view(member: dict) -> dict:
    return model.member_view(member, utcnow())


def _member_out(member: dict):
    return _not_modified(member) or (_member_view(member), _etag_headers(member))


@blp.route("/members")
class Members(MethodView):
    @blp.arguments(schemas.MemberQuery, location="query")
    @blp.response(200, page_schema(schemas.MemberOut))
    def get(self, query):
        """Members, filterable by site, status, open risk flag, name, or a list of ids (coordinators: their
        sites). With ``ids``, each member answered is audited as a read, as ``GET /v1/members/{member_id}`` is."""
        principal = _principal(*READERS)
        items, total = members.list_members(_reader(), principal, query)
        if query.get("only"):   # ?fields=: the rest of each record is never serialised
            return page_of_fields(schemas.MemberOut, [_member_view(m) for m in items], total, query,
                                  ["id", *query["only"]])
        return page([_member_view(m) for m in items], total, query)

    @blp.arguments(schemas.MemberIn)
    @blp.response(201, schemas.MemberOut)
    def post(self, data):
        """Register a member. The same email or phone twice in one organization answers 409 with
        ``existing`` pointing at the record that has it."""
        principal = _principal(*STAFF)
        return _member_out(_in_transaction(lambda uow: members.register(uow, principal, data)))


@blp.route("/members/<member_id>")
class Member(MethodView):
    @blp.arguments(schemas.MemberReadQuery, location="query")
    @blp.response(200, schemas.MemberReadOut)
    def get(self, query, member_id):
        """A member's record; with ``include``, parts of it that have their own lists (the console's member
        page in one call). The ETag is the member's own, for If-Match; with ``include`` there is no 304."""
        principal = _principal(*READERS)
        if not query.get("include"):
            return _member_out(members.get(_reader(), principal, member_id))
        member, parts = members.get_with(_reader(), principal, member_id, query["include"],
                                         screenings=schemas.INCLUDED_SCREENINGS)
        if "screenings" in parts:
            items, total = parts["screenings"]
            parts["screenings"] = page(items, total, {"limit": schemas.INCLUDED_SCREENINGS, "offset": 0})
        if "consent_history" in parts:
            parts["consent_history"] = _consent_history_view(parts["consent_history"])
        return {**_member_view(member), "included": parts}, _etag_headers(member)

    @documents_if_match(blp)
    @blp.arguments(schemas.MemberPatch(partial=True))
    @blp.response(200, schemas.MemberOut)
    def patch(self, data, member_id):
        """Change a member's profile, recovery profile or preferences (If-Match required)."""
        principal = _principal(*STAFF)
        return _member_out(_in_transaction(lambda uow: members.update(uow, principal, member_id, data, _if_match)))


@blp.route("/members/<member_id>/consents")
class Consents(MethodView):
    @blp.response(200, schemas.ConsentOut(many=True))
    def get(self, member_id):
        """The member's consents, in force or not."""
        principal = _principal(*READERS)
        return _member_view(members.get(_reader(), principal, member_id))["consents"]

    @blp.arguments(schemas.ConsentGrantIn)
    @blp.response(201, schemas.MemberOut)
    def post(self, data, member_id):
        """Record a consent (who recorded it and when are kept; optional expiry)."""
        principal = _principal(*STAFF)
        return _member_out(_in_transaction(lambda uow: consents.grant(uow, principal, member_id, data,
                                                                      _if_match_when_sent)))


@blp.route("/members/<member_id>/consents/<path:purpose>")
class Consent(MethodView):
    @blp.response(200, schemas.MemberOut)
    def delete(self, member_id, purpose):
        """Revoke a consent: announced as MemberConsentChanged (granted false)."""
        principal = _principal(*STAFF)
        return _member_out(_in_transaction(lambda uow: consents.revoke(uow, principal, member_id, purpose,
                                                                       _if_match_when_sent)))


@blp.route("/members/<member_id>/consent-history")
class ConsentHistory(MethodView):
    @blp.response(200)
    def get(self, member_id):
        """Every grant, revocation and expiry of the member's consents, oldest first."""
        principal = _principal(*READERS)
        return _consent_history_view(consents.history(_reader(), principal, member_id))


def _consent_history_view(entries: list[dict]) -> list[dict]:
    return [{**e, "at": e["at"].isoformat(), "expires_at": e["expires_at"].isoformat() if e.get("expires_at") else None}
            for e in entries]


@blp.route("/members/<member_id>/status")
class MemberStatus(MethodView):
    @blp.arguments(schemas.MemberStatusIn)
    @blp.response(200, schemas.MemberOut)
    def post(self, data, member_id):
        """Move a member through pending_consent -> active -> paused / discharged / graduated."""
        principal = _principal(*STAFF)
        return _member_out(_in_transaction(lambda uow: members.change_status(
            uow, principal, member_id, data["to_status"], data["reason"], _if_match_when_sent)))


@blp.route("/members/<member_id>/transfer")
class MemberTransfer(MethodView):
    @blp.arguments(schemas.TransferIn)
    @blp.response(200, schemas.MemberOut)
    def post(self, data, member_id):
        """Move a member to another site (coordinators need both sites)."""
        principal = _principal(*STAFF)
        return _member_out(_in_transaction(lambda uow: members.transfer(uow, principal, member_id, data,
                                                                        _if_match_when_sent)))


@blp.route("/members/<member_id>/erasure")
class MemberErasure(MethodView):
    @blp.arguments(schemas.ErasureIn)
    @blp.response(200, schemas.ErasureOut)
    def post(self, data, member_id):
        """Erase a member on request (organization admins): identifying data removed, member.erased
        announced, contact tombstoned; the audit entry keeps no erased value."""
        principal = _principal("admin")
        return _in_transaction(lambda uow: members.erase(uow, principal, member_id, data["reason"]))


@blp.route("/members/<member_id>/flags/<flag>")
class MemberFlag(MethodView):
    @blp.response(200, schemas.MemberOut)
    def delete(self, member_id, flag):
        """Resolve an open flag (for example ``risk`` after the coordinator followed up)."""
        principal = _principal(*STAFF)
        return _member_out(_in_transaction(lambda uow: screenings.resolve_flag(uow, principal, member_id, flag)))


@blp.route("/members/<member_id>/screenings")
class Screenings(MethodView):
    @blp.arguments(schemas.ScreeningQuery, location="query")
    @blp.response(200, page_schema(schemas.ScreeningOut))
    def get(self, query, member_id):
        principal = _principal(*READERS)
        items, total = screenings.list_screenings(_reader(), principal, member_id, query)
        return page(items, total, query)

    @blp.arguments(schemas.ScreeningIn)
    @blp.response(201, schemas.ScreeningOut)
    def post(self, data, member_id):
        """Record a screening from its item answers; the service computes total and band, and a
        positive PHQ-2 or a severe band flags the member for the site coordinator."""
        principal = _principal(*STAFF)
        return _in_transaction(lambda uow: screenings.record(uow, principal, member_id, data))


@blp.route("/members/<member_id>/plan")
class Plan(MethodView):
    @blp.response(200, schemas.PlanOut)
    def get(self, member_id):
        principal = _principal(*READERS)
        plan = members.get(_reader(), principal, member_id).get("plan")
        if plan is None:
            abort(404, message="The member has no plan yet.")
        return plan

    @blp.arguments(schemas.PlanIn)
    @blp.response(200, schemas.PlanOut)
    def put(self, data, member_id):
        """Set the person-centred plan (a new revision; earlier ones stay in the history)."""
        principal = _principal(*STAFF)
        return _in_transaction(lambda uow: screenings.revise_plan(uow, principal, member_id, data, _if_match_when_sent))


@blp.route("/members/<member_id>/plan/history")
class PlanHistory(MethodView):
    @blp.response(200, schemas.PlanOut(many=True))
    def get(self, member_id):
        """Every revision of the plan, newest first."""
        principal = _principal(*READERS)
        return screenings.plan_history(_reader(), principal, member_id)


# --- imports ---------------------------------------------------------------------------------------

@blp.route("/sites/<site_id>/imports")
class Imports(MethodView):
    @blp.doc(requestBody=schemas.IMPORT_REQUEST_BODY)
    @blp.response(201, schemas.ImportOut)
    def post(self, site_id):
        """Bulk-register members of a site from CSV (header = member fields, lists separated by ';',
        availability as 'mon 18:00-20:00') or JSON lines (one member object a line). Idempotent by
        external_id; the answer reports each row: created, updated, unchanged or rejected (and why)."""
        principal = _principal(*STAFF)
        body, fmt = _upload()
        try:
            rows = schemas.parse_import(body, fmt)
        except schemas.RowError as exc:
            abort(422, message="The upload cannot be read.", errors=exc.errors)
        limit = current_app.extensions["intake.settings"].import_max_rows
        if len(rows) > limit:
            abort(413, message=f"An upload holds at most {limit} rows; this one has {len(rows)}. Split it.",
                  errors={"file": [f"More than {limit} rows."]})
        return imports.import_members(_reader(), _in_transaction, principal, site_id, fmt, rows, schemas.load_import_row)


def _upload() -> tuple[bytes, str]:
    content_type = (request.mimetype or "").lower()
    if content_type == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            abort(422, message="Send the file in the form field 'file'.", errors={"file": ["Missing."]})
        name = (upload.filename or "").lower()
        fmt = "jsonl" if name.endswith((".jsonl", ".ndjson")) else "csv"
        return upload.read(), schemas.IMPORT_FORMATS.get((upload.mimetype or "").lower(), fmt)
    fmt = schemas.IMPORT_FORMATS.get(content_type)
    if fmt is None:
        abort(415, message="Send text/csv, application/x-ndjson or a multipart form with 'file'.")
    return request.get_data(), fmt


@blp.route("/imports/<import_id>")
class Import(MethodView):
    @blp.response(200, schemas.ImportOut)
    def get(self, import_id):
        principal = _principal(*STAFF)
        return imports.get_import(_reader(), principal, import_id)


# --- leaders ---------------------------------------------------------------------------------------

def _leader_view(leader: dict, principal=None) -> dict:
    view = {**leader, "certifications_current": model.certifications_current(leader.get("certifications") or [],
                                                                             utcnow().date())}
    if principal is not None and principal.role == "service" and leader.get("stretched"):
        view["stretched"] = {**leader["stretched"], "note": None}  # the leader's note is for staff only
    return view


def _leader_out(leader: dict, principal=None):
    return _not_modified(leader) or (_leader_view(leader, principal), _etag_headers(leader))


@blp.route("/leaders")
class Leaders(MethodView):
    @blp.arguments(schemas.LeaderQuery, location="query")
    @blp.response(200, page_schema(schemas.LeaderOut))
    def get(self, query):
        """Peer leaders (coordinators: those serving their sites; a leader: themselves)."""
        principal = _principal(*ANYONE_OF_THE_ORGANIZATION)
        items, total = leaders.list_leaders(_reader(), principal, query)
        if query.get("only"):   # ?fields=: the rest of each record is never serialised
            return page_of_fields(schemas.LeaderOut, [_leader_view(i, principal) for i in items], total, query,
                                  ["id", *query["only"]])
        return page([_leader_view(i, principal) for i in items], total, query)

    @blp.arguments(schemas.LeaderIn)
    @blp.response(201, schemas.LeaderOut)
    def post(self, data):
        """Register a peer leader (their sites must be the caller's)."""
        principal = _principal(*STAFF)
        return _leader_out(_in_transaction(lambda uow: leaders.register(uow, principal, data)))


@blp.route("/leaders/<leader_id>")
class Leader(MethodView):
    @blp.response(200, schemas.LeaderOut)
    def get(self, leader_id):
        principal = _principal(*ANYONE_OF_THE_ORGANIZATION)
        return _leader_out(leaders.get(_reader(), principal, leader_id), principal)

    @documents_if_match(blp)
    @blp.arguments(schemas.LeaderPatch(partial=True))
    @blp.response(200, schemas.LeaderOut)
    def patch(self, data, leader_id):
        """Change a leader's profile, certifications, capacity or availability (If-Match required)."""
        principal = _principal("admin", "coordinator", "leader")
        return _leader_out(_in_transaction(lambda uow: leaders.update(uow, principal, leader_id, data, _if_match)))


@blp.route("/leaders/<leader_id>/status")
class LeaderStatus(MethodView):
    @blp.arguments(schemas.LeaderStatusIn)
    @blp.response(200, schemas.LeaderOut)
    def post(self, data, leader_id):
        """active / on_leave / retired; leaving active announces LeaderDeactivated. A peer leader may put
        themself on leave and come back (``on_leave`` / ``active``, their own id only); retiring is staff's."""
        principal = _principal(*STAFF, "leader")
        return _leader_out(_in_transaction(lambda uow: leaders.change_status(
            uow, principal, leader_id, data["to_status"], data["reason"], _if_match_when_sent)))


@blp.route("/leaders/<leader_id>/stretched")
class LeaderStretched(MethodView):
    @blp.response(200, schemas.LeaderOut)
    def delete(self, leader_id):
        """Lift the pause on new proposals a peer leader asked for by saying they are stretched (an admin, a
        coordinator of one of the leader's sites, or the leader themself): matching may propose to them again."""
        principal = _principal(*STAFF, "leader")
        return _leader_out(_in_transaction(lambda uow: leaders.lift_stretched(uow, principal, leader_id)))


# --- audit -----------------------------------------------------------------------------------------

@blp.route("/audit-log")
class AuditLog(MethodView):
    @blp.arguments(schemas.AuditQuery, location="query")
    @blp.response(200, page_schema(schemas.AuditOut))
    def get(self, query):
        """Who read or changed which record, when (organization admins). Entries hold ids and field
        names, never values."""
        principal = _principal("admin")
        items, total = organizations.read_audit_log(_reader(), principal, query)
        return page(items, total, query)
