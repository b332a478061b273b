"""HTTP edge of self-service (``/v1/me``): each person's own world, by the role of their token
(``handlers.me``). A blueprint of its own beside ``api``, with the same shape: validate, open the unit of
work (every read of a member's record is audited, so reads open one too), call the handler, answer.

    GET/PATCH /v1/me                    the caller's own record (member, leader, staff, operator)
    GET/POST /v1/me/consents            a member's consents in force; give one
    DELETE /v1/me/consents/{purpose}    a member revokes one (platform-wide, as staff revocations)
    GET/PATCH /v1/me/plan               a member's plan, when the organization shares it; share its goal
    GET /v1/me/screenings               a member's screening results, when the organization shares them
    GET /v1/me/leader                   a member's peer leader, or why they are waiting
    GET /v1/me/export                   everything intake holds about the member (JSON)
    GET /v1/me/members[/{member_id}]    a leader's minimum-necessary view of the members matched with them
    PUT/DELETE /v1/me/stretched         a leader says they are stretched (new proposals pause), or lifts it
"""
from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView

from shared.web import Blueprint, require_organization, require_role
from shared.web.pages import etag_of, page, page_schema, require_if_match

from intake import schemas, schemas_me
from intake.handlers import leaders, me

blp = Blueprint("self_service", __name__, url_prefix="/v1",
                description="Self-service: what members, peer leaders and staff see and change of their own.")

ANY_PERSON = ("operator", "admin", "coordinator", "leader", "member", "service")


def _in_transaction(work):
    return current_app.extensions["intake.repository"].transaction(work)


def _reader():
    """Reads, each audited read writing its entry before it answers (intake.api's _reader)."""
    return current_app.extensions["intake.repository"].reader()


def _principal(*roles):
    principal = require_role(*roles)
    if principal.role != "operator":
        require_organization()
    return principal


def _if_match_when_sent(doc: dict) -> None:
    """As in ``api``: a change honours If-Match when the caller sends it (412 when stale)."""
    if request.headers.get("If-Match"):
        require_if_match(etag_of(doc))


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, schemas_me.MeOut)
    def get(self):
        """Who you are: your role and organization, and your own record — a member's profile (what they
        gave, consents in force, site, status), a leader's profile, a staff member's staff record."""
        principal = _principal(*ANY_PERSON)
        return me.whoami(_reader(), principal)

    @blp.arguments(schemas_me.MePatch)
    @blp.response(200, schemas_me.MeOut)
    def patch(self, data):
        """Change what is yours to change: a member their preferred name, pronouns, languages, contact
        channels and availability; a leader their bio, languages and availability (If-Match honoured
        when sent). Status, site, flags, capacity and certifications are refused."""
        principal = _principal("leader", "member")
        return _in_transaction(lambda uow: me.update_me(uow, principal, data, _if_match_when_sent))


@blp.route("/me/consents")
class MyConsents(MethodView):
    @blp.response(200, schemas_me.MyConsentOut(many=True))
    def get(self):
        """Your consents in force (members)."""
        principal = _principal("member")
        return me.my_consents(_reader(), principal)

    @blp.arguments(schemas_me.MyConsentIn)
    @blp.response(201, schemas_me.MyConsentOut(many=True))
    def post(self, data):
        """Give a consent (members): announced to the platform as every consent is, recorded as given by
        you. ``share:leader`` lets the peer leader you are matched with see your email and phone."""
        principal = _principal("member")
        return _in_transaction(lambda uow: me.give_consent(uow, principal, data))


@blp.route("/me/consents/<path:purpose>")
class MyConsent(MethodView):
    @blp.response(200, schemas_me.MyConsentOut(many=True))
    def delete(self, purpose):
        """Revoke a consent (members): it stops everywhere on the platform, as when staff record it."""
        principal = _principal("member")
        return _in_transaction(lambda uow: me.revoke_consent(uow, principal, purpose))


@blp.route("/me/plan")
class MyPlan(MethodView):
    @blp.response(200, schemas_me.PlanOut)
    def get(self):
        """Your person-centred plan (members), when your organization shares plans (403 when not)."""
        principal = _principal("member")
        return me.my_plan(_reader(), principal)

    @blp.arguments(schemas_me.PlanSharingIn)
    @blp.response(200, schemas_me.PlanOut)
    def patch(self, data):
        """Show your plan's goal to the peer leader you are matched with, or stop showing it (members)."""
        principal = _principal("member")
        return _in_transaction(lambda uow: me.share_plan(uow, principal, data["shared_with_leader"]))


@blp.route("/me/screenings")
class MyScreenings(MethodView):
    @blp.arguments(schemas_me.MyScreeningQuery, location="query")
    @blp.response(200, page_schema(schemas_me.MyScreeningOut))
    def get(self, query):
        """Your screenings' results (members), when your organization shares scores (403 when not)."""
        principal = _principal("member")
        items, total = me.my_screenings(_reader(), principal, query)
        return page(items, total, query)


@blp.route("/me/leader")
class MyLeader(MethodView):
    @blp.response(200, schemas_me.MyLeaderOut)
    def get(self):
        """Your peer leader (members): first name, languages and the bio they share, for the match in
        force (proposed, accepted or active); or ``waiting`` and why."""
        principal = _principal("member")
        return me.my_leader(_reader(), principal)


@blp.route("/me/export")
class MyExport(MethodView):
    @blp.response(200, schemas_me.ExportOut)
    def get(self):
        """Everything intake holds about you (members; right of access): your record, consents and their
        history, screenings, plan and its revisions, the matches intake knows of, and who read or
        changed your record."""
        principal = _principal("member")
        return _in_transaction(lambda uow: me.export(uow, principal))


@blp.route("/me/members")
class MyMembers(MethodView):
    @blp.response(200, schemas_me.MatchedMemberOut(many=True))
    def get(self):
        """The members you are matched with now (peer leaders), minimum necessary: name, languages,
        availability, the goal they shared, contact details only if they gave ``share:leader``."""
        principal = _principal("leader")
        return me.my_members(_reader(), principal)


@blp.route("/me/members/<member_id>")
class MyMember(MethodView):
    @blp.response(200, schemas_me.MatchedMemberOut)
    def get(self, member_id):
        """One member you are matched with now (peer leaders); 404 for anyone else, and once the match ends."""
        principal = _principal("leader")
        return me.my_member(_reader(), principal, member_id)


@blp.route("/me/stretched")
class MyStretched(MethodView):
    @blp.arguments(schemas.StretchedIn)
    @blp.response(200, schemas.LeaderOut)
    def put(self, data):
        """Say you are stretched (peer leaders): no new members are proposed to you until you (or your
        coordinator) lift it; the members you have stay with you. The coordinators of your sites are told
        privately; ``note`` is for them only. Saying it again keeps the date and changes the note."""
        principal = _principal("leader")
        return _in_transaction(lambda uow: leaders.say_stretched(uow, principal, data.get("note")))

    @blp.response(200, schemas.LeaderOut)
    def delete(self):
        """You are ready for new members again (peer leaders): proposals to you resume."""
        principal = _principal("leader")
        return _in_transaction(lambda uow: leaders.lift_stretched(uow, principal, principal.leader_id))
