"""Consents: given, revoked, in force, and their expiries."""
from __future__ import annotations

from datetime import datetime, timezone

from shared.errors import NotFound

from intake.model.validators import check_consent_purpose
from intake.model.vocabularies import _err


# --- consents ----------------------------------------------------------------------------------


def _aware(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def consent_active(consent: dict, now: datetime) -> bool:
    if consent.get("revoked_at") is not None:
        return False
    expires = _aware(consent.get("expires_at"))
    return expires is None or expires > now


def consents_in_force(consents: dict[str, dict], now: datetime) -> list[dict]:
    """The contract's ``ConsentInForce`` list: purposes given, not revoked and not expired."""
    return [
        {"purpose": purpose, "expires_at": _aware(c.get("expires_at"))}
        for purpose, c in sorted(consents.items())
        if consent_active(c, now)
    ]


def grant_consent(consents: dict[str, dict], purpose: str, *, by: str, at: datetime,
                  expires_at: datetime | None, note: str | None = None) -> dict:
    purpose = check_consent_purpose(purpose)
    expires_at = _aware(expires_at)
    if expires_at is not None and expires_at <= at:
        raise _err("expires_at", "The expiry must be in the future.")
    updated = dict(consents)
    updated[purpose] = {"granted_at": at, "recorded_by": by, "expires_at": expires_at, "revoked_at": None,
                        "revoked_by": None, "note": note}
    return updated


def revoke_consent(consents: dict[str, dict], purpose: str, *, by: str, at: datetime) -> dict:
    purpose = check_consent_purpose(purpose)
    current = consents.get(purpose)
    if current is None or not consent_active(current, at):
        raise NotFound(f"No consent for {purpose!r} is in force.")
    updated = dict(consents)
    updated[purpose] = {**current, "revoked_at": at, "revoked_by": by}
    return updated


def consents_expired_between(consents: dict[str, dict], since: datetime | None, now: datetime) -> list[str]:
    """Purposes whose expiry passed in (since, now]: each becomes a 'revoked by expiry' event."""
    out = []
    for purpose, c in consents.items():
        expires = _aware(c.get("expires_at"))
        if c.get("revoked_at") is None and expires is not None and expires <= now and (since is None or expires > since):
            out.append(purpose)
    return sorted(out)


# --- consent expiries --------------------------------------------------------------------------


def consent_expiries(consents: dict) -> list[datetime]:
    """Expiry times still to announce (the worker's job emits a revocation when one passes)."""
    return sorted(c["expires_at"] for c in consents.values()
                  if c.get("expires_at") and c.get("revoked_at") is None and not c.get("expiry_announced"))


def expiries_due(consents: dict, now: datetime) -> list[str]:
    """Purposes whose expiry has passed and has not been announced yet."""
    return [p for p, c in consents.items()
            if c.get("expires_at") and c["expires_at"] <= now and c.get("revoked_at") is None
            and not c.get("expiry_announced")]
