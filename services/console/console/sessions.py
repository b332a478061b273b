"""Who is signed in: the console's server-side session (Flask-Session's MongoDB backend, in the console's
own database; the browser holds only a random id in an HttpOnly, SameSite=Lax cookie, Secure behind https).

The session holds the person's token from intake and what intake said about it (role, person, organization),
the language they chose, and two times: when they signed in and when they were last seen. A staff session
ends after ``session_idle_minutes`` without a request and after ``session_max_hours`` in all, whatever the
token's own expiry (which also ends it). Signing in and out gives the session a new id, so an id seen before
sign-in (fixation) or kept after sign-out does nothing.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from flask import current_app, session

PERSON = "person"
STAFF_ROLES = ("admin", "coordinator")


@dataclass(frozen=True)
class SignedInPerson:
    token: str
    role: str
    person_id: str | None
    organization_id: str | None
    organization_name: str | None = None

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


def current_person() -> SignedInPerson | None:
    data = session.get(PERSON)
    if not data:
        return None
    return SignedInPerson(token=data["token"], role=data["role"], person_id=data.get("person_id"),
                          organization_id=data.get("organization_id"), organization_name=data.get("organization_name"))


def _renew_id() -> None:
    session["renewing"] = True  # regenerate() only renews a non-empty session
    current_app.session_interface.regenerate(session)
    session.pop("renewing", None)


def sign_in(token: str, role: str, person_id: str | None, organization_id: str | None, *, expires_in: int,
            organization_name: str | None = None, now: float | None = None) -> None:
    now = time.time() if now is None else now
    language = session.get("lang")
    _renew_id()
    session.clear()
    if language:
        session["lang"] = language
    session[PERSON] = {"token": token, "role": role, "person_id": person_id, "organization_id": organization_id,
                       "organization_name": organization_name, "token_expires": now + max(0, int(expires_in))}
    session["started"] = now
    session["seen"] = now
    session.permanent = True


def sign_out() -> None:
    """End the person's session here (the old id is deleted from the store); the language stays."""
    language = session.get("lang")
    _renew_id()
    session.clear()
    if language:
        session["lang"] = language


def expired(settings, now: float | None = None) -> bool:
    """Whether the signed-in session is over: idle too long, open too long, or its token expired."""
    now = time.time() if now is None else now
    person = session.get(PERSON)
    if not person:
        return False
    seen, started = session.get("seen", 0), session.get("started", 0)
    return (now - seen > settings.session_idle_minutes * 60
            or now - started > settings.session_max_hours * 3600
            or now >= person.get("token_expires", 0))


# How often "seen" is written: each write saves the session to the database, so a busy person's clicks are
# not each a write; the idle rule is in minutes, so a session may end up to this much before its idle time.
TOUCH_EVERY_SECONDS = 60


def touch(now: float | None = None) -> None:
    now = time.time() if now is None else now
    if now - session.get("seen", 0) >= TOUCH_EVERY_SECONDS:
        session["seen"] = now
