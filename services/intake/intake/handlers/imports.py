"""Bulk import of a site's members from parsed rows, idempotent by the organization's external id.

Each row is its own transaction, so a bad row never blocks the good ones: the entry point hands in
``in_transaction`` (its repository's ``transaction``), and this module says where each one begins
and ends. The report says what became of each row."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, TypeVar

from shared.auth import Principal
from shared.clock import utcnow
from shared.errors import Conflict, DomainError
from shared.unit_of_work import UnitOfWork

from intake import access, model
from intake.handlers import consents, members
from intake.repository import Store

T = TypeVar("T")
InTransaction = Callable[[Callable[[UnitOfWork], T]], T]


def import_members(store: Store, in_transaction: InTransaction, principal: Principal, site_id: str, fmt: str,
                   rows: list, load_row: Callable[[dict, str], dict]) -> dict:
    """Create or update members of a site from parsed rows (``store`` reads the site; each row and the
    report are written in a transaction of their own)."""
    now = utcnow()
    site = access.site(store, principal, site_id)
    access.organization(store, principal.organization_id)
    report = []
    seen: dict[str, int] = {}
    for number, data, errors in rows:
        entry: dict[str, Any] = {"row": number, "external_id": None, "outcome": "rejected", "member_id": None,
                                 "errors": errors, "existing": None}
        report.append(entry)
        if errors:
            continue
        try:
            loaded = load_row(data, site["_id"])
        except ValueError as exc:  # schemas.RowError: field -> messages
            entry["errors"] = getattr(exc, "errors", {"_row": [str(exc)]})
            entry["external_id"] = data.get("external_id") if isinstance(data.get("external_id"), str) else None
            continue
        external_id = loaded.get("external_id")
        entry["external_id"] = external_id
        if not external_id:
            entry["errors"] = {"external_id": ["Imported rows need the organization's external id."]}
            continue
        if external_id in seen:
            entry["errors"] = {"external_id": [f"Repeats row {seen[external_id]} of this upload."]}
            continue
        seen[external_id] = number
        try:
            outcome, member = in_transaction(lambda uow: import_row(uow, principal, site, loaded, now))
        except Conflict as exc:
            entry["errors"] = {"_row": [exc.message]}
            entry["existing"] = exc.extra.get("existing")
            continue
        except DomainError as exc:
            entry["errors"] = exc.errors or {"_row": [exc.message]}
            continue
        entry.update(outcome=outcome, member_id=member["_id"], errors=None)
    counts = {k: sum(1 for r in report if r["outcome"] == k) for k in ("created", "updated", "unchanged", "rejected")}
    doc = {"_id": model.new_id("imp"), "organization_id": principal.organization_id, "site_id": site["_id"],
           "format": fmt, "created_at": now, "created_by": model.actor(principal), "counts": counts, "rows": report}
    return in_transaction(lambda uow: _save_report(uow, principal, doc))


def _save_report(uow: UnitOfWork, principal: Principal, doc: dict) -> dict:
    store = Store.of(uow)
    store.insert_import(doc)
    store.audit(principal, "import", "member", doc["_id"], principal.organization_id, site_id=doc["site_id"],
                **doc["counts"])
    return doc


def import_row(uow: UnitOfWork, principal: Principal, site: dict, data: dict, now: datetime) -> tuple[str, dict]:
    """One row: a new external id registers a member, a known one updates them (or is unchanged) and
    grants the consents listed that are not in force."""
    store = Store.of(uow)
    data = dict(data)  # the transaction may be retried: leave the caller's row untouched
    found = store.identity(principal.organization_id, "member", "external_id", data["external_id"])
    if found is None:
        return "created", members.register_in(uow, principal, data, now=now, source="import")
    member = store.member(principal.organization_id, found["person_id"])
    if member["site_id"] != site["_id"]:
        raise Conflict("This external id belongs to a member of another site (transfer them first).",
                       existing={"id": member["_id"], "kind": "member", "field": "external_id",
                                 "href": f"/v1/members/{member['_id']}"})
    grants = data.pop("consents", None) or []
    patch = {k: v for k, v in data.items() if k in members.MEMBER_FIELDS and not (v is None and member.get(k) is None)}
    if "time_zone" in patch and patch["time_zone"] is None:
        patch.pop("time_zone")
    if "preferred_language" in patch and patch["preferred_language"] is None:
        patch.pop("preferred_language")
    member, changed = members.update_in(uow, principal, member, patch, now=now)
    in_force = {c["purpose"] for c in model.consents_in_force(member.get("consents") or {}, now)}
    for grant in grants:
        if model.check_consent_purpose(grant["purpose"]) not in in_force:
            member = consents.grant_to(uow, principal, member, grant, now)
            changed = True
    return ("updated" if changed else "unchanged"), member


def get_import(store: Store, principal: Principal, import_id: str) -> dict:
    return access.import_report(store, principal, import_id)
