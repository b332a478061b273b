"""The one family of domain errors every service raises from its use cases and rules.

They import nothing of Flask, pymongo or Kafka, so ``model.py`` and ``handlers/`` can raise them; the
app factory installs one handler (``shared.web.errors``) that answers each as RFC 9457 problem+json
with its status, its field errors and its extra members (``existing``, ``retry_after`` ...).

    raise Invalid({"site_id": ["Not a site of this organization."]})
    raise Invalid("The end must come after the start.", field="end")
    raise NotFound("No such member.")
    raise Conflict("A member with this email exists.", existing={"id": ..., "type": "member"})
"""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400
    title = "Bad Request"

    def __init__(self, message: str | dict[str, list[str]] | None = None, *, field: str | None = None,
                 errors: dict[str, list[str]] | None = None, headers: dict[str, str] | None = None,
                 type_: str = "about:blank", **extra: Any):
        if isinstance(message, dict):  # Invalid({"field": ["message"]})
            errors, message = message, None
        if field and message and not errors:
            errors = {field: [message]}
        self.errors = errors or None
        self.field = field
        self.message = message or self._default_message()
        self.headers = headers or {}
        self.type = type_
        self.extra = extra
        super().__init__(self.message)

    def _default_message(self) -> str:
        if self.errors:
            return "Some fields are invalid: " + ", ".join(sorted(self.errors))
        return self.title


class Invalid(DomainError):
    """Input that is well-formed but breaks a rule; ``errors`` maps each field to its messages."""
    status, title = 422, "Unprocessable Entity"


class Forbidden(DomainError):
    status, title = 403, "Forbidden"


class NotFound(DomainError):
    """Not there, or not the caller's to see: both answer alike, so existence never leaks."""
    status, title = 404, "Not Found"


class Conflict(DomainError):
    """The request clashes with the current state; ``existing`` may point at the clashing record."""
    status, title = 409, "Conflict"


class Gone(DomainError):
    """The record was erased on request."""
    status, title = 410, "Gone"


class BadRequest(DomainError):
    """A request that cannot be honoured as sent (an unknown, used or expired sign-in code)."""
    status, title = 400, "Bad Request"


class TooManyRequests(DomainError):
    """A rate limit was reached; ``Retry-After`` (and ``retry_after``) says in how many seconds to try again."""
    status, title = 429, "Too Many Requests"

    def __init__(self, message: str, *, retry_after: int):
        retry_after = max(1, int(retry_after))
        super().__init__(message, headers={"Retry-After": str(retry_after)}, retry_after=retry_after)


class PreconditionFailed(DomainError):
    """An If-Match that no longer matches: someone changed the record since it was read."""
    status, title = 412, "Precondition Failed"


NOT_YET_KNOWN_TYPE = "https://recoverynet.org/problems/not-yet-known"
NOT_YET_KNOWN_RETRY_SECONDS = 2  # intake's events reach the read models in about 1-2 s


class NotYetKnown(DomainError):
    """A reference to intake's members, leaders or sites that this service's read model does not hold
    (yet): straight after intake answers 201, matching and scheduling may not have it for a second or two.

    404 when the reference is in the path, 422 naming the field when it is in the body. An id that will
    never exist (made up, another organization's, a site the caller does not hold) answers exactly the
    same, so nothing leaks across organizations or sites."""
    title = "Not Yet Known"

    def __init__(self, kind: str, ref_id: str, *, service: str, field: str | None = None):
        self.kind, self.ref_id = kind, ref_id
        self.status = 422 if field else 404
        message = (f"{kind.capitalize()} {ref_id} is not known to {service} here yet. If it was just created, "
                   f"retry after {NOT_YET_KNOWN_RETRY_SECONDS} s; an id that does not exist in your organization "
                   "keeps answering this way.")
        super().__init__(message, field=field, type_=NOT_YET_KNOWN_TYPE,
                         headers={"Retry-After": str(NOT_YET_KNOWN_RETRY_SECONDS)},
                         retry_after=NOT_YET_KNOWN_RETRY_SECONDS)
