"""Signing in: codes and their hashes, the address a person signs in with, who may sign in and as
what, and the rate-limit window."""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta, timezone

from shared.errors import Invalid

from intake.model.validators import email_key, normalize_email, normalize_phone


# --- signing in --------------------------------------------------------------------------------

# The short code a person types: 8 characters of an alphabet without look-alikes (no 0/O, 1/I/L),
# 32**8 = 2**40 codes; the link carries a separate 256-bit token. Only their SHA-256 is stored.
SIGNIN_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
SIGNIN_CODE_LENGTH = 8
STAFF_ROLES = ("admin", "coordinator")
STAFF_STATUSES = ("invited", "active", "inactive")
CHOOSE_ORGANIZATION = "https://recoverynet.org/problems/choose-organization"
INVALID_CODE = "https://recoverynet.org/problems/invalid-sign-in-code"


def new_signin_code() -> tuple[str, str]:
    """(short code, link token): a fresh pair from the operating system's secure random source."""
    code = "".join(secrets.choice(SIGNIN_CODE_ALPHABET) for _ in range(SIGNIN_CODE_LENGTH))
    return code, secrets.token_urlsafe(32)


def display_code(code: str) -> str:
    """The short code as people read it: ABCD-EFGH."""
    return f"{code[:4]}-{code[4:]}"


def code_hashes(value: str) -> list[str]:
    """What a typed or linked code may hash to: the link token as sent, and the short code with its
    spaces and dashes removed, in upper case (people type 'abcd efgh')."""
    raw = (value or "").strip()
    short = re.sub(r"[\s-]", "", raw).upper()
    return sorted({hashlib.sha256(v.encode()).hexdigest() for v in (raw, short) if v})


def code_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def sign_in_address(data: dict) -> tuple[str, str, str]:
    """(key type, comparison key, channel) of the address a person signs in with: an email or a phone."""
    email, phone = data.get("email"), data.get("phone")
    if bool(email) == bool(phone):
        raise Invalid({"email": ["Give an email or a phone number (one of them)."]})
    if email:
        return "email", email_key(normalize_email(email)), "email"
    return "phone", normalize_phone(phone), "sms"


def may_sign_in(kind: str, person: dict | None) -> bool:
    """Who may sign in: members unless discharged or erased; leaders unless retired (one on leave may,
    to see their schedule); staff unless deactivated (invited staff may: signing in accepts the
    invitation); operators unless deactivated."""
    if person is None or person.get("erased"):
        return False
    status = person.get("status")
    if kind == "member":
        return status not in ("discharged", "erased")
    if kind == "leader":
        return status != "retired"
    return status != "inactive"


def sign_in_identity(kind: str, person: dict) -> dict:
    """What a code can sign in as, and the token claims of that: role, organization, sites, subject."""
    person_id = person["_id"]
    if kind == "operator":
        return {"person_kind": kind, "person_id": person_id, "organization_id": None, "role": "operator",
                "sites": [], "subject": f"operator:{person_id}"}
    out = {"person_kind": kind, "person_id": person_id, "organization_id": person["organization_id"],
           "subject": f"{kind}:{person_id}"}
    if kind == "staff":
        role = person.get("role") or "coordinator"
        return {**out, "role": role, "sites": [] if role == "admin" else list(person.get("site_ids") or [])}
    if kind == "leader":
        return {**out, "role": "leader", "sites": list(person.get("site_ids") or []), "leader_id": person_id}
    return {**out, "role": "member", "sites": [person["site_id"]] if person.get("site_id") else [],
            "member_id": person_id}


def sign_in_language(person: dict, default_language: str = "en") -> str:
    languages = person.get("languages") or []
    return person.get("preferred_language") or (languages[0] if languages else default_language)


def choose_identity(identities: list[dict], organization_id: str | None, role: str | None) -> list[dict]:
    """The identities of a code that match the organization (and role) asked for: exactly one signs in;
    several mean the person must choose. An organization (or role) the code does not open is a 422."""
    candidates = [i for i in identities
                  if (organization_id is None or i["organization_id"] == organization_id)
                  and (role is None or i["role"] == role)]
    if not candidates:
        field = "organization_id" if organization_id is not None else "role"
        raise Invalid({field: ["This code does not sign in to that organization (or role)."]})
    return candidates


def rate_window(now: datetime, window_seconds: int) -> tuple[datetime, datetime]:
    """The fixed window ``now`` falls in: (start, end)."""
    epoch = int(now.timestamp())
    start = datetime.fromtimestamp(epoch - epoch % window_seconds, tz=timezone.utc)
    return start, start + timedelta(seconds=window_seconds)


def rate_limited(count: int, limit: int, window_end: datetime, now: datetime) -> int | None:
    """Seconds to wait when the window's ``count`` (this request included) is over ``limit``; else None."""
    if count <= limit:
        return None
    return max(1, int((window_end - now).total_seconds() + 0.999))
