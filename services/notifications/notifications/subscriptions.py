"""{event declaration: handler}: the notifications service's whole inbound event surface."""
from __future__ import annotations

from shared.events import intake, matching, scheduling

from notifications import handlers

SUBSCRIPTIONS: dict = {
    # the contact directory (restricted topic), consents, coordinators, erasure
    intake.ContactChanged: handlers.on_contact_changed,
    intake.MemberRegistered: handlers.on_member_snapshot,
    intake.MemberUpdated: handlers.on_member_snapshot,
    intake.MemberConsentChanged: handlers.on_member_snapshot,
    intake.MemberErased: handlers.on_member_erased,
    intake.CoordinatorAssigned: handlers.on_coordinator_assigned,
    # names of organizations and sites (the unsubscribe page, reasons shown to coordinators, 404 for unknown sites)
    intake.OrganizationCreated: handlers.on_organization_created,
    intake.SiteCreated: handlers.on_site_changed,
    intake.SiteUpdated: handlers.on_site_changed,
    # events that tell people something (model.plan_for says who, which template, how urgent)
    intake.MemberRiskFlagged: handlers.on_notifiable_event,
    matching.MatchProposed: handlers.on_notifiable_event,
    matching.MatchAccepted: handlers.on_notifiable_event,
    matching.MatchEnded: handlers.on_notifiable_event,
    matching.MemberWaitingTooLong: handlers.on_notifiable_event,
    scheduling.MeetingCreated: handlers.on_meeting_snapshot,
    scheduling.MeetingUpdated: handlers.on_meeting_snapshot,
    scheduling.RegistrationCreated: handlers.on_notifiable_event,
    scheduling.MeetingCancelled: handlers.on_notifiable_event,
    scheduling.OccurrenceCancelled: handlers.on_notifiable_event,
    scheduling.OccurrenceMoved: handlers.on_notifiable_event,
    scheduling.RegistrationPromoted: handlers.on_notifiable_event,
    scheduling.SessionBooked: handlers.on_notifiable_event,
    scheduling.SessionRescheduled: handlers.on_notifiable_event,
    scheduling.SessionCancelled: handlers.on_notifiable_event,
    scheduling.ReminderDue: handlers.on_notifiable_event,
}
