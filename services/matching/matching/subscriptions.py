"""{event declaration: handler}: the matching service's whole inbound event surface."""
from __future__ import annotations

from shared.events.intake import (LeaderAvailabilityChanged, LeaderCapacityChanged, LeaderDeactivated,
                                  LeaderReactivated, LeaderRegistered, LeaderUpdated, MemberConsentChanged,
                                  MemberErased, MemberRegistered, MemberStatusChanged, MemberTransferred,
                                  MemberUpdated, SiteCreated, SiteUpdated)

from shared.events.intake import TokensRevoked
from shared.revocations import on_tokens_revoked

from matching.handlers import events

SUBSCRIPTIONS: dict = {
    TokensRevoked: on_tokens_revoked,  # sign-out-everywhere: the token versions refused here
    SiteCreated: events.on_site_changed,
    SiteUpdated: events.on_site_changed,
    MemberRegistered: events.on_member_registered,
    MemberUpdated: events.on_member_updated,
    MemberConsentChanged: events.on_member_consent_changed,
    MemberStatusChanged: events.on_member_status_changed,
    MemberTransferred: events.on_member_transferred,
    MemberErased: events.on_member_erased,
    LeaderRegistered: events.on_leader_registered,
    LeaderUpdated: events.on_leader_updated,
    LeaderCapacityChanged: events.on_leader_capacity_changed,
    LeaderAvailabilityChanged: events.on_leader_availability_changed,
    LeaderDeactivated: events.on_leader_deactivated,
    LeaderReactivated: events.on_leader_reactivated,
}
