"""{event declaration: handler}: the notifications service's whole inbound event surface."""
from __future__ import annotations

from shared.events import intake, matching, scheduling

from shared.revocations import on_tokens_revoked

from notifications.handlers import events

SUBSCRIPTIONS: dict = {
    intake.TokensRevoked: on_tokens_revoked,  # sign-out-everywhere: the token versions refused here
    # the contact directory (restricted topic), consents, coordinators, erasure
    intake.ContactChanged: events.on_contact_changed,
    intake.MemberRegistered: events.on_member_snapshot,
    intake.MemberUpdated: events.on_member_snapshot,
    intake.MemberConsentChanged: events.on_member_snapshot,
    intake.MemberErased: events.on_member_erased,
    # sign-in codes (restricted topic): sent at once, the code never kept in the delivery log
    intake.SignInCodeIssued: events.on_signin_code_issued,
    intake.CoordinatorAssigned: events.on_coordinator_assigned,
    # names of organizations and sites (the unsubscribe page, reasons shown to coordinators, 404 for unknown sites)
    intake.OrganizationCreated: events.on_organization_created,
    intake.SiteCreated: events.on_site_changed,
    intake.SiteUpdated: events.on_site_changed,
    # events that tell people something (model.plan_for says who, which template, how urgent)
    intake.MemberRiskFlagged: events.on_notifiable_event,
    intake.LeaderStretched: events.on_notifiable_event,
    intake.LeaderStretchLifted: events.on_notifiable_event,
    matching.MatchProposed: events.on_notifiable_event,
    matching.MatchAccepted: events.on_notifiable_event,
    matching.MatchEnded: events.on_notifiable_event,
    matching.MemberWaitingTooLong: events.on_notifiable_event,
    scheduling.MeetingCreated: events.on_meeting_snapshot,
    scheduling.MeetingUpdated: events.on_meeting_snapshot,
    scheduling.RegistrationCreated: events.on_notifiable_event,
    scheduling.MeetingCancelled: events.on_notifiable_event,
    scheduling.OccurrenceCancelled: events.on_notifiable_event,
    scheduling.OccurrenceMoved: events.on_notifiable_event,
    scheduling.RegistrationPromoted: events.on_notifiable_event,
    scheduling.SessionBooked: events.on_notifiable_event,
    scheduling.SessionRescheduled: events.on_notifiable_event,
    scheduling.SessionCancelled: events.on_notifiable_event,
    scheduling.ReminderDue: events.on_notifiable_event,
}
