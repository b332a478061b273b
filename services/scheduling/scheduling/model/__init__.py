"""Scheduling's domain rules: recurrence in local wall time, occurrence exceptions, facilitator
conflicts, capacity and waitlist, availability intersection, session suggestions, reminder timing.

No Flask, pymongo or Kafka here: plain data in, plain data out (unit-tested in tests/unit).
Every instant handled here is an aware UTC ``datetime``; local wall times are naive ``datetime``s
paired with an IANA zone name.

One module per purpose, every name re-exported here (``from scheduling import model; model.X`` and
``from scheduling.model import X`` keep working):

  zones         instants and local wall times
  recurrence    rules, occurrences and their exceptions; a meeting's slug
  conflicts     what a person is booked for, and clashes with it
  seats         capacity and waitlist
  availability  weekly windows as intervals, interval algebra, session suggestions
  reminders     reminder timing
"""
from shared.clock import zone  # noqa: F401  (model.zone and model.Invalid are used by the handlers and feeds)
from shared.errors import Invalid  # noqa: F401
from scheduling.model.zones import UTC, as_utc, to_instant, to_local, to_utc
from scheduling.model.recurrence import (ALLOWED_FREQUENCIES, MAX_EXPANSION, Occurrence, Schedule, apply_exception,
                                         exception_key, expand, is_rule_occurrence, normalize_rrule, occurrence_id,
                                         occurrences, parse_occurrence_id, parse_rule, rule_weekdays, schedule_of,
                                         slugify, validate_rule)
from scheduling.model.conflicts import Busy, clash_message, find_clash, overlaps
from scheduling.model.seats import (OccurrenceSeats, Seat, SeatCount, _occupancy, decide_by_count,
                                    decide_registration, fits, promotions, promotions_by_count, registrant_ids,
                                    seat_count_of, seats_of, waitlist_position)
from scheduling.model.availability import (DAY_NAMES, Interval, _ceil_to, _clock, intersect, merge,
                                           outside_availability_message, subtract, suggest_slots,
                                           weekly_to_intervals, within, within_availability)
from scheduling.model.reminders import due_offsets, parse_offsets, reminder_id
