"""HTTP edge of the scheduling service: Blueprint + MethodView; validates, calls a handler, answers.

Roles: admins manage everything of their organization; coordinators the meetings and members of
their sites; leaders read meetings, change occurrences and record attendance for meetings they
facilitate, and book their own sessions; service accounts act for members (registrations, bookings);
a member (MEMBER_TOO routes only) sees the meetings open to them, registers and cancels themself, and
books, reschedules and cancels their own sessions (the rules are in access.py).
Feeds under /v1/feeds are public (the Meeting Guide JSON, a site's public calendar) or protected by
a personal feed token or a bearer token (a member's or a leader's calendar).
"""
from __future__ import annotations

from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest import abort

from shared.web import Blueprint, public, require_organization, require_role
from shared.web.auth import verify_bearer
from shared.web.pages import etag_header, etag_of, page, page_schema, documents_if_match, require_if_match

from scheduling import schemas
from scheduling.handlers import feeds, meetings, members, occurrences, registrations, sessions

blp = Blueprint("scheduling", __name__, url_prefix="/v1",
                description="Peer-led group meetings, one-on-one sessions, reminders and feeds.")

ORG_ROLES = ("admin", "coordinator", "leader", "service")
STAFF = ("admin", "coordinator", "service")
MEMBER_TOO = ORG_ROLES + ("member",)  # routes a member may use too, each for their own things only
ICS = "text/calendar; charset=utf-8"
# The feeds' bodies as documented (their views build the Response themselves; nothing is dumped with these).
CALENDAR_DOC = {"type": "string", "description": "An iCalendar (RFC 5545) document."}
MEETING_GUIDE_DOC = {"type": "array", "items": {"type": "object"},
                     "description": "Meeting Guide listings (code4recovery meeting-guide spec)."}


def _repo():
    return current_app.extensions["scheduling.repository"]


def _write(use_case, *args):
    """Run a use case in one unit of work: the view is the entry point, so it opens the transaction."""
    return _repo().transaction(lambda uow: use_case(uow, *args))


def _read(use_case, *args, **kwargs):
    """Run a read-only use case on a plain reader (no transaction)."""
    return use_case(_repo().reader(), *args, **kwargs)


def _settings():
    return current_app.extensions["scheduling.settings"]


def _principal(*roles):
    principal = require_role(*(roles or ORG_ROLES))
    require_organization()
    return principal


# --- meetings -------------------------------------------------------------------------------------

@blp.route("/meetings")
class Meetings(MethodView):
    @blp.arguments(schemas.MeetingQuery, location="query")
    @blp.response(200, page_schema(schemas.MeetingOut))
    def get(self, query):
        """Meetings of the organization (coordinators: their sites and online ones; members: public meetings
        at their site and public online or hybrid ones)."""
        principal = _principal(*MEMBER_TOO)
        items, total = _read(meetings.list_meetings, principal, site_id=query.get("site_id"),
                             leader_id=query.get("leader_id"), status=query["status"],
                             skip=query["offset"], limit=query["limit"],
                             for_peer_providers=query.get("for_peer_providers"))
        return page(items, total, query)

    @blp.arguments(schemas.MeetingIn)
    @blp.response(201, schemas.MeetingOut)
    def post(self, body):
        """Create a recurring meeting. A facilitator who is busy at one of its times is refused (409)."""
        principal = _principal("admin", "coordinator", "service")
        meeting = _write(meetings.create_meeting, _settings(), principal, body)
        return meeting, etag_header(meeting)


@blp.route("/meetings/<meeting_id>")
class MeetingItem(MethodView):
    @blp.response(200, schemas.MeetingOut)
    def get(self, meeting_id):
        meeting = _read(meetings.get_meeting, _principal(*MEMBER_TOO), meeting_id)
        return meeting, etag_header(meeting)

    @documents_if_match(blp)
    @blp.arguments(schemas.MeetingPatch(partial=True))
    @blp.response(200, schemas.MeetingOut)
    def patch(self, body, meeting_id):
        """Change a meeting (send If-Match with the ETag you read)."""
        principal = _principal("admin", "coordinator", "service")
        meeting = _write(meetings.update_meeting, _settings(), principal, meeting_id, body,
                         lambda doc: require_if_match(etag_of(doc)))
        return meeting, etag_header(meeting)


@blp.route("/meetings/<meeting_id>/cancel")
class MeetingCancel(MethodView):
    @blp.arguments(schemas.ReasonIn)
    @blp.response(200, schemas.MeetingOut)
    def post(self, body, meeting_id):
        """Cancel the whole series; its registrants are told."""
        principal = _principal("admin", "coordinator", "service")
        return _write(meetings.cancel_meeting, principal, meeting_id, body.get("reason"))


# --- occurrences ----------------------------------------------------------------------------------

@blp.route("/meetings/<meeting_id>/occurrences")
class MeetingOccurrences(MethodView):
    @blp.arguments(schemas.RangeQuery, location="query")
    @blp.response(200, schemas.OccurrenceOut(many=True))
    def get(self, query, meeting_id):
        """The meeting's occurrences in [from, to), cancelled ones on request."""
        return _read(occurrences.list_occurrences, _principal(*MEMBER_TOO), query["from_"], query["to"], meeting_id=meeting_id,
                     include_cancelled=query["include_cancelled"])


@blp.route("/occurrences")
class Occurrences(MethodView):
    @blp.arguments(schemas.RangeQuery, location="query")
    @blp.response(200, schemas.OccurrenceOut(many=True))
    def get(self, query):
        """Every meeting's occurrences in [from, to) (at most 366 days)."""
        return _read(occurrences.list_occurrences, _principal(*MEMBER_TOO), query["from_"], query["to"],
                     site_id=query.get("site_id"), include_cancelled=query["include_cancelled"])


@blp.route("/meetings/<meeting_id>/occurrences/<occurrence_id>/cancel")
class OccurrenceCancel(MethodView):
    @blp.arguments(schemas.ReasonIn)
    @blp.response(200, schemas.OccurrenceOut)
    def post(self, body, meeting_id, occurrence_id):
        """Cancel one occurrence (the series stays); its registrants are told."""
        return _write(occurrences.cancel_occurrence, _principal(), meeting_id, occurrence_id, body.get("reason"))


@blp.route("/meetings/<meeting_id>/occurrences/<occurrence_id>/move")
class OccurrenceMove(MethodView):
    @blp.arguments(schemas.MoveIn)
    @blp.response(200, schemas.OccurrenceOut)
    def post(self, body, meeting_id, occurrence_id):
        """Move one occurrence to another time (facilitator conflicts refused)."""
        return _write(occurrences.move_occurrence, _principal(), meeting_id, occurrence_id, body["start"],
                      body.get("end"), body.get("reason"))


@blp.route("/meetings/<meeting_id>/occurrences/<occurrence_id>/attendance")
class Attendance(MethodView):
    @blp.response(200, schemas.AttendanceOut)
    def get(self, meeting_id, occurrence_id):
        return _read(occurrences.get_attendance, _principal(), meeting_id, occurrence_id)

    @blp.arguments(schemas.AttendanceIn)
    @blp.response(200, schemas.AttendanceOut)
    def put(self, body, meeting_id, occurrence_id):
        """Record who came (the facilitators, or the site's coordinators)."""
        return _write(occurrences.record_attendance, _principal(), meeting_id, occurrence_id,
                      body["present_member_ids"], body["absent_member_ids"])


# --- registrations --------------------------------------------------------------------------------

@blp.route("/meetings/<meeting_id>/registrations")
class Registrations(MethodView):
    @blp.arguments(schemas.RegistrationQuery, location="query")
    @blp.response(200, schemas.RegistrationList)
    def get(self, query, meeting_id):
        return {"items": _read(registrations.list_registrations, _principal(), meeting_id, query["status"])}

    @blp.arguments(schemas.RegistrationIn)
    @blp.response(201, schemas.RegistrationOut)
    def post(self, body, meeting_id):
        """Register a member for the series or one occurrence; past capacity they wait in line. A member
        registers only themself (another member_id: 403). A peer leader registers only themself
        (registrant_kind leader, member_id their own leader id), and only for a support group for peer
        providers."""
        principal = _principal(*STAFF, "member", "leader")
        return _write(registrations.register, principal, meeting_id, body["member_id"], body.get("occurrence_id"),
                      body.get("registrant_kind", "member"))


@blp.route("/meetings/<meeting_id>/registrations/<registration_id>")
class RegistrationItem(MethodView):
    @blp.response(200, schemas.RegistrationOut)
    def delete(self, meeting_id, registration_id):
        """Cancel a registration; the first in line for the freed seat moves up (a member or a peer leader:
        only their own)."""
        principal = _principal(*STAFF, "member", "leader")
        return _write(registrations.cancel_registration, principal, meeting_id, registration_id)


# --- one-on-one sessions --------------------------------------------------------------------------

@blp.route("/matches/<match_id>/suggestions")
class Suggestions(MethodView):
    @blp.response(200, schemas.SuggestionsOut)
    def get(self, match_id):
        """Session times inside both people's availability, free of their bookings (now)."""
        return _read(sessions.current_suggestions, _settings(), _principal(*MEMBER_TOO), match_id)


@blp.route("/sessions")
class Sessions(MethodView):
    @blp.arguments(schemas.SessionQuery, location="query")
    @blp.response(200, page_schema(schemas.SessionOut))
    def get(self, query):
        items, total = _read(sessions.list_sessions, _principal(*MEMBER_TOO), {**query, "from": query.get("from_")},
                             query["offset"], query["limit"])
        return page(items, total, query)

    @blp.arguments(schemas.SessionIn)
    @blp.response(201, schemas.SessionOut)
    def post(self, body):
        """Book a session for an active match (the leader, the member, or staff/service for the member)."""
        return _write(sessions.book_session, _settings(), _principal(*MEMBER_TOO), body)


@blp.route("/sessions/<session_id>")
class SessionItem(MethodView):
    @blp.response(200, schemas.SessionOut)
    def get(self, session_id):
        return _read(sessions.get_session, _principal(*MEMBER_TOO), session_id)


@blp.route("/sessions/<session_id>/reschedule")
class SessionReschedule(MethodView):
    @blp.arguments(schemas.RescheduleIn)
    @blp.response(200, schemas.SessionOut)
    def post(self, body, session_id):
        return _write(sessions.reschedule_session, _settings(), _principal(*MEMBER_TOO), session_id, body)


@blp.route("/sessions/<session_id>/cancel")
class SessionCancel(MethodView):
    @blp.arguments(schemas.SessionCancelIn)
    @blp.response(200, schemas.SessionOut)
    def post(self, body, session_id):
        return _write(sessions.cancel_session, _principal(*MEMBER_TOO), session_id, body)


# --- the member's own -----------------------------------------------------------------------------

@blp.route("/me/registrations")
class MyRegistrations(MethodView):
    @blp.arguments(schemas.RegistrationQuery, location="query")
    @blp.response(200, schemas.RegistrationList)
    def get(self, query):
        """The member's own registrations, with their place in line while waitlisted; for a peer leader,
        their own seats at support groups for peer providers."""
        return {"items": _read(members.my_registrations, _principal("member", "leader"), query["status"])}


@blp.route("/me/suggestions")
class MySuggestions(MethodView):
    @blp.response(200, schemas.SuggestionsOut)
    def get(self):
        """Session times with the member's leader (their active match; 404 without one). Book one with
        POST /v1/sessions. Member tokens only."""
        return _read(members.my_suggestions, _settings(), _principal("member"))


@blp.route("/me/export")
class MyExport(MethodView):
    @blp.response(200, schemas.MyExportOut)
    def get(self):
        """Everything scheduling holds about the member (right of access), as JSON. Member tokens only."""
        return _read(members.export, _principal("member"))


# --- feeds ----------------------------------------------------------------------------------------

@blp.route("/feed-tokens")
class FeedTokens(MethodView):
    @blp.arguments(schemas.FeedTokenIn)
    @blp.response(201, schemas.FeedTokenOut)
    def post(self, body):
        """A new secret link to a member's or leader's private calendar (replaces the previous one). A member
        asks for their own (person_kind member, person_id their own id)."""
        principal = _principal(*MEMBER_TOO)
        kind, person_id = body["person_kind"], body["person_id"]
        token = _write(feeds.issue_feed_token, principal, kind, person_id)
        base = _settings().platform.public_base_url.rstrip("/")
        return {"token": token,
                "url": f"{base}/v1/feeds/{principal.organization_id}/{kind}s/{person_id}/calendar.ics?token={token}"}


@public
@blp.route("/feeds/<organization_id>/meeting-guide.json")
class MeetingGuideFeed(MethodView):
    @blp.response(200, MEETING_GUIDE_DOC, content_type="application/json")
    def get(self, organization_id):
        """Public meetings in the Meeting Guide JSON format (code4recovery spec); no attendee data."""
        body = _read(feeds.meeting_guide_feed, _settings(), organization_id)
        return Response(current_app.json.dumps(body), mimetype="application/json",
                        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"})


@public
@blp.route("/feeds/<organization_id>/meetings/<slug>")
class PublicMeeting(MethodView):
    @blp.response(200, {"type": "object", "description": "One Meeting Guide listing."}, content_type="application/json")
    def get(self, organization_id, slug):
        """One public meeting (the Meeting Guide listing's ``url``): a page for people (text/html), or its
        Meeting Guide listing when the request prefers ``application/json``."""
        headers = {"Cache-Control": "public, max-age=300", "Vary": "Accept"}
        if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
            body = _read(feeds.public_meeting, _settings(), organization_id, slug)
            return Response(current_app.json.dumps(body), mimetype="application/json",
                            headers={**headers, "Access-Control-Allow-Origin": "*"})
        page = _read(feeds.public_meeting_page, organization_id, slug)
        return Response(page, mimetype="text/html", headers={
            **headers, "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff"})


@public
@blp.route("/feeds/<organization_id>/sites/<site_id>/meetings.ics")
class SiteCalendarFeed(MethodView):
    @blp.response(200, CALENDAR_DOC, content_type="text/calendar")
    def get(self, organization_id, site_id):
        """A site's public meetings as iCalendar (cancelled occurrences as EXDATE)."""
        body = _read(feeds.site_calendar, organization_id, site_id)
        return Response(body, mimetype="text/calendar", headers={"Cache-Control": "public, max-age=300"})


def _feed_principal():
    """A bearer token, if one was sent (personal feeds also take ?token=)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return verify_bearer(token.strip())  # signature, claims and revocation, as every other route


def _personal_feed(kind: str, organization_id: str, person_id: str, query: dict):
    principal = _feed_principal()
    if principal is None and not query.get("token"):
        abort(401, message="This calendar needs its feed token (?token=...) or a bearer token.",
              headers={"WWW-Authenticate": 'Bearer realm="recoverynet"'})
    _read(feeds.person_for_feed, kind, organization_id, person_id, token=query.get("token"), principal=principal)
    calendar = feeds.member_calendar if kind == "member" else feeds.leader_calendar
    return Response(_read(calendar, organization_id, person_id), mimetype="text/calendar",
                    headers={"Cache-Control": "private, no-store"})


@public
@blp.route("/feeds/<organization_id>/members/<member_id>/calendar.ics")
class MemberCalendarFeed(MethodView):
    @blp.arguments(schemas.FeedQuery, location="query")
    @blp.response(200, CALENDAR_DOC, content_type="text/calendar")
    def get(self, query, organization_id, member_id):
        """A member's meetings and sessions (private: feed token or bearer token)."""
        return _personal_feed("member", organization_id, member_id, query)


@public
@blp.route("/feeds/<organization_id>/leaders/<leader_id>/calendar.ics")
class LeaderCalendarFeed(MethodView):
    @blp.arguments(schemas.FeedQuery, location="query")
    @blp.response(200, CALENDAR_DOC, content_type="text/calendar")
    def get(self, query, organization_id, leader_id):
        """A leader's meetings and sessions (private: feed token or bearer token)."""
        return _personal_feed("leader", organization_id, leader_id, query)
