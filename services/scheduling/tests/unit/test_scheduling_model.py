"""Domain rules of scheduling, without I/O."""
from datetime import datetime, timedelta, timezone

import pytest

from scheduling import model
from scheduling.model import Busy, Schedule, Seat

UTC = timezone.utc


def weekly_tuesday(exceptions=None, tz="America/New_York"):
    return Schedule("m1", "FREQ=WEEKLY;BYDAY=TU", datetime(2026, 3, 3, 19, 0), tz, 90, exceptions or {})


def test_weekly_meeting_keeps_local_time_across_spring_forward():
    occs = model.expand(weekly_tuesday(), datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 20, tzinfo=UTC))
    assert [o.local_start for o in occs] == [datetime(2026, 3, d, 19, 0) for d in (3, 10, 17)]
    # 19:00 EST is 00:00Z; after 8 March 19:00 EDT is 23:00Z.
    assert occs[0].start == datetime(2026, 3, 4, 0, 0, tzinfo=UTC)
    assert occs[1].start == datetime(2026, 3, 10, 23, 0, tzinfo=UTC)
    assert occs[1].end - occs[1].start == timedelta(minutes=90)


def test_weekly_meeting_keeps_local_time_across_fall_back_in_europe():
    s = Schedule("m2", "FREQ=WEEKLY;BYDAY=SU", datetime(2026, 10, 18, 10, 0), "Europe/Berlin", 60)
    occs = model.expand(s, datetime(2026, 10, 17, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))
    assert [o.start.hour for o in occs] == [8, 9, 9]  # CEST (+2) then CET (+1)
    assert all(o.local_start.hour == 10 for o in occs)


def test_first_monday_monthly():
    s = Schedule("m3", "FREQ=MONTHLY;BYDAY=1MO", datetime(2026, 1, 5, 18, 30), "America/Chicago", 60)
    occs = model.expand(s, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))
    assert [o.local_start.date().isoformat() for o in occs] == ["2026-01-05", "2026-02-02", "2026-03-02", "2026-04-06"]


def test_cancelled_and_moved_occurrences():
    occs = model.expand(weekly_tuesday(), datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 20, tzinfo=UTC))
    second, third = occs[1], occs[2]
    moved_to = datetime(2026, 3, 18, 23, 0, tzinfo=UTC)
    exceptions = {
        model.exception_key(second.original_start): {"status": "cancelled", "reason": "holiday"},
        model.exception_key(third.original_start): {"status": "moved", "start": moved_to,
                                                    "end": moved_to + timedelta(minutes=90)},
    }
    s = weekly_tuesday(exceptions)
    occs2 = model.expand(s, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 20, tzinfo=UTC))
    assert [o.occurrence_id for o in occs2] == [occs[0].occurrence_id, third.occurrence_id]
    assert occs2[1].status == "moved" and occs2[1].start == moved_to
    with_cancelled = model.expand(s, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 20, tzinfo=UTC),
                                  include_cancelled=True)
    assert [o.status for o in with_cancelled] == ["scheduled", "cancelled", "moved"]
    # A move into a window from outside it is still found.
    only_18th = model.expand(s, datetime(2026, 3, 18, tzinfo=UTC), datetime(2026, 3, 19, 12, tzinfo=UTC))
    assert [o.occurrence_id for o in only_18th] == [third.occurrence_id]


def test_occurrence_ids_round_trip_and_rule_membership():
    occ = model.expand(weekly_tuesday(), datetime(2026, 3, 9, tzinfo=UTC), datetime(2026, 3, 12, tzinfo=UTC))[0]
    meeting_id, start = model.parse_occurrence_id(occ.occurrence_id)
    assert (meeting_id, start) == ("m1", occ.original_start)
    assert model.is_rule_occurrence(weekly_tuesday(), start)
    assert not model.is_rule_occurrence(weekly_tuesday(), start + timedelta(hours=1))


@pytest.mark.parametrize("rule", ["FREQ=HOURLY", "BYDAY=TU", "FREQ=WEEKLY;BYDAY=XX", "FREQ=WEEKLY;UNTIL=20260101T000000Z"])
def test_bad_rules_are_refused_naming_the_field(rule):
    with pytest.raises(model.Invalid) as info:
        model.parse_rule(rule, datetime(2026, 3, 3, 19, 0))
    assert info.value.field == "rrule"


def test_unknown_time_zone_is_refused():
    with pytest.raises(model.Invalid) as info:
        model.zone("Mars/Olympus")
    assert info.value.field == "time_zone"


def test_find_clash_names_the_meeting():
    t0 = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)
    busy = [Busy(t0, t0 + timedelta(hours=1), "meeting", "m9", "Tuesday Hope")]
    assert model.find_clash([(t0 + timedelta(hours=1), t0 + timedelta(hours=2))], busy) is None
    clash = model.find_clash([(t0 + timedelta(minutes=30), t0 + timedelta(hours=2))], busy)
    assert clash[1].ref_id == "m9"
    assert "Tuesday Hope" in model.clash_message("The leader", clash, "America/New_York")


def seat(rid, status, occ=None, n=0):
    return Seat(rid, occ, status, (n, rid))


def test_capacity_then_waitlist_then_promotion_in_order():
    seats = [seat("a", "registered", n=1), seat("b", "registered", n=2)]
    assert model.decide_registration(2, seats, None) == "waitlisted"
    seats += [seat("c", "waitlisted", n=3), seat("d", "waitlisted", n=4)]
    assert model.waitlist_position(seats, "d") == 2
    # a cancels: c (first in line) moves up, d stays waiting.
    remaining = [s for s in seats if s.registration_id != "a"]
    assert model.promotions(2, remaining) == ["c"]
    # A newcomer never jumps the queue even if a seat is free.
    assert model.decide_registration(3, remaining, None) == "waitlisted"


def test_occurrence_registrations_share_the_occurrence_with_series_registrants():
    seats = [seat("a", "registered", n=1), seat("x", "registered", "occ1", n=2)]
    assert model.decide_registration(2, seats, "occ1") == "waitlisted"
    assert model.decide_registration(2, seats, "occ2") == "registered"
    assert model.decide_registration(2, seats, None) == "waitlisted"  # occ1 would be over capacity


def test_availability_intersection_respects_each_zone():
    start = datetime(2026, 3, 9, tzinfo=UTC)  # Monday
    end = start + timedelta(days=7)
    member = model.weekly_to_intervals([{"day": 1, "start": "18:00", "end": "21:00"}], "America/New_York", start, end)
    leader = model.weekly_to_intervals([{"day": 1, "start": "22:00", "end": "24:00"}], "Europe/London", start, end)
    both = model.intersect(member, leader)
    # Tuesday 10 March: member 22:00-01:00Z (EDT), leader 22:00-24:00Z (GMT).
    assert both == [(datetime(2026, 3, 10, 22, 0, tzinfo=UTC), datetime(2026, 3, 11, 0, 0, tzinfo=UTC))]
    slots = model.suggest_slots(both, duration=timedelta(minutes=60), count=3, earliest=start,
                                tz_name="America/New_York")
    assert slots and all(model.within(s, member) and model.within(s, leader) for s in slots)


def test_subtract_busy_time():
    t = datetime(2026, 3, 10, 10, tzinfo=UTC)
    free = [(t, t + timedelta(hours=4))]
    busy = [(t + timedelta(hours=1), t + timedelta(hours=2))]
    assert model.subtract(free, busy) == [(t, t + timedelta(hours=1)), (t + timedelta(hours=2), t + timedelta(hours=4))]


def test_suggestions_prefer_different_days():
    t = datetime(2026, 3, 10, 14, tzinfo=UTC)
    free = [(t, t + timedelta(hours=4)), (t + timedelta(days=1), t + timedelta(days=1, hours=4))]
    slots = model.suggest_slots(free, duration=timedelta(hours=1), count=2, earliest=t, tz_name="UTC")
    assert [s[0].day for s in slots] == [10, 11]


def test_reminder_windows():
    start = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)
    offsets = model.parse_offsets("60,1440")
    assert offsets == (1440, 60)
    assert model.due_offsets(start, offsets, start - timedelta(hours=25)) == []
    assert model.due_offsets(start, offsets, start - timedelta(hours=23)) == [1440]
    assert model.due_offsets(start, offsets, start - timedelta(minutes=30)) == [60]
    assert model.due_offsets(start, offsets, start + timedelta(minutes=1)) == []
    assert model.reminder_id("occ", "member", "m1", 60) == "occ|member:m1|60"


def test_first_start_must_be_the_rules_first_occurrence():
    model.validate_rule("FREQ=WEEKLY;BYDAY=TU", datetime(2026, 3, 3, 19, 0))
    with pytest.raises(model.Invalid) as info:
        model.validate_rule("FREQ=WEEKLY;BYDAY=TU", datetime(2026, 3, 5, 19, 0))
    assert info.value.field == "first_start_local" and "2026-03-10T19:00" in info.value.message
    with pytest.raises(model.Invalid) as info:
        model.validate_rule("FREQ=WEEKLY;UNTIL=20260101T000000", datetime(2026, 3, 5, 19, 0))
    assert info.value.field == "rrule"


def test_seat_counts_decide_and_promote_as_the_registrations_do():
    """Issue 20: a registration decides on the meeting's seat counts instead of every registration. On
    random meetings (series and occurrence registrants, waiters, an occurrence that is over), the counts
    decide each newcomer, place them in line and promote after a cancellation exactly as the rules over
    the registrations do."""
    import random

    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    past, future = now - timedelta(days=1), now + timedelta(days=7)
    rng = random.Random(20)
    for _ in range(300):
        capacity = rng.randint(1, 6)
        regs = []
        for n in range(rng.randint(0, 14)):
            occ = rng.choice([None, None, "occ1", "occ2", "old"])
            regs.append({"_id": f"r{n:02d}", "occurrence_id": occ, "status": rng.choice(["registered", "waitlisted"]),
                         "created_at": now - timedelta(minutes=100 - n),
                         "occurrence_end": None if occ is None else (past if occ == "old" else future)})
        seats, count = model.seats_of(regs, now), model.seat_count_of(regs, now)
        for scope in (None, "occ1", "occ2", "occ3"):
            status = model.decide_registration(capacity, seats, scope)
            assert model.decide_by_count(capacity, count, scope) == status
            if status == "waitlisted":
                newcomer = Seat("new", scope, "waitlisted", (now, "new"))
                assert model.waitlist_position(seats + [newcomer], "new") == count.waiting_in(scope) + 1
        # One registered seat is cancelled: the same waiters move up, and the counts follow.
        registered = [r for r in regs if r["status"] == "registered"]
        if registered:
            gone = rng.choice(registered)
            rest = [r for r in regs if r is not gone]
            count.add(gone["occurrence_id"], "registered", -1)
            waiting = [s for s in model.seats_of(rest, now) if s.status == "waitlisted"]
            expected = model.promotions(capacity, model.seats_of(rest, now))
            assert model.promotions_by_count(capacity, count, waiting) == expected
            after = [{**r, "status": "registered"} if r["_id"] in expected else r for r in rest]
            assert model.seat_count_of(after, now).to_doc() == count.to_doc()


def test_seat_counts_survive_their_document_and_forget_occurrences_that_are_over():
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    count = model.SeatCount()
    count.add(None, "registered")
    count.add("occ1", "registered", 1, now + timedelta(hours=1))
    count.add("occ1", "waitlisted", 1, now + timedelta(hours=1))
    again = model.SeatCount.from_doc({**count.to_doc(), "version": 3})
    assert again.to_doc() == count.to_doc() and again.version == 3
    assert again.fits(3, "occ1") and not again.fits(2, "occ1") and again.waiting_in("occ1") == 1
    later = again.live(now + timedelta(hours=2))
    assert later.occurrences == {} and later.fits(2, None)
