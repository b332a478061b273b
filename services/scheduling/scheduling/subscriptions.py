"""{event declaration: handler}: the scheduling service's whole inbound event surface."""
from __future__ import annotations

from shared.events import intake, matching

from shared.revocations import on_tokens_revoked

from scheduling.handlers import events
from scheduling.config import Settings


def subscriptions(settings: Settings) -> dict:
    """The mapping, with handlers that need settings (session suggestion sizes) bound to them."""
    on_site = events.on_site_changed(settings)
    on_leader = events.on_leader_changed(settings)
    on_member = events.on_member_changed(settings)
    return {
        intake.TokensRevoked: on_tokens_revoked,  # sign-out-everywhere: the token versions refused here
        # intake: time zones of sites, and the people who meet
        intake.SiteCreated: on_site,
        intake.SiteUpdated: on_site,
        intake.LeaderRegistered: on_leader,
        intake.LeaderUpdated: on_leader,
        intake.LeaderAvailabilityChanged: on_leader,
        intake.LeaderDeactivated: on_leader,
        intake.LeaderReactivated: on_leader,
        intake.MemberRegistered: on_member,
        intake.MemberUpdated: on_member,
        intake.MemberErased: events.on_member_erased,
        # matching: one-on-one pairs
        matching.MatchActivated: events.on_match_activated(settings),
        matching.MatchEnded: events.on_match_ended,
    }


# With default settings; the worker builds its own from the settings it runs with.
SUBSCRIPTIONS = subscriptions(Settings(platform=None))
