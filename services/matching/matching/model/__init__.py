"""Matching's domain rules: who may be paired with whom (hard rules), how well (a 0-100 soft score with
a breakdown in plain words), and the optimal capacitated assignment of many members at once.

Pure: no Flask, pymongo or Kafka. Members and leaders are plain dataclasses built by the repository
from intake's events. Scoring is vectorised over leaders (numpy) so a batch of 10,000 members x 500
leaders is scored in seconds, and the single-pair explanation uses the very same arithmetic.

The rules live in one module per purpose: ``people`` (the read model as the rules see it), ``availability``
(weekly windows on a UTC grid), ``scoring`` (hard rules and the soft score), ``wording`` (decisions in
words), ``assignment`` (the solver) and ``lifecycle`` (a match's statuses and transitions). Every public
name is re-exported here, so ``from matching import model; model.X`` keeps working.
"""
from matching.model.lifecycle import (ACTIVE, ALLOWED, DECLINED, ELIGIBLE_MEMBER_STATUSES, ENDED, EXPIRED,
                                      MATCH_STATUSES, OPEN_STATUSES, PROPOSED, RE_PROPOSE_AFTER, TransitionError,
                                      certification_valid_until, changed_fields, check_transition, matching_consent)
from matching.model.people import (LANGUAGE_NAMES, Context, Leader, Member, Window, _language_base, _norm,
                                   language_name)
from matching.model.availability import (DAY_NAMES, DAY_SHORT, SLOT_MINUTES, SLOTS_PER_WEEK, _slots,
                                         availability_slots, describe_availability, week_start)
from matching.model.scoring import (DEFAULT_WEIGHTS, PART_TITLES, PARTS, RULES, TARGET_OVERLAP_HOURS, Evaluation,
                                    InvalidWeights, LeaderTable, evaluate, load_fraction, member_consent_ok,
                                    normalise_weights)
from matching.model.wording import (_listing, explain, rules_failed_in_words, rules_in_words, waitlist_reason)
from matching.model.assignment import Assignment, assign, greedy_assign
