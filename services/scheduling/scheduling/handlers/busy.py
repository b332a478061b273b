"""When a leader or a member is taken (facilitated meetings, booked sessions), and the refusal of a
time that clashes with it."""
from __future__ import annotations

from datetime import datetime

from shared.errors import Conflict

from scheduling import model
from scheduling.model import Busy
from scheduling.repository import Store


def leader_busy(store: Store, org: str, leader_id: str, start: datetime, end: datetime, *,
                exclude_meeting: str | None = None, exclude_occurrence: str | None = None,
                exclude_session: str | None = None) -> list[Busy]:
    busy: list[Busy] = []
    meetings, _ = store.meetings(org, leader_id=leader_id)
    for meeting in meetings:
        if meeting["_id"] == exclude_meeting:
            continue
        for occ in model.occurrences(meeting, start, end):
            if occ.occurrence_id != exclude_occurrence:
                busy.append(Busy(occ.start, occ.end, "meeting", meeting["_id"], meeting["name"], occ.occurrence_id))
    for session in store.booked_sessions(org, person_field="leader_id", person_id=leader_id, start=start, end=end):
        if session["_id"] != exclude_session:
            busy.append(Busy(session["start"], session["end"], "session", session["_id"], "one-on-one session"))
    return busy


def member_busy(store: Store, org: str, member_id: str, start: datetime, end: datetime, *,
                exclude_session: str | None = None) -> list[Busy]:
    return [Busy(s["start"], s["end"], "session", s["_id"], "one-on-one session")
            for s in store.booked_sessions(org, person_field="member_id", person_id=member_id, start=start, end=end)
            if s["_id"] != exclude_session]


def refuse_leader_clash(store: Store, org: str, leader_id: str, wanted: list[tuple[datetime, datetime]],
                        tz_name: str, **exclude) -> None:
    if not wanted:
        return
    start, end = min(w[0] for w in wanted), max(w[1] for w in wanted)
    clash = model.find_clash(wanted, leader_busy(store, org, leader_id, start, end, **exclude))
    if clash:
        item = clash[1]
        raise Conflict(model.clash_message(f"Leader {leader_id}", clash, tz_name), field="facilitator_id",
                       clash={"kind": item.kind, "id": item.ref_id, "name": item.name,
                              "occurrence_id": item.occurrence_id, "start": item.start.isoformat(),
                              "end": item.end.isoformat()})


def refuse_member_clash(store: Store, org: str, member_id: str, wanted: list[tuple[datetime, datetime]],
                        tz_name: str, *, exclude_session: str | None) -> None:
    start, end = wanted[0]
    clash = model.find_clash(wanted, member_busy(store, org, member_id, start, end, exclude_session=exclude_session))
    if clash:
        raise Conflict(model.clash_message(f"Member {member_id}", clash, tz_name), field="start",
                       clash={"kind": "session", "id": clash[1].ref_id, "name": clash[1].name})
