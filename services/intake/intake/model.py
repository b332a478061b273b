"""Intake's domain rules: validation of people, consents, screenings, lifecycle, erasure.

No Flask, no pymongo, no Kafka. Everything here is a pure function of its arguments (the clock is
passed in), so it is unit-tested without servers. Errors are the platform's domain errors
(``shared.errors``: ``Invalid`` -> 422 naming fields, ``Conflict`` -> 409, ``NotFound`` -> 404), which the
app factory answers as problem+json.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import uuid
import zoneinfo
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Iterable

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from shared.clock import minutes_of_day, zone
from shared.errors import Conflict, Invalid, NotFound
from shared.events.intake import LEADER_STATUSES, MEMBER_STATUSES

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


# --- scalar validators -------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_time_zone(value: str, field: str = "time_zone") -> str:
    if not isinstance(value, str) or value not in _time_zones():
        raise _err(field, f"{value!r} is not an IANA time zone (for example Europe/Paris).")
    zone(value, field=field)
    return value


def normalize_email(value: str, field: str = "email") -> str:
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise _err(field, f"Not a valid email address: {exc}") from None
    return result.normalized


def email_key(email: str) -> str:
    """The form two emails are compared in for duplicate detection."""
    return email.strip().lower()


def normalize_phone(value: str, field: str = "phone") -> str:
    if not isinstance(value, str) or not value.strip().startswith("+"):
        raise _err(field, "A phone number must be in international E.164 form, starting with + and the country code.")
    try:
        number = phonenumbers.parse(value.strip(), None)
    except phonenumbers.NumberParseException as exc:
        raise _err(field, f"Not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise _err(field, "Not a valid phone number for its country.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def check_date_of_birth(born: date, today: date, *, allows_youth: bool, field: str = "date_of_birth") -> date:
    if born > today:
        raise _err(field, "The date of birth is in the future.")
    if born.year < 1900:
        raise _err(field, "The date of birth is before 1900.")
    if not allows_youth and age_on(born, today) < ADULT_AGE:
        raise _err(field, f"Members must be adults ({ADULT_AGE} or over): this organization does not accept youth.")
    return born


def check_languages(values: Iterable[str], field: str = "languages") -> list[str]:
    out = []
    for v in values:
        if not isinstance(v, str) or not LANGUAGE_RE.match(v):
            raise _err(field, f"{v!r} is not a BCP 47 language code (for example en, es, pt-BR).")
        if v not in out:
            out.append(v)
    return out


def check_availability(windows: Iterable[dict], field: str = "availability") -> list[dict]:
    out = []
    for i, w in enumerate(windows):
        start, end = w.get("start"), w.get("end")
        if not isinstance(start, str) or not TIME_RE.match(start) or start == "24:00":
            raise _err(field, f"window {i}: start {start!r} is not a local time HH:MM.")
        if not isinstance(end, str) or not TIME_RE.match(end):
            raise _err(field, f"window {i}: end {end!r} is not a local time HH:MM (24:00 allowed).")
        if minutes_of_day(end, end_of_day=True) <= minutes_of_day(start):
            raise _err(field, f"window {i}: end {end} must be after start {start}.")
        if not isinstance(w.get("day"), int) or not 0 <= w["day"] <= 6:
            raise _err(field, f"window {i}: day must be 0 (Monday) to 6 (Sunday).")
        out.append({"day": w["day"], "start": start, "end": end})
    out.sort(key=lambda w: (w["day"], w["start"]))
    return out


def check_channels(values: Iterable[str], field: str = "contact_channels") -> list[str]:
    out = []
    for v in values:
        v = CHANNEL_ALIASES.get(v, v)
        if v in NOT_A_PERSON_CHANNEL:
            raise _err(field, f"{v!r} is not a channel a person can choose: {NOT_A_PERSON_CHANNEL[v]}; "
                              f"choose from {', '.join(CHANNELS)}.")
        if v not in CHANNELS:
            raise _err(field, f"{v!r} is not a channel ({', '.join(CHANNELS)}).")
        if v not in out:
            out.append(v)
    return out


def check_pathways(values: Iterable[str], field: str = "pathways") -> list[str]:
    out = []
    for v in values:
        if v not in PATHWAYS:
            raise _err(field, f"{v!r} is not a recovery pathway ({', '.join(PATHWAYS)}).")
        if v not in out:
            out.append(v)
    return out


def check_consent_purpose(purpose: str, field: str = "purpose") -> str:
    purpose = purpose.strip() if isinstance(purpose, str) else purpose
    if isinstance(purpose, str) and purpose.startswith("notify:"):
        purpose = "notify:" + CHANNEL_ALIASES.get(purpose[7:], purpose[7:])
    if isinstance(purpose, str) and purpose[7:] in NOT_A_PERSON_CHANNEL and purpose.startswith("notify:"):
        raise _err(field, f"{purpose!r} is not a consent purpose a member can give: "
                          f"{NOT_A_PERSON_CHANNEL[purpose[7:]]}; use notify:<email|sms|inapp>.")
    if not isinstance(purpose, str) or not CONSENT_PURPOSE_RE.match(purpose):
        raise _err(field, f"{purpose!r} is not a consent purpose: matching, notify:<email|sms|inapp> "
                          "or share:<program> (lower-case program name).")
    return purpose


# --- people ------------------------------------------------------------------------------------


def normalize_person(data: dict, *, today: date, allows_youth: bool, partial: bool = False,
                     require_contact: bool = True) -> dict:
    """Validate and normalize the person fields of a member or leader (after the HTTP schema's shape
    check). Collects every field's problem, so one 422 names them all."""
    errors: dict[str, list[str]] = {}
    out = dict(data)

    def attempt(field, fn):
        if field in data and data[field] is not None:
            try:
                out[field] = fn(data[field])
            except Invalid as exc:
                for f, msgs in exc.errors.items():
                    errors.setdefault(f, []).extend(msgs)

    attempt("email", normalize_email)
    attempt("phone", normalize_phone)
    attempt("date_of_birth", lambda d: check_date_of_birth(d, today, allows_youth=allows_youth))
    attempt("time_zone", check_time_zone)
    attempt("languages", check_languages)
    attempt("preferred_language", lambda v: check_languages([v], "preferred_language")[0])
    attempt("availability", check_availability)
    attempt("contact_channels", check_channels)
    attempt("pathways", check_pathways)
    for name in ("first_name", "last_name", "preferred_name"):
        if isinstance(out.get(name), str):
            out[name] = out[name].strip()
    if not partial and require_contact and not (data.get("email") or data.get("phone")):
        errors.setdefault("email", []).append("Give an email or a phone number (or both).")
    if errors:
        raise Invalid(errors)
    return out


def patched(before: dict, normalized: dict, patch: dict, fields: Iterable[str]) -> dict:
    """``before`` with each of ``fields`` the patch names set to its normalized value."""
    return {**before, **{k: normalized[k] for k in fields if k in patch}}


def check_contact_kept(merged: dict) -> None:
    """After an update, a person still needs an email or a phone."""
    if not (merged.get("email") or merged.get("phone")):
        raise Invalid({"email": ["Give an email or a phone number (or both)."]})


def identity_keys(person: dict) -> list[tuple[str, str]]:
    """(kind, value) pairs that identify a person within an organization, for duplicate detection."""
    keys = []
    if person.get("email"):
        keys.append(("email", email_key(person["email"])))
    if person.get("phone"):
        keys.append(("phone", person["phone"]))
    return keys


def display_name(person: dict) -> str:
    return person.get("preferred_name") or person.get("first_name") or "there"


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


# --- lifecycle ---------------------------------------------------------------------------------

MEMBER_TRANSITIONS = {
    "pending_consent": {"active", "discharged"},
    "active": {"paused", "discharged", "graduated"},
    "paused": {"active", "discharged", "graduated"},
    "discharged": {"active"},        # re-admission
    "graduated": {"active"},         # came back for support
}


def check_member_transition(current: str, to: str, consents_now: list[dict]) -> None:
    if to not in MEMBER_STATUSES:
        raise _err("to_status", f"{to!r} is not a member status ({', '.join(MEMBER_STATUSES)}).")
    if to == current:
        raise Conflict(f"The member is already {current}.")
    if to not in MEMBER_TRANSITIONS[current]:
        raise Conflict(f"A member cannot go from {current} to {to}.")
    if to == "active" and not consents_now:
        raise Conflict("A member needs at least one consent in force to become active.")


def initial_member_status(consents_now: list[dict]) -> str:
    return "active" if consents_now else "pending_consent"


LEADER_TRANSITIONS = {
    "active": {"on_leave", "retired"},
    "on_leave": {"active", "retired"},
    "retired": {"active"},
}


def check_leader_transition(current: str, to: str) -> None:
    if to not in LEADER_STATUSES:
        raise _err("to_status", f"{to!r} is not a leader status ({', '.join(LEADER_STATUSES)}).")
    if to == current:
        raise Conflict(f"The leader is already {current}.")
    if to not in LEADER_TRANSITIONS[current]:
        raise Conflict(f"A leader cannot go from {current} to {to}.")


def certifications_current(certifications: list[dict], today: date) -> bool:
    """True when no certification has expired (an expired one makes the leader unavailable for new
    matches; matching reads ``expires_on`` from the snapshot)."""
    return all(c.get("expires_on") is None or c["expires_on"] >= today for c in certifications)


def check_capacity(capacity: int) -> int:
    if not isinstance(capacity, int) or capacity < 0 or capacity > 100:
        raise _err("capacity", "Capacity is a whole number from 0 to 100.")
    return capacity


# --- screenings --------------------------------------------------------------------------------

INSTRUMENTS = ("BARC-10", "AUDIT-C", "DAST-10", "PHQ-2")


def _check_items(answers: list, count: int, low: int, high: int) -> list[int]:
    if not isinstance(answers, list) or len(answers) != count:
        raise _err("answers", f"Expected {count} answers, got {len(answers) if isinstance(answers, list) else 'none'}.")
    out = []
    for i, a in enumerate(answers):
        if isinstance(a, bool):
            a = int(a)
        if not isinstance(a, int) or not low <= a <= high:
            raise _err("answers", f"Answer {i + 1} must be a whole number from {low} to {high}.")
        out.append(a)
    return out


def score_screening(instrument: str, answers: list) -> dict:
    """Score a screening from its item answers. Returns total, band, flagged and reason.

    BARC-10 (Vilsaint et al. 2017): 10 items 1-6, total 10-60; 47 or more is the recovery-capital
      threshold linked to sustained remission. Bands: low 10-29, moderate 30-46, strong 47-60.
    AUDIT-C: 3 items 0-4, total 0-12. Bands: low 0-3, moderate 4-5, high 6-7, severe 8-12.
    DAST-10: 10 yes/no items (1 = yes, 0 = no); item 3 ("always able to stop?") is reverse scored.
      Total 0-10. Bands: none 0, low 1-2, moderate 3-5, substantial 6-8, severe 9-10.
    PHQ-2: 2 items 0-3, total 0-6; 3 or more is a positive screen for depression.
    A positive PHQ-2 or a severe band raises a risk flag for the site coordinator.
    """
    if instrument == "BARC-10":
        items = _check_items(answers, 10, 1, 6)
        total = sum(items)
        band = "low" if total < 30 else "moderate" if total < 47 else "strong"
    elif instrument == "AUDIT-C":
        items = _check_items(answers, 3, 0, 4)
        total = sum(items)
        band = "low" if total <= 3 else "moderate" if total <= 5 else "high" if total <= 7 else "severe"
    elif instrument == "DAST-10":
        items = _check_items(answers, 10, 0, 1)
        total = sum(1 - a if i == 2 else a for i, a in enumerate(items))
        band = ("none" if total == 0 else "low" if total <= 2 else "moderate" if total <= 5
                else "substantial" if total <= 8 else "severe")
    elif instrument == "PHQ-2":
        items = _check_items(answers, 2, 0, 3)
        total = sum(items)
        band = "positive" if total >= 3 else "negative"
    else:
        raise _err("instrument", f"{instrument!r} is not an instrument ({', '.join(INSTRUMENTS)}).")
    reason = None
    if instrument == "PHQ-2" and band == "positive":
        reason = "PHQ-2 positive screen"
    elif band == "severe":
        reason = f"{instrument} severe band"
    return {"instrument": instrument, "answers": items, "total": total, "band": band,
            "flagged": reason is not None, "reason": reason}


# --- plans -------------------------------------------------------------------------------------


def revise_plan(current: dict | None, goal: str, next_steps: list[str], *, by: str, at: datetime) -> dict:
    goal = (goal or "").strip()
    if not goal:
        raise _err("goal", "A whole-health goal is required.")
    steps = [s.strip() for s in next_steps if isinstance(s, str) and s.strip()]
    revision = (current or {}).get("revision", 0) + 1
    # A new revision is the member's to share again: its goal is not shown to the leader until they do.
    return {"goal": goal, "next_steps": steps, "revision": revision, "updated_by": by, "updated_at": at,
            "shared_with_leader": False}


# --- snapshots for events (no direct identifiers) ----------------------------------------------


def member_snapshot(member: dict, now: datetime) -> dict:
    return {
        "organization_id": member["organization_id"],
        "member_id": member["_id"],
        "site_id": member["site_id"],
        "status": member["status"],
        "time_zone": member["time_zone"],
        "languages": member.get("languages") or [],
        "leader_gender_preference": member.get("leader_gender_preference"),
        "meeting_mode": member.get("meeting_mode") or "either",
        "availability": member.get("availability") or [],
        "substances": member.get("substances") or [],
        "pathways": member.get("pathways") or [],
        "co_occurring_mental_health": member.get("co_occurring_mental_health") or "prefer_not_to_say",
        "lived_experience_topics": member.get("lived_experience_topics") or [],
        "contact_channels": member.get("contact_channels") or [],
        "consents": consents_in_force(member.get("consents") or {}, now),
    }


def _iso_date(d):
    return d.isoformat() if isinstance(d, date) else d


def leader_snapshot(leader: dict) -> dict:
    return {
        "organization_id": leader["organization_id"],
        "leader_id": leader["_id"],
        "site_ids": leader["site_ids"],
        "status": leader["status"],
        "time_zone": leader["time_zone"],
        "languages": leader.get("languages") or [],
        "gender": leader.get("gender"),
        "meets_virtually": bool(leader.get("meets_virtually")),
        "availability": leader.get("availability") or [],
        "capacity": leader["capacity"],
        "substances": leader.get("substances") or [],
        "pathways": leader.get("pathways") or [],
        "lived_experience_areas": leader.get("lived_experience_areas") or [],
        "co_occurring_mental_health_experience": bool(leader.get("co_occurring_mental_health_experience")),
        "certifications": [{"name": c["name"], "issuer": c.get("issuer"), "expires_on": _iso_date(c.get("expires_on"))}
                           for c in leader.get("certifications") or []],
    }


def contact_snapshot(person: dict, kind: str, site_ids: list[str], default_language: str = "en") -> dict:
    """ContactChanged data: only on the restricted contacts topic."""
    languages = person.get("languages") or []
    return {
        "organization_id": person["organization_id"],
        "person_id": person["_id"],
        "person_kind": kind,
        "display_name": display_name(person),
        "email": person.get("email"),
        "phone": person.get("phone"),
        "preferred_language": person.get("preferred_language") or (languages[0] if languages else default_language),
        "time_zone": person["time_zone"],
        "site_ids": list(site_ids),
        "channels": person.get("contact_channels") or [],
    }


CONTACT_FIELDS = ("first_name", "preferred_name", "email", "phone", "preferred_language", "languages",
                  "time_zone", "contact_channels", "site_id", "site_ids")


def contact_changed(before: dict, after: dict) -> bool:
    return any(before.get(f) != after.get(f) for f in CONTACT_FIELDS)


def erased_member(member: dict, at: datetime) -> dict:
    """What is kept of an erased member: ids and the fact of erasure, nothing that identifies them."""
    return {"_id": member["_id"], "organization_id": member["organization_id"], "site_id": member.get("site_id"),
            "status": "erased", "erased": True, "erased_at": at, "version": member.get("version", 0) + 1}



# --- ids, actors and identities ----------------------------------------------------------------

SYSTEM = "system"  # the actor of what the worker does on its own (a consent expiring)
IDENTITY_LABELS = {"email": "email", "phone": "phone number", "external_id": "external id"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def actor(principal) -> str:
    """Who did it, as records name them: the token's subject, or ``system`` for the worker."""
    return principal.subject if principal else SYSTEM


def person_keys(person: dict) -> list[tuple[str, str]]:
    """Every key that must be unique among an organization's people of one kind: email, phone and
    (members) the organization's external id."""
    keys = identity_keys(person)
    if person.get("external_id"):
        keys.append(("external_id", person["external_id"]))
    return keys


def duplicate(kind: str, key_type: str, person_id: str) -> Conflict:
    """The 409 for a key another person of this kind already holds, pointing at that person."""
    return Conflict(f"A {kind} with this {IDENTITY_LABELS[key_type]} is already registered in this organization.",
                    existing={"id": person_id, "kind": kind, "field": key_type,
                              "href": f"/v1/{'staff' if kind == 'staff' else kind + 's'}/{person_id}"})


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


def member_view(member: dict, now: datetime) -> dict:
    """The member as the API shows it: consents as a list with whether each is in force."""
    consents = [{"purpose": p, "in_force": consent_active(c, now), **c}
                for p, c in sorted((member.get("consents") or {}).items())]
    return {**member, "consents": consents}


# --- self-service: what a member, a leader and a leader's matched member see ---------------------

# The purpose a member gives so that the peer leader they are matched with sees their email and phone.
SHARE_LEADER = "share:leader"
CONSENT_PURPOSE_MEANINGS = {
    "matching": "intake may tell matching about the member so that a peer leader can be proposed.",
    "notify:email": "the platform may send the member messages by email.",
    "notify:sms": "the platform may send the member text messages.",
    "notify:inapp": "the platform may leave the member messages in their in-app inbox.",
    SHARE_LEADER: "the peer leader the member is matched with may see the member's email and phone number.",
    "share:<program>": "the member's record may be shared with the named program.",
}
# What an organization shows its members of their own record (the organization's ``self_service``).
SELF_SERVICE_DEFAULTS = {"share_plan": True, "share_scores": False}
# What a member may change of their own record; what a leader may change of theirs.
MEMBER_SELF_FIELDS = ("preferred_name", "pronouns", "languages", "preferred_language", "contact_channels",
                      "availability")
LEADER_SELF_FIELDS = ("bio", "preferred_name", "pronouns", "languages", "preferred_language", "availability")
# A member's own view of their record: what they gave and what is in force, never staff notes or flags.
MEMBER_SELF_VIEW = ("_id", "organization_id", "site_id", "status", "first_name", "last_name", "preferred_name",
                    "pronouns", "email", "phone", "date_of_birth", "languages", "preferred_language", "time_zone",
                    "availability", "contact_channels", "meeting_mode", "leader_gender_preference")
# Match statuses intake's read model knows; open ones give the leader their minimum-necessary view.
OPEN_MATCH_STATUSES = ("proposed", "accepted", "active")
MATCH_STATUS_RANK = {"proposed": 0, "accepted": 1, "active": 2, "declined": 3, "expired": 3, "ended": 3}


def self_service(org: dict) -> dict:
    """The organization's self-service settings, the defaults filled in."""
    return {**SELF_SERVICE_DEFAULTS, **(org.get("self_service") or {})}


def member_self_view(member: dict, now: datetime) -> dict:
    """What a member sees of their own record: the fields they gave, their site and status, and the
    consents in force (each with when it was given and until when)."""
    view = {k: member.get(k) for k in MEMBER_SELF_VIEW}
    view["consents"] = [{"purpose": p, "granted_at": c.get("granted_at"), "expires_at": _aware(c.get("expires_at"))}
                        for p, c in sorted((member.get("consents") or {}).items()) if consent_active(c, now)]
    return view


def leader_public_view(leader: dict) -> dict:
    """What a member sees of their peer leader: first name, languages and the bio the leader chose to share."""
    return {"first_name": leader.get("preferred_name") or leader.get("first_name"),
            "languages": leader.get("languages") or [], "bio": leader.get("bio")}


def member_for_leader(member: dict, match: dict, now: datetime) -> dict:
    """The leader's minimum-necessary view of a member they are matched with: the name the member goes
    by, languages, availability, the plan's goal if the member shared it, and contact details only
    while the member's ``share:leader`` consent is in force. Nothing else."""
    consents = member.get("consents") or {}
    shares_contact = SHARE_LEADER in consents and consent_active(consents[SHARE_LEADER], now)
    plan = member.get("plan") or {}
    shared_goals = ([{"goal": plan["goal"], "next_steps": plan.get("next_steps") or []}]
                    if plan.get("goal") and plan.get("shared_with_leader") else [])
    return {"member_id": member["_id"], "match_id": match["match_id"], "match_status": match["status"],
            "name": member.get("preferred_name") or member.get("first_name"),
            "languages": member.get("languages") or [], "time_zone": member.get("time_zone"),
            "availability": member.get("availability") or [], "shared_goals": shared_goals,
            "contact_shared": shares_contact,
            "contact": ({"email": member.get("email"), "phone": member.get("phone"),
                         "contact_channels": member.get("contact_channels") or []} if shares_contact else None)}


def match_update(current: dict | None, status: str) -> bool:
    """Whether a match event moves intake's copy on: never back from a later status (a redelivered
    proposal after the end), and a closed match stays closed."""
    if current is None:
        return True
    return MATCH_STATUS_RANK[status] >= MATCH_STATUS_RANK.get(current.get("status"), 0) and current.get("open", True)
