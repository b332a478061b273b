"""What intake's fields may hold: recovery pathways, channels, consent purposes, language and time
forms, the adult age; and the one-field ``Invalid`` every rule raises."""
from __future__ import annotations

import re

from shared.errors import Invalid


# --- vocabularies ------------------------------------------------------------------------------

PATHWAYS = ("twelve_step", "smart", "medication_assisted", "faith_based", "harm_reduction",
            "tapering_prescribed_medication", "other")
# Channels a person may choose: the contract's (shared/events/intake.CHANNELS), the ones notifications
# delivers to a person on. "in_app" is accepted as a spelling of "inapp". Not "webhook": webhooks go to
# an organization's endpoints (set in notifications), never to a person, so intake refuses it (issue 13).
CHANNELS = ("email", "sms", "inapp")
CHANNEL_ALIASES = {"in_app": "inapp", "in-app": "inapp"}
NOT_A_PERSON_CHANNEL = {"webhook": "webhooks go to the organization's endpoints (notifications' /v1/webhooks), "
                                   "not to a person"}
CONSENT_PURPOSE_RE = re.compile(r"^(matching|notify:(email|sms|inapp)|share:[a-z0-9][a-z0-9_-]{0,62})$")
# What a caller may send: the purposes and the channel spellings check_consent_purpose normalizes.
CONSENT_PURPOSE_INPUT_RE = re.compile(r"^(matching|notify:(email|sms|inapp|in_app|in-app)|share:[a-z0-9][a-z0-9_-]{0,62})$")
LANGUAGE_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
ADULT_AGE = 18
MEMBER_IDENTIFYING_FIELDS = ("first_name", "last_name", "preferred_name", "pronouns", "email", "phone",
                             "date_of_birth", "external_id", "address", "notes")


def _err(field: str, message: str) -> Invalid:
    return Invalid({field: [message]})
