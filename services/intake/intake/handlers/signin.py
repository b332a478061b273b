"""Signing in by a one-time code sent by email or SMS, and the token it is exchanged for.

    POST /v1/sign-in         count_request (rate limits), then request_code: a code for every person the
                             address belongs to, in any organization (and operators); the same answer,
                             and the same work, when it belongs to nobody
    POST /v1/sign-in/token   exchange: the code (typed, or the link's token) for a bearer token, once

Only the SHA-256 of the short code and of the link token is stored. The code reaches notifications on
the restricted contacts topic (SignInCodeIssued), which no other service reads.

Tokens are signed by ``tokens.sign`` (intake's Ed25519 key), carrying the person's current token
version, so a person signed out everywhere (or deactivated staff) gets a token of the new version.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from shared.errors import BadRequest, Conflict, TooManyRequests
from shared.events.intake import SignInCodeIssued
from shared.unit_of_work import UnitOfWork

from intake import model
from intake.config import Settings
from intake.handlers import tokens
from intake.repository import Store

ACCEPTED = {"status": "accepted",
            "detail": "If this address belongs to someone who may sign in, a sign-in code is on its way. "
                      "It is valid for 15 minutes and can be used once."}


# --- asking for a code -----------------------------------------------------------------------------

def count_request(store: Store, settings: Settings, data: dict, client: str | None, now: datetime) -> tuple:
    """Count this request against the per-client and per-address limits (each its own atomic write, kept
    whatever happens next, shared by every web process); 429 with Retry-After when either is over.
    Returns the address as ``model.sign_in_address`` reads it."""
    address = model.sign_in_address(data)
    start, end = model.rate_window(now, settings.signin_window_seconds)
    waits = [model.rate_limited(store.count_hit(f"client:{client or 'unknown'}", start, end),
                                settings.signin_per_client_limit, end, now),
             model.rate_limited(store.count_hit(f"address:{model.code_hash(address[1])}", start, end),
                                settings.signin_per_address_limit, end, now)]
    waits = [w for w in waits if w is not None]
    if waits:
        raise TooManyRequests("Too many sign-in requests; try again later.", retry_after=max(waits))
    return address


def request_code(uow: UnitOfWork, settings: Settings, address: tuple, now: datetime) -> dict:
    """Store a code for the people the address belongs to and send it (SignInCodeIssued). An address
    of nobody (or only of people who may not sign in) gets a code stored for nobody and no message:
    the same hashing and the same write, so the answer and its timing tell nothing."""
    store = Store.of(uow)
    key_type, key, channel = address
    people = _people_at(store, key_type, key)
    code, link_token = model.new_signin_code()
    expires_at = now + timedelta(seconds=settings.signin_code_ttl_seconds)
    _store_code(store, code, link_token, [model.sign_in_identity(kind, p) for kind, p in people], channel,
                now, expires_at)
    if people:
        kind, person = people[0]
        org = store.organization(person["organization_id"]) if kind != "operator" else None
        uow.emit(SignInCodeIssued, _code_event(settings, kind, person, channel, _address_of(person, key_type, key),
                                               code, link_token, expires_at, (org or {}).get("default_language", "en")))
    return ACCEPTED


def issue_invitation(uow: UnitOfWork, settings: Settings, staff: dict, organization: dict, now: datetime) -> None:
    """A code for an invited staff member, sent with the invitation message; valid longer than a sign-in
    code (INVITATION_CODE_TTL_SECONDS): the invitee may not read their email at once."""
    store = Store.of(uow)
    code, link_token = model.new_signin_code()
    expires_at = now + timedelta(seconds=settings.invitation_code_ttl_seconds)
    _store_code(store, code, link_token, [model.sign_in_identity("staff", staff)], "email", now, expires_at)
    uow.emit(SignInCodeIssued, {**_code_event(settings, "staff", staff, "email", staff["email"], code, link_token,
                                              expires_at, organization.get("default_language", "en")),
                                "purpose": "invitation", "role": staff.get("role") or "coordinator"})


def _store_code(store: Store, code: str, link_token: str, identities: list[dict], channel: str, now: datetime,
                expires_at: datetime) -> None:
    store.insert_signin_code({
        "_id": model.new_id("sic"), "code_hash": model.code_hash(code), "link_hash": model.code_hash(link_token),
        "identities": identities, "channel": channel, "created_at": now, "expires_at": expires_at,
        "used_at": None, "purge_at": expires_at + timedelta(days=1)})


def _people_at(store: Store, key_type: str, key: str) -> list[tuple[str, dict]]:
    """(kind, record) of everyone the address belongs to who may sign in now, in any organization."""
    found = []
    for identity in store.identities_with(key_type, key):
        person = store.person(identity["kind"], identity["organization_id"], identity["person_id"])
        if model.may_sign_in(identity["kind"], person):
            found.append((identity["kind"], person))
    if key_type == "email":
        found += [("operator", op) for op in store.operators_with_email(key) if model.may_sign_in("operator", op)]
    return sorted(found, key=lambda kp: (kp[1].get("organization_id") or "", kp[0], kp[1]["_id"]))


def _address_of(person: dict, key_type: str, key: str) -> str:
    return person.get("email") or key if key_type == "email" else key


def _code_event(settings: Settings, kind: str, person: dict, channel: str, address: str, code: str, link_token: str,
                expires_at: datetime, default_language: str) -> dict:
    return {"organization_id": person.get("organization_id") or "", "person_id": person["_id"], "person_kind": kind,
            "channel": channel, "address": address, "code": model.display_code(code),
            "link": f"{settings.console_public_url}/sign-in/callback?code={quote(link_token)}",
            "expires_at": expires_at, "language": model.sign_in_language(person, default_language)}


# --- exchanging it for a token ---------------------------------------------------------------------

def count_exchange(store: Store, settings: Settings, client: str | None, now: datetime) -> None:
    """Guessing codes is limited per client address (429 with Retry-After)."""
    start, end = model.rate_window(now, settings.signin_window_seconds)
    wait = model.rate_limited(store.count_hit(f"token-client:{client or 'unknown'}", start, end),
                              settings.signin_token_per_client_limit, end, now)
    if wait is not None:
        raise TooManyRequests("Too many sign-in attempts; try again later.", retry_after=wait)


def exchange(uow: UnitOfWork, settings: Settings, keys: tokens.TokenKeys, data: dict, now: datetime) -> dict:
    """The code for a token, once. A code that opens several organizations (or roles) and names none
    answers 409 with the choices and stays unused; a used, expired or unknown code answers 400."""
    store = Store.of(uow)
    found = store.signin_code(model.code_hashes(data["code"]))
    if found is None or found.get("used_at") is not None or _aware(found["expires_at"]) <= now \
            or not found.get("identities"):
        raise _invalid_code()
    candidates = model.choose_identity(found["identities"], data.get("organization_id"), data.get("role"))
    if len(candidates) > 1:
        names = store.organizations_named([c["organization_id"] for c in candidates if c["organization_id"]])
        raise Conflict("This code signs in to more than one organization: choose one (organization_id).",
                       type_=model.CHOOSE_ORGANIZATION,
                       choices=[{"organization_id": c["organization_id"],
                                 "organization_name": names.get(c["organization_id"]) if c["organization_id"] else
                                 "Recovery Network (platform operator)", "role": c["role"]} for c in candidates])
    chosen = candidates[0]
    person = (store.operator(chosen["person_id"]) if chosen["person_kind"] == "operator"
              else store.person(chosen["person_kind"], chosen["organization_id"], chosen["person_id"]))
    if not model.may_sign_in(chosen["person_kind"], person):
        raise _invalid_code()  # deactivated, discharged or erased since the code was sent
    identity = model.sign_in_identity(chosen["person_kind"], person)  # today's role and sites
    if store.use_signin_code(found["_id"], now, {"subject": identity["subject"],
                                                 "organization_id": identity["organization_id"]}) is None:
        raise _invalid_code()  # a racing request took it first
    if identity["person_kind"] == "staff" and person.get("status") == "invited":
        store.set_staff_status(identity["organization_id"], identity["person_id"], "active", now)
    ttl = settings.staff_token_ttl_seconds if identity["role"] in ("admin", "coordinator", "operator") \
        else settings.people_token_ttl_seconds
    token = tokens.sign(store, keys, subject=identity["subject"], organization_id=identity["organization_id"],
                        role=identity["role"], ttl_seconds=ttl, sites=identity.get("sites") or [],
                        leader_id=identity.get("leader_id"), member_id=identity.get("member_id"))
    return {"access_token": token, "token_type": "Bearer", "expires_in": ttl, "role": identity["role"],
            "person_id": identity["person_id"], "organization_id": identity["organization_id"],
            "sites": identity.get("sites") or []}


def _invalid_code() -> BadRequest:
    return BadRequest("This sign-in code is not valid: it was used, it expired, or it never existed. "
                      "Ask for a new one.", type_=model.INVALID_CODE)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
