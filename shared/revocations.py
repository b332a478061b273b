"""Sign-out-everywhere, as every service sees it: a small read model of the lowest token version
(``ver``) still accepted for a subject (a token's ``sub``), fed by intake's TokensRevoked events.

- ``on_tokens_revoked``: the event handler each service's subscriptions.py maps (intake, which emits
  the event, writes the same document in the same transaction: ``RevocationStore.raise_min_version``).
- ``Revocations``: the lookup the authentication hook (shared.web.auth) asks on every request, cached
  in-process for ``ttl_seconds`` per subject, so a revoked token stops working on every service within
  the consumer's lag plus that (well under a minute).
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from pymongo.database import Database

from shared.repository import Store
from shared.unit_of_work import UnitOfWork

COLLECTION = "token_revocations"
CACHE_SECONDS = 15.0


class RevocationStore(Store):
    collections = (COLLECTION,)

    def min_version(self, subject: str) -> int:
        doc = self.find_one(COLLECTION, {"_id": subject}, {"min_version": 1})
        return int(doc["min_version"]) if doc else 0

    def raise_min_version(self, subject: str, organization_id: str, min_version: int) -> None:
        """Never lowers it: events replayed or out of order leave the highest version known."""
        self.db[COLLECTION].update_one({"_id": subject},
                                       {"$max": {"min_version": int(min_version)},
                                        "$set": {"organization_id": organization_id}},
                                       upsert=True, session=self.session)


def on_tokens_revoked(evt, uow: UnitOfWork) -> None:
    """TokensRevoked -> the subject's tokens below min_version are refused here too."""
    RevocationStore.of(uow).raise_min_version(evt.data["subject"], evt.organization_id, evt.data["min_version"])


class Revocations:
    """``min_version(subject)``: the lowest accepted token version, read through a per-subject cache."""

    def __init__(self, db: Database, *, ttl_seconds: float = CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 50_000):
        self.store, self.ttl, self.clock, self.max_entries = RevocationStore(db), ttl_seconds, clock, max_entries
        self._cache: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def min_version(self, subject: str) -> int:
        now = self.clock()
        hit = self._cache.get(subject)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        version = self.store.min_version(subject)
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[subject] = (now, version)
        return version

    def forget(self, subject: str) -> None:
        """Drop the cached answer (intake, after revoking in this very process)."""
        self._cache.pop(subject, None)

    def is_revoked(self, subject: str, version: int) -> bool:
        return version < self.min_version(subject)
