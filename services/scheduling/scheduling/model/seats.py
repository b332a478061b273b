"""Capacity and waitlist: seats per occurrence, who is registered or waits, and who is promoted when
a seat frees up (first come, first served)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Iterable, Sequence

from scheduling.model.zones import as_utc

@dataclass(frozen=True)
class Seat:
    """A registration as capacity sees it. ``occurrence_id`` None: the whole series."""

    registration_id: str
    occurrence_id: str | None
    status: str         # registered | waitlisted
    order: tuple        # (created_at, id): first come, first served


def seats_of(registrations: list[dict], now: datetime) -> list[Seat]:
    """Capacity looks at series registrations and at registrations for occurrences still to come."""
    return [Seat(r["_id"], r.get("occurrence_id"), r["status"], (r["created_at"], r["_id"]))
            for r in registrations
            if r.get("occurrence_id") is None or as_utc(r["occurrence_end"]) > now]


def registrant_ids(registrations: list[dict], occurrence_id: str | None = None) -> list[str]:
    """Members who hold or wait for a seat at the whole series or (given) at that occurrence (a peer leader's
    own seat at a support group for peer providers is not a member's: left out)."""
    ids = [r["member_id"] for r in registrations if r.get("registrant_kind", "member") == "member"
           and r.get("occurrence_id") is None or (occurrence_id is not None and r.get("occurrence_id") == occurrence_id)]
    return sorted(set(ids))


def _occupancy(seats: Iterable[Seat]) -> tuple[int, dict[str, int]]:
    series = 0
    per_occurrence: dict[str, int] = {}
    for seat in seats:
        if seat.status != "registered":
            continue
        if seat.occurrence_id is None:
            series += 1
        else:
            per_occurrence[seat.occurrence_id] = per_occurrence.get(seat.occurrence_id, 0) + 1
    return series, per_occurrence


def fits(capacity: int, seats: Iterable[Seat], occurrence: str | None) -> bool:
    """Capacity holds per occurrence: series registrants sit at every occurrence, single-occurrence
    registrants at theirs. A series seat needs room at every occurrence that has single registrants."""
    series, per_occurrence = _occupancy(seats)
    if occurrence is None:
        return series + max(per_occurrence.values(), default=0) < capacity
    return series + per_occurrence.get(occurrence, 0) < capacity


def decide_registration(capacity: int, seats: Sequence[Seat], occurrence: str | None) -> str:
    """'registered' when a seat is free and nobody waits for it; otherwise 'waitlisted'."""
    waiting_same_scope = any(s.status == "waitlisted" and s.occurrence_id == occurrence for s in seats)
    if not waiting_same_scope and fits(capacity, seats, occurrence):
        return "registered"
    return "waitlisted"


def promotions(capacity: int, seats: Sequence[Seat]) -> list[str]:
    """Waitlisted registrations that now have a seat, first come first served within each scope
    (a series waiter never jumps a series waiter ahead of them; same per occurrence)."""
    current = list(seats)
    promoted: list[str] = []
    blocked_scopes: set = set()
    for seat in sorted((s for s in seats if s.status == "waitlisted"), key=lambda s: s.order):
        if seat.occurrence_id in blocked_scopes:
            continue
        others = [s for s in current if s.registration_id != seat.registration_id]
        if fits(capacity, others, seat.occurrence_id):
            promoted.append(seat.registration_id)
            current = others + [replace(seat, status="registered")]
        else:
            blocked_scopes.add(seat.occurrence_id)
    return promoted


def waitlist_position(seats: Sequence[Seat], registration_id: str) -> int | None:
    me = next((s for s in seats if s.registration_id == registration_id), None)
    if me is None or me.status != "waitlisted":
        return None
    ahead = [s for s in seats if s.status == "waitlisted" and s.occurrence_id == me.occurrence_id and s.order < me.order]
    return len(ahead) + 1


# -- seats as counts (issue 20): what a registration reads instead of every registration of the meeting ----

@dataclass
class OccurrenceSeats:
    registered: int = 0     # single-occurrence registrants holding a seat
    waiting: int = 0        # single-occurrence registrants in line
    end: datetime | None = None  # after it the occurrence no longer counts


@dataclass
class SeatCount:
    """A meeting's seats as counts, kept in one document that each registration, cancellation and
    promotion updates in its own transaction (``version`` guards the update): the series' registrants
    and waiters, and for each occurrence still to come its own. The same numbers ``seats_of`` gives from
    every registration (``seat_count_of`` builds them so, for a meeting that has no count yet)."""

    series: int = 0
    series_waiting: int = 0
    occurrences: dict[str, OccurrenceSeats] = field(default_factory=dict)
    version: int | None = None   # of the stored document; None: not stored yet

    def live(self, now: datetime) -> "SeatCount":
        """Without the occurrences that are over (capacity no longer looks at them)."""
        self.occurrences = {k: v for k, v in self.occurrences.items() if v.end is None or as_utc(v.end) > now}
        return self

    def waiting_in(self, occurrence: str | None) -> int:
        if occurrence is None:
            return self.series_waiting
        return self.occurrences.get(occurrence, OccurrenceSeats()).waiting

    def add(self, occurrence: str | None, status: str, delta: int = 1, end: datetime | None = None) -> None:
        """``delta`` registrants (or waiters) more (or fewer) at the series or at one occurrence."""
        if status not in ("registered", "waitlisted"):
            return
        if occurrence is None:
            if status == "registered":
                self.series = max(0, self.series + delta)
            else:
                self.series_waiting = max(0, self.series_waiting + delta)
            return
        occ = self.occurrences.get(occurrence)
        if occ is None:
            if delta < 0:
                return  # an occurrence that is over (or never counted): nothing to take away
            occ = self.occurrences[occurrence] = OccurrenceSeats(end=end)
        if status == "registered":
            occ.registered = max(0, occ.registered + delta)
        else:
            occ.waiting = max(0, occ.waiting + delta)
        if end is not None:
            occ.end = end
        if not (occ.registered or occ.waiting):
            del self.occurrences[occurrence]   # nobody left there: it counts no more than an untouched one

    def fits(self, capacity: int, occurrence: str | None) -> bool:
        """``fits`` on counts: a series seat needs room at every occurrence that has single registrants."""
        if occurrence is None:
            return self.series + max((o.registered for o in self.occurrences.values()), default=0) < capacity
        return self.series + self.occurrences.get(occurrence, OccurrenceSeats()).registered < capacity

    def to_doc(self) -> dict:
        return {"series": self.series, "series_waiting": self.series_waiting,
                "occurrences": [{"id": k, "registered": v.registered, "waiting": v.waiting, "end": v.end}
                                for k, v in sorted(self.occurrences.items())]}

    @classmethod
    def from_doc(cls, doc: dict) -> "SeatCount":
        return cls(series=doc.get("series", 0), series_waiting=doc.get("series_waiting", 0),
                   occurrences={o["id"]: OccurrenceSeats(o.get("registered", 0), o.get("waiting", 0), o.get("end"))
                                for o in doc.get("occurrences") or []},
                   version=doc.get("version"))


def seat_count_of(registrations: list[dict], now: datetime) -> SeatCount:
    """The counts of a meeting's registrations (registered and waitlisted ones), as ``seats_of`` sees them."""
    count = SeatCount()
    ends = {r["_id"]: r.get("occurrence_end") for r in registrations}
    for seat in seats_of(registrations, now):
        count.add(seat.occurrence_id, seat.status, 1, ends.get(seat.registration_id))
    return count


def decide_by_count(capacity: int, count: SeatCount, occurrence: str | None) -> str:
    """``decide_registration`` on counts: 'registered' when a seat is free and nobody waits for it."""
    if count.waiting_in(occurrence) == 0 and count.fits(capacity, occurrence):
        return "registered"
    return "waitlisted"


def promotions_by_count(capacity: int, count: SeatCount, waiting: Sequence[Seat]) -> list[str]:
    """``promotions`` on counts and the waiters alone (not every registration); ``count`` is updated
    for the promoted."""
    promoted: list[str] = []
    blocked_scopes: set = set()
    for seat in sorted((s for s in waiting if s.status == "waitlisted"), key=lambda s: s.order):
        if seat.occurrence_id in blocked_scopes:
            continue
        if count.fits(capacity, seat.occurrence_id):
            promoted.append(seat.registration_id)
            count.add(seat.occurrence_id, "registered", 1)   # first: the occurrence keeps its entry (and end)
            count.add(seat.occurrence_id, "waitlisted", -1)
        else:
            blocked_scopes.add(seat.occurrence_id)
    return promoted
