"""Intake's periodic work, run by the worker (``worker.py``). A job is an entry point: it opens its
own transactions on the ``Repository`` it is given."""
from __future__ import annotations

from datetime import datetime

from shared.clock import utcnow
from shared.repository import Repository
from shared.unit_of_work import UnitOfWork

from intake import model
from intake.handlers import consents
from intake.repository import Store


def announce_expired_consents(repo: Repository, now: datetime | None = None) -> int:
    """A consent whose expiry passed is announced as revoked (once: the announcement is recorded on the
    consent in the same transaction, so several workers never double it). One transaction a member."""
    now = now or utcnow()
    count = 0
    for candidate in repo.reader().members_with_consents_due(now):
        count += repo.transaction(
            lambda uow, c=candidate: _announce_expiries(uow, c["organization_id"], c["_id"], now))
    return count


def _announce_expiries(uow: UnitOfWork, organization_id: str, member_id: str, now: datetime) -> int:
    store = Store.of(uow)
    member = store.member(organization_id, member_id)
    if member is None or member.get("erased"):
        return 0
    due = model.expiries_due(member["consents"], now)
    if not due:
        return 0
    updated = dict(member)
    consents.set_consents(updated, {p: ({**c, "expiry_announced": True} if p in due else c)
                                    for p, c in member["consents"].items()})
    updated["version"] = member.get("version", 1) + 1
    store.replace_member(updated)
    for purpose in due:
        consents.record_change(uow, store, updated, purpose, "expired", model.SYSTEM, now)
        store.audit(None, "expire", "consent", member_id, organization_id, purpose=purpose)
    return len(due)
