"""Handlers of the events scheduling subscribes to (``subscriptions.py`` maps them): intake's sites and
people feed the read model, matching's matches open and close one-on-one sessions. Each runs in the unit
of work the consumer opens."""
from __future__ import annotations

from shared.events import intake
from shared.messaging.envelope import Event
from shared.mongo import utcnow
from shared.events.scheduling import MeetingUpdated
from shared.unit_of_work import UnitOfWork

from scheduling import model
from scheduling.config import Settings
from scheduling.handlers.meetings import meeting_event_data, promote_waiting, save_seat_count, seat_count
from scheduling.handlers.sessions import cancel_booked, emit_suggestions
from scheduling.repository import Store


def on_site_changed(settings: Settings):
    def handle(evt: Event, uow: UnitOfWork) -> None:
        d, org = evt.data, evt.organization_id
        store = Store.of(uow)
        before = store.site(org, d["site_id"])
        store.save_site(org, d["site_id"], {"name": d["name"], "time_zone": d["time_zone"],
                                            "virtual_only": d["virtual_only"], "location": d.get("location")})
        if before is not None and before.get("time_zone") != d["time_zone"]:
            # The meetings there keep their local wall time in the site's new zone.
            for meeting in store.meetings_at_site(org, d["site_id"]):
                store.update_meeting(org, meeting["_id"], {"time_zone": d["time_zone"]})
                regs = store.registrations(org, meeting["_id"])
                uow.emit(MeetingUpdated, {**meeting_event_data({**meeting, "time_zone": d["time_zone"]}),
                                          "registrant_ids": model.registrant_ids(regs)})
    return handle


def _suggest_for_waiting_matches(uow: UnitOfWork, settings: Settings, org: str, person_field: str,
                                 person_id: str) -> None:
    store = Store.of(uow)
    for match in store.matches_awaiting_suggestions(org, person_field, person_id):
        emit_suggestions(uow, store, settings, org, match)


def on_leader_changed(settings: Settings):
    def handle(evt: Event, uow: UnitOfWork) -> None:
        d = evt.data
        fields = {k: d[k] for k in ("site_ids", "status", "time_zone", "availability", "languages") if k in d}
        if evt.declaration is intake.LeaderDeactivated:
            fields = {"status": d["to_status"]}
        elif evt.declaration is intake.LeaderReactivated:
            fields = {"status": "active"}
        Store.of(uow).save_person("leader", evt.organization_id, d["leader_id"], fields)
        if "availability" in fields:
            _suggest_for_waiting_matches(uow, settings, evt.organization_id, "leader_id", d["leader_id"])
    return handle


def on_member_changed(settings: Settings):
    def handle(evt: Event, uow: UnitOfWork) -> None:
        d = evt.data
        fields = {k: d[k] for k in ("site_id", "status", "time_zone", "availability", "languages") if k in d}
        Store.of(uow).save_person("member", evt.organization_id, d["member_id"], fields)
        _suggest_for_waiting_matches(uow, settings, evt.organization_id, "member_id", d["member_id"])
    return handle


def on_member_erased(evt: Event, uow: UnitOfWork) -> None:
    """Erasure: sessions to come are cancelled (the leader is told), registrations and reminders are
    removed (freed seats go to the waitlist), attendance lists drop the id, the profile is deleted."""
    org, member_id = evt.organization_id, evt.data["member_id"]
    store = Store.of(uow)
    now = utcnow()
    sessions, _ = store.sessions(org, member_id=member_id, status="booked", starts_after=now)
    for doc in sessions:
        cancel_booked(uow, store, doc, "system", "member_erased")
    store.anonymize_sessions(org, member_id)
    meeting_ids = {r["meeting_id"] for r in store.registrations_of_member(org, member_id, ("registered", "waitlisted"))}
    store.forget_member_everywhere(org, member_id)
    for meeting_id in sorted(meeting_ids):
        meeting = store.meeting(org, meeting_id)
        if meeting is None:
            continue
        store.lock(f"meeting:{meeting_id}")
        count = seat_count(store, meeting, now, recount=True)   # their registrations are gone: count again
        if meeting["status"] == "active":
            promote_waiting(uow, store, meeting, now, count)
        else:
            save_seat_count(store, meeting, count)
    for match in store.matches_of_member(org, member_id):
        store.save_match(org, match["match_id"], {"member_id": "erased", "status": "ended"})
    store.delete_person("member", org, member_id)


def on_match_activated(settings: Settings):
    def handle(evt: Event, uow: UnitOfWork) -> None:
        d, org = evt.data, evt.organization_id
        store = Store.of(uow)
        store.save_match(org, d["match_id"], {"member_id": d["member_id"], "leader_id": d["leader_id"],
                                              "site_id": d["site_id"], "status": "active", "activated_at": evt.time})
        emit_suggestions(uow, store, settings, org, store.match(org, d["match_id"]))
    return handle


def on_match_ended(evt: Event, uow: UnitOfWork) -> None:
    d, org = evt.data, evt.organization_id
    store = Store.of(uow)
    store.save_match(org, d["match_id"], {"member_id": d["member_id"], "leader_id": d["leader_id"],
                                          "site_id": d["site_id"], "status": "ended"})
    sessions, _ = store.sessions(org, match_id=d["match_id"], status="booked", starts_after=utcnow())
    for doc in sessions:
        cancel_booked(uow, store, doc, "system", f"match ended ({d['reason_code']})")
