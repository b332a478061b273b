"""Scalar validators: time zone, email, phone, date of birth, languages, weekly availability, channels,
pathways and consent purposes, each normalizing its value or raising ``Invalid`` naming the field."""
from __future__ import annotations

import zoneinfo
from datetime import date
from functools import lru_cache
from typing import Iterable

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from shared.clock import minutes_of_day, zone

from intake.model.vocabularies import (ADULT_AGE, CHANNEL_ALIASES, CHANNELS, CONSENT_PURPOSE_RE, LANGUAGE_RE,
                                       NOT_A_PERSON_CHANNEL, PATHWAYS, TIME_RE, _err)


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
