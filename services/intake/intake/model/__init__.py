"""Intake's domain rules: validation of people, consents, screenings, lifecycle, erasure.

No Flask, no pymongo, no Kafka. Everything here is a pure function of its arguments (the clock is
passed in), so it is unit-tested without servers. Errors are the platform's domain errors
(``shared.errors``: ``Invalid`` -> 422 naming fields, ``Conflict`` -> 409, ``NotFound`` -> 404), which the
app factory answers as problem+json.

One module per purpose, every name re-exported here (``from intake import model; model.X`` and
``from intake.model import X`` keep working):

  vocabularies  what fields may hold (pathways, channels, consent purposes, forms)
  validators    scalar validators (time zone, email, phone, date of birth, languages, availability, ...)
  people        a person's fields validated together, identity keys, duplicates, ids and actors
  consents      consents given, revoked, in force, and their expiries
  lifecycle     member and leader statuses, certifications, capacity
  screenings    screenings scored with their risk flags; the plan's revisions
  signin        sign-in codes, who may sign in as what, the rate-limit window
  snapshots     what intake's events carry; contact changes; what is kept of an erased member
  views         what each reader sees: the API's member view, self-service views
"""
from intake.model.vocabularies import (ADULT_AGE, CHANNEL_ALIASES, CHANNELS, CONSENT_PURPOSE_INPUT_RE,
                                       CONSENT_PURPOSE_RE, LANGUAGE_RE, MEMBER_IDENTIFYING_FIELDS,
                                       NOT_A_PERSON_CHANNEL, PATHWAYS, TIME_RE, _err)
from intake.model.validators import (_time_zones, age_on, check_availability, check_channels,
                                     check_consent_purpose, check_date_of_birth, check_languages, check_pathways,
                                     check_time_zone, email_key, normalize_email, normalize_phone)
from intake.model.people import (IDENTITY_LABELS, SYSTEM, actor, check_contact_kept, display_name, duplicate,
                                 identity_keys, new_id, normalize_person, patched, person_keys)
from intake.model.consents import (_aware, consent_active, consent_expiries, consents_expired_between,
                                   consents_in_force, expiries_due, grant_consent, revoke_consent)
from intake.model.lifecycle import (LEADER_TRANSITIONS, MEMBER_TRANSITIONS, STRETCH_NOTE_MAX, certifications_current,
                                    check_capacity, check_leader_transition, check_member_transition,
                                    initial_member_status, is_stretched, stretched)
from intake.model.screenings import (INSTRUMENTS, _check_items, revise_plan, score_screening)
from intake.model.signin import (CHOOSE_ORGANIZATION, INVALID_CODE, SIGNIN_CODE_ALPHABET, SIGNIN_CODE_LENGTH,
                                 STAFF_ROLES, STAFF_STATUSES, choose_identity, code_hash, code_hashes,
                                 display_code, may_sign_in, new_signin_code, rate_limited, rate_window,
                                 sign_in_address, sign_in_identity, sign_in_language)
from intake.model.snapshots import (CONTACT_FIELDS, _iso_date, contact_changed, contact_snapshot, erased_member,
                                    leader_snapshot, member_snapshot, stretched_since)
from intake.model.views import (CONSENT_PURPOSE_MEANINGS, LEADER_SELF_FIELDS, MATCH_STATUS_RANK,
                                MEMBER_SELF_FIELDS, MEMBER_SELF_VIEW, OPEN_MATCH_STATUSES, SELF_SERVICE_DEFAULTS,
                                SHARE_LEADER, leader_public_view, match_update, member_for_leader,
                                member_self_view, member_view, self_service)
