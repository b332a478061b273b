"""A match's life: its statuses, the transitions allowed between them, and whether a new proposal
follows an ending; plus reading matching consent and certification from intake's records."""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Iterable

from shared.errors import Conflict

PROPOSED, ACTIVE, DECLINED, EXPIRED, ENDED = "proposed", "active", "declined", "expired", "ended"
OPEN_STATUSES = (PROPOSED, ACTIVE)          # count against the leader's capacity
MATCH_STATUSES = (PROPOSED, ACTIVE, DECLINED, EXPIRED, ENDED)
ELIGIBLE_MEMBER_STATUSES = ("active", "pending_consent")  # pending_consent still needs the consent itself
# Why a match ended -> does a new proposal follow? (The member's own choice to stop does not; asking
# for a different leader is handled as member_choice *with* a re-proposal by the use case.)
RE_PROPOSE_AFTER = {
    "member_choice": False, "leader_choice": True, "coordinator": True, "leader_left": True,
    "certification_lapsed": True, "consent_revoked": False, "member_inactive": False, "member_erased": False,
}


class TransitionError(Conflict):
    """The match is not in a state that allows this (answered 409)."""


ALLOWED = {
    "accept": (PROPOSED,),
    "decline": (PROPOSED,),
    "expire": (PROPOSED,),
    "end": (PROPOSED, ACTIVE),
}


def check_transition(status: str, action: str) -> None:
    if status not in ALLOWED[action]:
        raise TransitionError(f"a {status} match cannot be {'ended' if action == 'end' else action + 'd'}")


def changed_fields(stored: dict, fields: dict) -> dict:
    """The fields whose value differs from the stored record. Empty when an event repeats what matching
    already holds (a registration's consents come again as consent changes right after it): nothing to do."""
    return {name: value for name, value in fields.items() if stored.get(name) != value}


def certification_valid_until(certifications: Iterable[dict]) -> tuple[bool, date | None]:
    """(holds any certification, latest expiry or None when one never expires)."""
    certs = list(certifications or [])
    if not certs:
        return False, None
    expiries = []
    for cert in certs:
        value = cert.get("expires_on")
        if value in (None, ""):
            return True, None
        expiries.append(value if isinstance(value, date) else date.fromisoformat(str(value)[:10]))
    return True, max(expiries)


def matching_consent(consents: Iterable[dict]) -> tuple[bool, datetime | None]:
    for consent in consents or []:
        if consent.get("purpose") == "matching":
            value = consent.get("expires_at")
            if value in (None, ""):
                return True, None
            if isinstance(value, datetime):
                return True, value if value.tzinfo else value.replace(tzinfo=timezone.utc)
            return True, datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return False, None
