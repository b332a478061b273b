"""A reference this service's read model does not hold (yet): the one way to say so.

Matching and scheduling keep their own copies of intake's members, leaders, sites and organizations,
built from intake's events: straight after intake answers 201 they may not have them for a second or
two. A handler raises ``NotYetKnown``; ``shared.web.errors.ProblemApi`` answers it as problem+json with
the type ``NOT_YET_KNOWN_TYPE``, a ``Retry-After`` header and a ``retry_after`` field:

- 404 when the reference is in the path (``/members/<member_id>/...``),
- 422 naming the field when it is in the body (``{"member_id": ...}``).

An id that will never exist (made up, or another organization's, or of a site the caller does not
hold) looks the same to the service and answers exactly the same, so nothing leaks across
organizations or sites. Flask-free, so handlers may raise it.
"""
from __future__ import annotations

NOT_YET_KNOWN_TYPE = "https://recoverynet.org/problems/not-yet-known"
NOT_YET_KNOWN_TITLE = "Not Yet Known"
RETRY_AFTER_SECONDS = 2  # intake's events reach the read models in about 1-2 s


class NotYetKnown(LookupError):
    def __init__(self, kind: str, ref_id: str, *, service: str, field: str | None = None):
        self.kind, self.ref_id, self.field = kind, ref_id, field
        self.status = 422 if field else 404
        self.message = (f"{kind.capitalize()} {ref_id} is not known to {service} here yet. If it was just created, "
                        f"retry after {RETRY_AFTER_SECONDS} s; an id that does not exist in your organization "
                        "keeps answering this way.")
        super().__init__(self.message)
