"""Events scheduling publishes: meetings (keyed by meeting id), sessions (by session id), reminders
(by person id). Registrant lists are member ids only."""
from marshmallow import Schema, fields, validate

from shared.events.base import EventSchema, event

MEETINGS = "recoverynet.scheduling.meetings"
SESSIONS = "recoverynet.scheduling.sessions"
REMINDERS = "recoverynet.scheduling.reminders"


class MeetingSnapshot(EventSchema):
    meeting_id = fields.Str(required=True)
    site_id = fields.Str(allow_none=True, load_default=None)
    facilitator_id = fields.Str(required=True, metadata={"description": "leader id"})
    co_facilitator_id = fields.Str(allow_none=True, load_default=None)
    name = fields.Str(required=True)
    language = fields.Str(required=True)
    attendance_mode = fields.Str(required=True, validate=validate.OneOf(("in_person", "online", "hybrid")))
    types = fields.List(fields.Str(), load_default=list, metadata={"description": "Meeting Guide type codes"})
    capacity = fields.Int(required=True)
    is_open = fields.Bool(required=True, metadata={"description": "open to anyone, or closed to members"})
    is_public = fields.Bool(required=True, metadata={"description": "listed in public feeds"})
    for_peer_providers = fields.Bool(load_default=False, metadata={
        "description": "a support group for the organization's peer leaders (absent: false)"})
    time_zone = fields.Str(required=True)
    rrule = fields.Str(required=True, metadata={"description": "RFC 5545 RRULE, in the site's time zone"})
    first_start_local = fields.Str(required=True, metadata={"description": "ISO local date-time of the first occurrence"})
    duration_minutes = fields.Int(required=True)


@event("org.recoverynet.scheduling.meeting.created", version=1, topic=MEETINGS, key="meeting_id")
class MeetingCreated(MeetingSnapshot):
    pass


@event("org.recoverynet.scheduling.meeting.updated", version=1, topic=MEETINGS, key="meeting_id")
class MeetingUpdated(MeetingSnapshot):
    registrant_ids = fields.List(fields.Str(), load_default=list)


@event("org.recoverynet.scheduling.meeting.cancelled", version=1, topic=MEETINGS, key="meeting_id")
class MeetingCancelled(EventSchema):
    meeting_id = fields.Str(required=True)
    site_id = fields.Str(allow_none=True, load_default=None)
    name = fields.Str(required=True)
    reason = fields.Str(allow_none=True, load_default=None)
    registrant_ids = fields.List(fields.Str(), load_default=list)


class OccurrenceRef(EventSchema):
    meeting_id = fields.Str(required=True)
    site_id = fields.Str(allow_none=True, load_default=None)
    occurrence_id = fields.Str(required=True)
    name = fields.Str(required=True)
    time_zone = fields.Str(required=True)
    original_start = fields.DateTime(required=True)
    registrant_ids = fields.List(fields.Str(), load_default=list)


@event("org.recoverynet.scheduling.occurrence.cancelled", version=1, topic=MEETINGS, key="meeting_id")
class OccurrenceCancelled(OccurrenceRef):
    reason = fields.Str(allow_none=True, load_default=None)


@event("org.recoverynet.scheduling.occurrence.moved", version=1, topic=MEETINGS, key="meeting_id")
class OccurrenceMoved(OccurrenceRef):
    new_start = fields.DateTime(required=True)
    new_end = fields.DateTime(required=True)


class RegistrationRef(EventSchema):
    registration_id = fields.Str(required=True)
    meeting_id = fields.Str(required=True)
    site_id = fields.Str(allow_none=True, load_default=None)
    member_id = fields.Str(required=True)
    occurrence_id = fields.Str(allow_none=True, load_default=None, metadata={"description": "null: the whole series"})


@event("org.recoverynet.scheduling.registration.created", version=1, topic=MEETINGS, key="meeting_id")
class RegistrationCreated(RegistrationRef):
    status = fields.Str(required=True, validate=validate.OneOf(("registered", "waitlisted")))
    waitlist_position = fields.Int(allow_none=True, load_default=None)


@event("org.recoverynet.scheduling.registration.cancelled", version=1, topic=MEETINGS, key="meeting_id")
class RegistrationCancelled(RegistrationRef):
    pass


@event("org.recoverynet.scheduling.registration.promoted", version=1, topic=MEETINGS, key="meeting_id")
class RegistrationPromoted(RegistrationRef):
    """A seat freed and this waitlisted member now has it."""


@event("org.recoverynet.scheduling.attendance.recorded", version=1, topic=MEETINGS, key="meeting_id")
class AttendanceRecorded(EventSchema):
    meeting_id = fields.Str(required=True)
    site_id = fields.Str(allow_none=True, load_default=None)
    occurrence_id = fields.Str(required=True)
    present_member_ids = fields.List(fields.Str(), required=True)
    absent_member_ids = fields.List(fields.Str(), load_default=list)


class TimeSlot(Schema):
    start = fields.DateTime(required=True)
    end = fields.DateTime(required=True)


class SessionRef(EventSchema):
    session_id = fields.Str(required=True)
    match_id = fields.Str(required=True)
    member_id = fields.Str(required=True)
    leader_id = fields.Str(required=True)
    site_id = fields.Str(allow_none=True, load_default=None)


@event("org.recoverynet.scheduling.session.times_suggested", version=1, topic=SESSIONS, key="match_id")
class SessionTimesSuggested(EventSchema):
    match_id = fields.Str(required=True)
    member_id = fields.Str(required=True)
    leader_id = fields.Str(required=True)
    site_id = fields.Str(allow_none=True, load_default=None)
    time_zone = fields.Str(required=True, metadata={"description": "the zone the times are shown in"})
    suggestions = fields.List(fields.Nested(TimeSlot), required=True)


@event("org.recoverynet.scheduling.session.booked", version=1, topic=SESSIONS, key="session_id")
class SessionBooked(SessionRef):
    start = fields.DateTime(required=True)
    end = fields.DateTime(required=True)
    time_zone = fields.Str(required=True)
    booked_by_role = fields.Str(required=True)


@event("org.recoverynet.scheduling.session.rescheduled", version=1, topic=SESSIONS, key="session_id")
class SessionRescheduled(SessionRef):
    start = fields.DateTime(required=True)
    end = fields.DateTime(required=True)
    previous_start = fields.DateTime(required=True)
    time_zone = fields.Str(required=True)
    rescheduled_by_role = fields.Str(required=True)


@event("org.recoverynet.scheduling.session.cancelled", version=1, topic=SESSIONS, key="session_id")
class SessionCancelled(SessionRef):
    start = fields.DateTime(required=True)
    cancelled_by_role = fields.Str(required=True)
    reason = fields.Str(allow_none=True, load_default=None)


@event("org.recoverynet.scheduling.session.held", version=1, topic=SESSIONS, key="session_id")
class SessionHeld(SessionRef):
    """A booked one-on-one session reached its end without being cancelled: it took place.

    Emitted once per session by the scheduling worker shortly after the session's end."""

    start = fields.DateTime(required=True)
    end = fields.DateTime(required=True)


@event("org.recoverynet.scheduling.reminder.due", version=1, topic=REMINDERS, key="person_id")
class ReminderDue(EventSchema):
    """Emitted once per person, occurrence (or session) and offset, even with several workers."""

    reminder_id = fields.Str(required=True, metadata={"description": "deterministic: subject + person + offset"})
    person_id = fields.Str(required=True)
    person_kind = fields.Str(required=True, validate=validate.OneOf(("member", "leader")))
    subject_kind = fields.Str(required=True, validate=validate.OneOf(("occurrence", "session")))
    meeting_id = fields.Str(allow_none=True, load_default=None)
    occurrence_id = fields.Str(allow_none=True, load_default=None)
    session_id = fields.Str(allow_none=True, load_default=None)
    site_id = fields.Str(allow_none=True, load_default=None)
    title = fields.Str(required=True, metadata={"description": "meeting name, or 'one-on-one session'"})
    starts_at = fields.DateTime(required=True)
    time_zone = fields.Str(required=True)
    offset_minutes = fields.Int(required=True)
