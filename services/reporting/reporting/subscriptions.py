"""{event declaration: handler}: the reporting service's whole inbound event surface. Intake's
organizations, members and leaders topics, matching, scheduling and notifications; never the
restricted contacts topic."""
from __future__ import annotations

from shared.events.intake import (LeaderDeactivated, LeaderReactivated, LeaderRegistered, LeaderUpdated, MemberErased,
                                  MemberRegistered, MemberRiskFlagged, MemberRiskResolved, MemberStatusChanged,
                                  MemberTransferred, MemberUpdated, ScreeningRecorded, TokensRevoked)
from shared.events.matching import MatchAccepted, MatchDeclined, MatchProposed, MemberWaitlisted
from shared.events.notifications import ChannelUnsubscribed, NotificationDelivered, NotificationFailed
from shared.events.scheduling import AttendanceRecorded, MeetingCreated, MeetingUpdated, SessionHeld
from shared.revocations import on_tokens_revoked

from reporting.config import Settings
from reporting.handlers import events

SUBSCRIPTIONS: dict = {
    TokensRevoked: on_tokens_revoked,  # sign-out-everywhere: the token versions refused here
    MemberRegistered: events.on_member_registered,
    MemberUpdated: events.on_member_updated,
    MemberStatusChanged: events.on_member_status_changed,
    MemberTransferred: events.on_member_transferred,
    ScreeningRecorded: events.on_screening_recorded,
    MemberRiskFlagged: events.on_risk_flagged,
    MemberRiskResolved: events.on_risk_resolved,
    MemberErased: events.on_member_erased,
    LeaderRegistered: events.on_leader_registered,
    LeaderUpdated: events.on_leader_registered,
    LeaderDeactivated: events.on_leader_deactivated,
    LeaderReactivated: events.on_leader_reactivated,
    MatchProposed: events.on_match_proposed,
    MatchAccepted: events.on_match_accepted,
    MatchDeclined: events.on_match_declined,
    MemberWaitlisted: events.on_member_waitlisted,
    MeetingCreated: events.on_meeting_changed,
    MeetingUpdated: events.on_meeting_changed,
    AttendanceRecorded: events.on_attendance_recorded,
    SessionHeld: events.on_session_held,
    NotificationDelivered: events.on_delivered,
    NotificationFailed: events.on_failed,
    ChannelUnsubscribed: events.on_unsubscribed,
}


def subscriptions(settings: Settings) -> dict:
    """SUBSCRIPTIONS, with the handlers given the key of the pseudonyms they store, each folded
    (handlers.events.folded): in a consumer batch, every member and aggregate document is read once and
    written once (the worker and the rebuild alike)."""
    events.KEY["pseudonym_key"] = settings.pseudonym_key
    return events.folded(SUBSCRIPTIONS)
