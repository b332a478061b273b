"""{event declaration: handler}: the matching service's whole inbound event surface."""
from __future__ import annotations

from shared.events.intake import (LeaderAvailabilityChanged, LeaderCapacityChanged, LeaderDeactivated,
                                  LeaderReactivated, LeaderRegistered, LeaderUpdated, MemberConsentChanged,
                                  MemberErased, MemberRegistered, MemberStatusChanged, MemberTransferred,
                                  MemberUpdated, SiteCreated, SiteUpdated)

from matching import handlers

SUBSCRIPTIONS: dict = {
    SiteCreated: handlers.on_site_changed,
    SiteUpdated: handlers.on_site_changed,
    MemberRegistered: handlers.on_member_registered,
    MemberUpdated: handlers.on_member_updated,
    MemberConsentChanged: handlers.on_member_consent_changed,
    MemberStatusChanged: handlers.on_member_status_changed,
    MemberTransferred: handlers.on_member_transferred,
    MemberErased: handlers.on_member_erased,
    LeaderRegistered: handlers.on_leader_registered,
    LeaderUpdated: handlers.on_leader_updated,
    LeaderCapacityChanged: handlers.on_leader_capacity_changed,
    LeaderAvailabilityChanged: handlers.on_leader_availability_changed,
    LeaderDeactivated: handlers.on_leader_deactivated,
    LeaderReactivated: handlers.on_leader_reactivated,
}
