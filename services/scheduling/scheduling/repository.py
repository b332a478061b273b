"""The only module of the scheduling service that touches MongoDB; writes state and outbox together."""
from __future__ import annotations

from pymongo import MongoClient
from pymongo.database import Database

from shared.mongo import ensure_platform_indexes, run_in_transaction

SOURCE = "/recoverynet/scheduling"


def ensure_indexes(db: Database) -> None:
    """Collections and indexes of this service (run by deploy set-up and by tests)."""
    ensure_platform_indexes(db)


class Repository:
    def __init__(self, client: MongoClient, db: Database):
        self.client, self.db = client, db

    def transaction(self, work):
        """Run ``work(uow)`` in one transaction; events emitted on ``uow`` go to the outbox with it."""
        return run_in_transaction(self.client, self.db, work, source=SOURCE)
