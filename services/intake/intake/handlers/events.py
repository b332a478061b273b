"""Handlers of the events intake subscribes to (``subscriptions.py`` maps them): matching's match events
keep ``matches``, intake's copy of who is matched with whom, so that a member sees their peer leader
(``/v1/me/leader``) and a leader sees the members they are matched with, only while the match lasts
(``/v1/me/members``). Each runs in the unit of work the consumer opens."""
from __future__ import annotations

from shared.events import matching
from shared.messaging.envelope import Event
from shared.unit_of_work import UnitOfWork

from intake import model
from intake.repository import Store

STATUS_OF = {
    matching.MatchProposed: "proposed",
    matching.MatchAccepted: "accepted",
    matching.MatchActivated: "active",
    matching.MatchDeclined: "declined",
    matching.MatchExpired: "expired",
    matching.MatchEnded: "ended",
}


def on_match_changed(evt: Event, uow: UnitOfWork) -> None:
    """A match was proposed, accepted, activated, declined, expired or ended: the copy moves on (never
    back: a closed match stays closed, whatever arrives late)."""
    d, org = evt.data, evt.organization_id
    status = STATUS_OF[evt.declaration]
    store = Store.of(uow)
    current = store.match(org, d["match_id"])
    if not model.match_update(current, status):
        return
    fields = {"member_id": d["member_id"], "leader_id": d["leader_id"], "site_id": d["site_id"],
              "status": status, "open": status in model.OPEN_MATCH_STATUSES, "updated_at": evt.time}
    if current is None:
        fields["created_at"] = evt.time
    store.save_match(org, d["match_id"], fields)
