"""Marshmallow schemas of the scheduling service's HTTP bodies and queries (not of events)."""
from __future__ import annotations

import zoneinfo
from functools import lru_cache

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from shared.web.documents import StoredDocument
from shared.web.pages import PageQuery

from scheduling.feeds import MEETING_TYPES

MODES = ("in_person", "online", "hybrid")
TYPE_CODE = validate.OneOf(tuple(MEETING_TYPES), error="{input!r} is not a Meeting Guide meeting type (code4recovery spec): "
                                                         "use one of {choices}. Online meetings have a conference_url or conference_phone instead.")
PHONE = validate.Regexp(r"^\+?[0-9,*#]{3,40}$", error="Digits, an optional leading +, and , * # only.")
ID = fields.Str
# One-field rules the document states (issue 13). A time zone: the shape as a pattern and the name as
# format "iana-time-zone" (the tz database's names, as zoneinfo knows them).
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"
LOCAL_DATE_TIME_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _is_zone(value: str) -> None:
    if value not in _zones():
        raise ValidationError(f"{value!r} is not an IANA time zone.")


class MeetingIn(Schema):
    site_id = fields.Str(allow_none=True, load_default=None, metadata={"description": "omit for an organization-wide online meeting"})
    time_zone = fields.Str(allow_none=True, load_default=None, validate=[validate.Regexp(TIME_ZONE_PATTERN), _is_zone],
                           metadata={"format": "iana-time-zone",
                                     "description": "IANA; required without a site, otherwise the site's zone"})
    facilitator_id = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    co_facilitator_id = fields.Str(allow_none=True, load_default=None)
    name = fields.Str(required=True, validate=validate.Length(min=1, max=255))
    description = fields.Str(allow_none=True, load_default=None, validate=validate.Length(max=4000))
    format = fields.Str(allow_none=True, load_default=None, validate=validate.Length(max=100),
                        metadata={"description": "e.g. discussion, speaker, step study"})
    types = fields.List(fields.Str(validate=TYPE_CODE), load_default=list, validate=validate.Length(max=30))
    language = fields.Str(load_default="en", validate=validate.Length(min=2, max=35))
    capacity = fields.Int(required=True, validate=validate.Range(min=1, max=10000))
    is_open = fields.Bool(load_default=True, metadata={"description": "open to anyone, or closed to the site's members"})
    is_public = fields.Bool(load_default=False, metadata={"description": "listed in the public feeds"})
    for_peer_providers = fields.Bool(load_default=False, metadata={
        "description": "a support group for the organization's peer leaders: leaders see it and join it themselves; "
                       "members do not see it"})
    attendance_mode = fields.Str(required=True, validate=validate.OneOf(MODES))
    conference_url = fields.Url(allow_none=True, load_default=None, schemes={"https", "http"},
                                validate=validate.Length(max=2000),
                                metadata={"format": "uri", "pattern": "^https?://",
                                          "description": "an online or hybrid meeting needs it or a conference_phone"})
    conference_phone = fields.Str(allow_none=True, load_default=None, validate=PHONE)
    location_notes = fields.Str(allow_none=True, load_default=None, validate=validate.Length(max=1000))
    notes = fields.Str(allow_none=True, load_default=None, validate=validate.Length(max=4000))
    rrule = fields.Str(required=True, validate=validate.Length(min=5, max=500),
                       metadata={"description": "RFC 5545 RRULE in local time, e.g. FREQ=WEEKLY;BYDAY=TU"})
    first_start_local = fields.Str(required=True, validate=validate.Regexp(LOCAL_DATE_TIME_PATTERN),
                                   metadata={"description": "local date-time of the first occurrence (no offset), e.g. 2026-03-03T19:00"})
    duration_minutes = fields.Int(required=True, validate=validate.Range(min=5, max=720))


class MeetingPatch(MeetingIn):
    class Meta:
        exclude = ("site_id", "time_zone")


class ExceptionOut(Schema):
    original_start = fields.Str()
    status = fields.Str()
    start = fields.DateTime(allow_none=True)
    end = fields.DateTime(allow_none=True)
    reason = fields.Str(allow_none=True)


class MeetingOut(Schema):
    id = fields.Str(attribute="_id")
    organization_id = fields.Str()
    site_id = fields.Str(allow_none=True)
    time_zone = fields.Str()
    facilitator_id = fields.Str()
    co_facilitator_id = fields.Str(allow_none=True)
    name = fields.Str()
    slug = fields.Str()
    description = fields.Str(allow_none=True)
    format = fields.Str(allow_none=True)
    types = fields.List(fields.Str())
    language = fields.Str()
    capacity = fields.Int()
    is_open = fields.Bool()
    is_public = fields.Bool()
    for_peer_providers = fields.Bool(dump_default=False)
    attendance_mode = fields.Str()
    conference_url = fields.Str(allow_none=True)
    conference_phone = fields.Str(allow_none=True)
    location_notes = fields.Str(allow_none=True)
    notes = fields.Str(allow_none=True)
    rrule = fields.Str()
    first_start_local = fields.Str()
    duration_minutes = fields.Int()
    status = fields.Str()
    exceptions = fields.Method("dump_exceptions")
    version = fields.Int()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()

    def dump_exceptions(self, meeting) -> list:
        return [ExceptionOut().dump({"original_start": k, **v}) for k, v in sorted((meeting.get("exceptions") or {}).items())]


class MeetingQuery(PageQuery):
    site_id = fields.Str()
    leader_id = fields.Str()
    status = fields.Str(load_default="active", validate=validate.OneOf(("active", "cancelled")))
    for_peer_providers = fields.Bool(metadata={"description": "true: only support groups for peer providers; "
                                                              "false: only the others"})


class RangeQuery(Schema):
    from_ = fields.DateTime(required=True, data_key="from")
    to = fields.DateTime(required=True, metadata={"description": "after from, at most 366 days later"})
    site_id = fields.Str()
    include_cancelled = fields.Bool(load_default=False)


class OccurrenceOut(Schema):
    occurrence_id = fields.Str()
    meeting_id = fields.Str()
    name = fields.Str()
    site_id = fields.Str(allow_none=True)
    start = fields.DateTime()
    end = fields.DateTime()
    original_start = fields.DateTime()
    local_start = fields.Str()
    local_end = fields.Str()
    time_zone = fields.Str()
    status = fields.Str()
    reason = fields.Str(allow_none=True)
    registered_count = fields.Int()
    waitlisted_count = fields.Int()
    seats_left = fields.Int()


class ReasonIn(Schema):
    reason = fields.Str(allow_none=True, load_default=None, validate=validate.Length(max=500))


class MoveIn(ReasonIn):
    start = fields.DateTime(required=True, metadata={"description": "with an offset, or local to the meeting's zone"})
    end = fields.DateTime(allow_none=True, load_default=None)


# An occurrence id: the meeting id, ":", its original start in UTC (model.occurrence_id).
OCCURRENCE_ID_PATTERN = r"^.+:[0-9]{4}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]Z$"


class RegistrationIn(Schema):
    member_id = fields.Str(required=True, validate=validate.Length(min=1, max=100),
                           metadata={"description": "the member; with registrant_kind leader, the peer leader's own id"})
    registrant_kind = fields.Str(load_default="member", validate=validate.OneOf(("member", "leader")),
                                 metadata={"description": "leader: a peer leader registering themself for a support "
                                                          "group for peer providers"})
    occurrence_id = fields.Str(allow_none=True, load_default=None, validate=validate.Regexp(OCCURRENCE_ID_PATTERN),
                               metadata={"pattern": OCCURRENCE_ID_PATTERN,
                                         "description": "one occurrence of this meeting, '<meeting id>:<YYYYMMDDTHHMMSSZ>' "
                                                        "(its original start in UTC); omit for the whole series"})


class RegistrationOut(Schema):
    id = fields.Str(attribute="_id")
    meeting_id = fields.Str()
    member_id = fields.Str()
    registrant_kind = fields.Str(dump_default="member", metadata={"description": "member, or leader (a peer leader's own seat)"})
    occurrence_id = fields.Str(allow_none=True)
    status = fields.Str()
    waitlist_position = fields.Int(allow_none=True)
    created_at = fields.DateTime()


class RegistrationQuery(Schema):
    status = fields.List(fields.Str(validate=validate.OneOf(("registered", "waitlisted", "cancelled"))),
                         load_default=lambda: ["registered", "waitlisted"])


class RegistrationList(Schema):
    items = fields.List(fields.Nested(RegistrationOut))


class AttendanceIn(Schema):
    present_member_ids = fields.List(fields.Str(validate=validate.Length(min=1, max=100)), required=True,
                                     validate=validate.Length(max=1000))
    absent_member_ids = fields.List(fields.Str(validate=validate.Length(min=1, max=100)), load_default=list,
                                    validate=validate.Length(max=1000))


class AttendanceOut(Schema):
    meeting_id = fields.Str()
    occurrence_id = fields.Str()
    present_member_ids = fields.List(fields.Str())
    absent_member_ids = fields.List(fields.Str())
    recorded_at = fields.DateTime()


class SessionIn(Schema):
    match_id = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    start = fields.DateTime(required=True, metadata={"description": "with an offset, or local to the shown zone"})
    end = fields.DateTime(allow_none=True, load_default=None, metadata={"description": "default: start + the session length"})
    on_behalf_of = fields.Str(allow_none=True, load_default=None, validate=validate.OneOf(("member",)),
                              metadata={"description": "staff and service accounts booking for the member"})
    outside_availability = fields.Bool(load_default=False, metadata={
        "description": "true books a time outside the member's or the leader's weekly availability "
                       "(without it such a time is refused with 422 naming this field)"})


class RescheduleIn(Schema):
    start = fields.DateTime(required=True)
    end = fields.DateTime(allow_none=True, load_default=None)
    on_behalf_of = fields.Str(allow_none=True, load_default=None, validate=validate.OneOf(("member",)))
    outside_availability = fields.Bool(load_default=False, metadata={
        "description": "true books a time outside the member's or the leader's weekly availability "
                       "(without it such a time is refused with 422 naming this field)"})


class SessionCancelIn(ReasonIn):
    on_behalf_of = fields.Str(allow_none=True, load_default=None, validate=validate.OneOf(("member",)))


class SessionOut(Schema):
    id = fields.Str(attribute="_id")
    match_id = fields.Str()
    member_id = fields.Str()
    leader_id = fields.Str()
    site_id = fields.Str(allow_none=True)
    start = fields.DateTime()
    end = fields.DateTime()
    time_zone = fields.Str()
    local_start = fields.Method("dump_local_start")
    status = fields.Str()
    booked_by_role = fields.Str()
    outside_availability = fields.Bool(dump_default=False, metadata={
        "description": "booked (or rescheduled) outside the member's or the leader's availability, on request"})
    cancelled_by_role = fields.Str(allow_none=True)
    version = fields.Int()

    def dump_local_start(self, session) -> str:
        from scheduling.model import to_local

        return to_local(session["start"], session["time_zone"]).isoformat(timespec="minutes")


class SessionQuery(PageQuery):
    member_id = fields.Str()
    leader_id = fields.Str()
    match_id = fields.Str()
    status = fields.Str(validate=validate.OneOf(("booked", "cancelled")))
    from_ = fields.DateTime(data_key="from")
    to = fields.DateTime()


class SlotOut(Schema):
    start = fields.DateTime()
    end = fields.DateTime()


class SuggestionsOut(Schema):
    match_id = fields.Str()
    member_id = fields.Str()
    leader_id = fields.Str()
    time_zone = fields.Str()
    suggestions = fields.List(fields.Nested(SlotOut))


class FeedTokenIn(Schema):
    person_kind = fields.Str(required=True, validate=validate.OneOf(("member", "leader")))
    person_id = fields.Str(required=True, validate=validate.Length(min=1, max=100))


class FeedTokenOut(Schema):
    token = fields.Str()
    url = fields.Str()


class FeedQuery(Schema):
    token = fields.Str(validate=validate.Length(min=10, max=200))


class MyExportOut(Schema):
    service = fields.Str()
    organization_id = fields.Str()
    member_id = fields.Str()
    member = StoredDocument(allow_none=True, metadata={"description": "scheduling's copy of the member (from intake's events)"})
    matches = fields.List(StoredDocument(), metadata={"description": "their matches, as matching's events told scheduling"})
    sessions = fields.List(StoredDocument(), metadata={"description": "every one-on-one session, cancelled ones too"})
    suggestions = fields.List(StoredDocument(), metadata={"description": "session times suggested for their matches"})
    registrations = fields.List(StoredDocument(), metadata={"description": "every registration, cancelled ones too"})
    attendance = fields.List(StoredDocument(), metadata={"description": "occurrences where they were marked present or absent"})
    reminders = fields.List(StoredDocument(), metadata={"description": "reminders sent to them (id and when)"})
