"""The audit log: who read or changed which member record, when. Written by repositories, in the
same transaction as a change; never holds the record's content (erasure keeps the entry)."""
from __future__ import annotations

from pymongo.database import Database

from shared.auth import Principal
from shared.mongo import utcnow


def audit_entry(principal: Principal | None, action: str, resource_type: str, resource_id: str | list[str],
                organization_id: str, **details) -> dict:
    """``resource_id``: the record, ``*`` for a list, or the list of records one lookup read."""
    return {
        "organization_id": organization_id,
        "at": utcnow(),
        "actor": principal.subject if principal else "system",
        "actor_role": principal.role if principal else "system",
        "action": action,                 # e.g. read, create, update, erase, export
        "resource_type": resource_type,   # e.g. member, screening, consent
        "resource_id": resource_id,
        "details": details,               # ids and field names only, never values
    }


def record(db: Database, entry: dict, session=None) -> None:
    db.audit_log.insert_one(entry, session=session)
