"""People: a member's or leader's fields validated together, their identity keys and duplicates, ids
and the actor records name."""
from __future__ import annotations

import uuid
from datetime import date
from typing import Iterable

from shared.errors import Conflict, Invalid

from intake.model.validators import (check_availability, check_channels, check_date_of_birth, check_languages,
                                     check_pathways, check_time_zone, email_key, normalize_email, normalize_phone)


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
