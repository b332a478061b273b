"""Duplicate detection: within an organization, one person of a kind per email, phone or external id.

Each key is a document in ``identities`` with a unique ``_id``, so two concurrent claims cannot both
win (the loser's transaction is run again by the entry point and answers 409 here)."""
from __future__ import annotations

from intake import model
from intake.repository import Store


def claim(store: Store, organization_id: str, kind: str, person_id: str, before: dict | None, after: dict) -> None:
    """Claim the person's email / phone / external id in the organization, or refuse with 409 naming
    the record that already has it. Releases the keys the person no longer has."""
    old = set(model.person_keys(before)) if before else set()
    new = set(model.person_keys(after))
    for key_type, value in sorted(new - old):
        found = store.identity(organization_id, kind, key_type, value)
        if found and found["person_id"] != person_id:
            raise model.duplicate(kind, key_type, found["person_id"])
    for key_type, value in sorted(old - new):
        store.release_identity(organization_id, kind, key_type, value)
    for key_type, value in sorted(new - old):
        store.claim_identity(organization_id, kind, key_type, value, person_id)
