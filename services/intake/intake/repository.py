"""The only module of the intake service that touches MongoDB; writes state and outbox together.

Collections: organizations, sites, staff, members, leaders, identities (one document per email /
phone / external id of a person, ``_id`` unique per organization, which is how duplicates are
refused even under concurrent writes), screenings, consent_log, plan_history, imports, plus the
platform's outbox, audit_log, counters and leases.
"""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Any, Iterable

from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared.audit import audit_entry, record
from shared.auth import Principal
from shared.events.intake import CONTACTS
from shared.mongo import ensure_platform_indexes
from shared.unit_of_work import UnitOfWork, run_in_transaction

from intake.model import Conflict

SOURCE = "/recoverynet/intake"

COLLECTIONS = ("organizations", "sites", "staff", "members", "leaders", "identities", "screenings",
               "consent_log", "plan_history", "imports")


def ensure_indexes(db: Database) -> None:
    """Collections and indexes of this service (run by deploy set-up and by tests)."""
    ensure_platform_indexes(db)
    existing = set(db.list_collection_names())
    for name in COLLECTIONS:
        if name not in existing:
            db.create_collection(name)  # transactions cannot always create collections
    db.sites.create_index([("organization_id", ASCENDING), ("name", ASCENDING)], name="org_name")
    db.staff.create_index([("organization_id", ASCENDING)], name="org")
    db.members.create_index([("organization_id", ASCENDING), ("site_id", ASCENDING), ("status", ASCENDING)],
                            name="org_site_status")
    db.members.create_index([("organization_id", ASCENDING), ("flags", ASCENDING)], name="org_flags")
    db.members.create_index([("consent_expiries", ASCENDING)], name="consent_expiries")
    db.leaders.create_index([("organization_id", ASCENDING), ("site_ids", ASCENDING), ("status", ASCENDING)],
                            name="org_sites_status")
    db.identities.create_index([("person_id", ASCENDING)], name="person")
    db.screenings.create_index([("organization_id", ASCENDING), ("member_id", ASCENDING),
                                ("recorded_at", DESCENDING)], name="org_member_time")
    db.consent_log.create_index([("organization_id", ASCENDING), ("member_id", ASCENDING), ("at", ASCENDING)],
                                name="org_member_time")
    db.plan_history.create_index([("organization_id", ASCENDING), ("member_id", ASCENDING),
                                  ("revision", ASCENDING)], name="org_member_revision")
    db.imports.create_index([("organization_id", ASCENDING), ("created_at", DESCENDING)], name="org_time")


# Dates are stored as datetimes (BSON has no date type) and read back as dates.
def _to_bson(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _to_bson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_bson(v) for v in value]
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time(0), tzinfo=timezone.utc)
    return value


DATE_FIELDS = ("date_of_birth",)


def _from_bson(doc: dict | None) -> dict | None:
    if doc is None:
        return None
    for f in DATE_FIELDS:
        if isinstance(doc.get(f), datetime):
            doc[f] = doc[f].date()
    for cert in doc.get("certifications") or []:
        if isinstance(cert.get("expires_on"), datetime):
            cert["expires_on"] = cert["expires_on"].date()
    return doc


def identity_id(organization_id: str, kind: str, key_type: str, value: str) -> str:
    return f"{organization_id}|{kind}|{key_type}|{value}"


class Repository:
    def __init__(self, client: MongoClient, db: Database):
        self.client, self.db = client, db

    def transaction(self, work):
        """Run ``work(uow)`` in one transaction; events emitted on ``uow`` go to the outbox with it.

        Two requests claiming the same email or phone at once: the loser's insert into ``identities``
        fails with a duplicate key; running the work again lets it see the winner's record and answer
        the usual 409 pointing at it."""
        for attempt in range(3):
            try:
                return run_in_transaction(self.client, self.db, work, source=SOURCE)
            except DuplicateKeyError:
                if attempt == 2:
                    raise Conflict("The same record was written concurrently; read it and try again.") from None
        raise AssertionError("unreachable")

    # --- generic -------------------------------------------------------------------------------
    def _get(self, collection: str, organization_id: str, doc_id: str, session=None) -> dict | None:
        return _from_bson(self.db[collection].find_one({"_id": doc_id, "organization_id": organization_id},
                                                       session=session))

    def _page(self, collection: str, query: dict, skip: int, limit: int, sort) -> tuple[list[dict], int]:
        total = self.db[collection].count_documents(query)
        docs = [_from_bson(d) for d in self.db[collection].find(query).sort(sort).skip(skip).limit(limit)]
        return docs, total

    def audit(self, uow: UnitOfWork | None, principal: Principal | None, action: str, resource_type: str,
              resource_id: str, organization_id: str, **details) -> None:
        record(self.db, audit_entry(principal, action, resource_type, resource_id, organization_id, **details),
               session=uow.session if uow else None)

    # --- organizations, sites, staff ---------------------------------------------------------------
    def get_organization(self, organization_id: str, session=None) -> dict | None:
        return self.db.organizations.find_one({"_id": organization_id}, session=session)

    def insert_organization(self, uow: UnitOfWork, doc: dict) -> None:
        self.db.organizations.insert_one(doc, session=uow.session)

    def replace_organization(self, uow: UnitOfWork, doc: dict) -> None:
        self.db.organizations.replace_one({"_id": doc["_id"]}, doc, session=uow.session)

    def get_site(self, organization_id: str, site_id: str, session=None) -> dict | None:
        return self._get("sites", organization_id, site_id, session)

    def sites_of(self, organization_id: str, site_ids: Iterable[str], session=None) -> list[dict]:
        return list(self.db.sites.find({"organization_id": organization_id, "_id": {"$in": list(site_ids)}},
                                       session=session))

    def list_sites(self, organization_id: str, site_filter: list[str] | None, skip: int, limit: int):
        query: dict = {"organization_id": organization_id}
        if site_filter is not None:
            query["_id"] = {"$in": site_filter}
        return self._page("sites", query, skip, limit, [("name", ASCENDING), ("_id", ASCENDING)])

    def insert_site(self, uow: UnitOfWork, doc: dict) -> None:
        self.db.sites.insert_one(doc, session=uow.session)

    def replace_site(self, uow: UnitOfWork, doc: dict) -> None:
        self.db.sites.replace_one({"_id": doc["_id"], "organization_id": doc["organization_id"]}, doc,
                                  session=uow.session)

    def insert_staff(self, uow: UnitOfWork, doc: dict) -> None:
        self.db.staff.insert_one(doc, session=uow.session)

    def replace_staff(self, uow: UnitOfWork, doc: dict) -> None:
        self.db.staff.replace_one({"_id": doc["_id"], "organization_id": doc["organization_id"]}, doc,
                                  session=uow.session)

    def get_staff(self, organization_id: str, staff_id: str, session=None) -> dict | None:
        return self._get("staff", organization_id, staff_id, session)

    def list_staff(self, organization_id: str, skip: int, limit: int):
        return self._page("staff", {"organization_id": organization_id}, skip, limit, [("_id", ASCENDING)])

    # --- identities (duplicate detection) ----------------------------------------------------------
    def find_identity(self, uow: UnitOfWork, organization_id: str, kind: str, key_type: str, value: str):
        return uow.db.identities.find_one({"_id": identity_id(organization_id, kind, key_type, value)},
                                          session=uow.session)

    def claim_identity(self, uow: UnitOfWork, organization_id: str, kind: str, key_type: str, value: str,
                       person_id: str) -> None:
        self.db.identities.insert_one({"_id": identity_id(organization_id, kind, key_type, value),
                                       "organization_id": organization_id, "person_id": person_id,
                                       "kind": kind, "key_type": key_type}, session=uow.session)

    def release_identity(self, uow: UnitOfWork, organization_id: str, kind: str, key_type: str, value: str) -> None:
        self.db.identities.delete_one({"_id": identity_id(organization_id, kind, key_type, value)},
                                      session=uow.session)

    def release_identities_of(self, uow: UnitOfWork, person_id: str) -> None:
        self.db.identities.delete_many({"person_id": person_id}, session=uow.session)

    # --- members -----------------------------------------------------------------------------------
    def get_member(self, organization_id: str, member_id: str, session=None) -> dict | None:
        return self._get("members", organization_id, member_id, session)

    def list_members(self, organization_id: str, *, site_filter: list[str] | None, site_id: str | None,
                     status: str | None, flagged: bool | None, external_id: str | None, skip: int, limit: int):
        query: dict = {"organization_id": organization_id, "erased": {"$ne": True}}
        if site_filter is not None:
            query["site_id"] = {"$in": site_filter}
        if site_id is not None:
            query.setdefault("$and", []).append({"site_id": site_id})
        if status is not None:
            query["status"] = status
        if flagged is True:
            query["flags.0"] = {"$exists": True}
        elif flagged is False:
            query["flags.0"] = {"$exists": False}
        if external_id is not None:
            query["external_id"] = external_id
        return self._page("members", query, skip, limit, [("created_at", ASCENDING), ("_id", ASCENDING)])

    def insert_member(self, uow: UnitOfWork, doc: dict) -> None:
        self.db.members.insert_one(_to_bson(doc), session=uow.session)

    def replace_member(self, uow: UnitOfWork, doc: dict) -> None:
        self.db.members.replace_one({"_id": doc["_id"], "organization_id": doc["organization_id"]}, _to_bson(doc),
                                    session=uow.session)

    def members_with_consents_due(self, now: datetime) -> list[dict]:
        """(id, organization) of members, in any organization, with a consent expiry to announce."""
        return list(self.db.members.find({"consent_expiries": {"$lte": now}, "erased": {"$ne": True}},
                                         {"_id": 1, "organization_id": 1}))

    def log_consent(self, uow: UnitOfWork, doc: dict) -> None:
        self.db.consent_log.insert_one(doc, session=uow.session)

    def consent_log(self, organization_id: str, member_id: str) -> list[dict]:
        return list(self.db.consent_log.find({"organization_id": organization_id, "member_id": member_id},
                                             {"_id": 0}).sort("at", ASCENDING))

    def insert_screening(self, uow: UnitOfWork, doc: dict) -> None:
        self.db.screenings.insert_one(doc, session=uow.session)

    def get_screening(self, organization_id: str, screening_id: str) -> dict | None:
        return self._get("screenings", organization_id, screening_id)

    def list_screenings(self, organization_id: str, member_id: str, instrument: str | None, skip: int, limit: int):
        query = {"organization_id": organization_id, "member_id": member_id}
        if instrument:
            query["instrument"] = instrument
        return self._page("screenings", query, skip, limit, [("recorded_at", DESCENDING), ("_id", ASCENDING)])

    def insert_plan_revision(self, uow: UnitOfWork, doc: dict) -> None:
        self.db.plan_history.insert_one(doc, session=uow.session)

    def plan_history(self, organization_id: str, member_id: str) -> list[dict]:
        return list(self.db.plan_history.find({"organization_id": organization_id, "member_id": member_id},
                                              {"_id": 0}).sort("revision", DESCENDING))

    def erase_member_data(self, uow: UnitOfWork, organization_id: str, member_id: str, stub: dict,
                          external_id: str | None = None) -> None:
        """Remove everything that identifies the member from this database, keeping only ``stub``."""
        s = uow.session
        scope = {"organization_id": organization_id, "member_id": member_id}
        self.db.members.replace_one({"_id": member_id, "organization_id": organization_id}, stub, session=s)
        self.db.identities.delete_many({"person_id": member_id}, session=s)
        self.db.screenings.delete_many(scope, session=s)
        self.db.consent_log.delete_many(scope, session=s)
        self.db.plan_history.delete_many(scope, session=s)
        # Import reports name the member's external id: keep the row, drop the identifier.
        self.db.imports.update_many({"organization_id": organization_id, "rows.member_id": member_id},
                                    {"$set": {"rows.$[r].external_id": None, "rows.$[r].erased": True}},
                                    array_filters=[{"r.member_id": member_id}], session=s)
        if external_id:  # rows that named the external id but were rejected
            self.db.imports.update_many({"organization_id": organization_id, "rows.external_id": external_id},
                                        {"$set": {"rows.$[r].external_id": None}},
                                        array_filters=[{"r.external_id": external_id}], session=s)
        # Contact events (email, phone, name) wait or linger in the outbox: a tombstone replaces them.
        self.db.outbox.delete_many({"topic": CONTACTS, "key": member_id, "type": {"$ne": None}}, session=s)

    # --- leaders -----------------------------------------------------------------------------------
    def get_leader(self, organization_id: str, leader_id: str, session=None) -> dict | None:
        return self._get("leaders", organization_id, leader_id, session)

    def list_leaders(self, organization_id: str, *, site_filter: list[str] | None, site_id: str | None,
                     status: str | None, skip: int, limit: int):
        query: dict = {"organization_id": organization_id}
        clauses = []
        if site_filter is not None:
            clauses.append({"site_ids": {"$in": site_filter}})
        if site_id is not None:
            clauses.append({"site_ids": site_id})
        if clauses:
            query["$and"] = clauses
        if status is not None:
            query["status"] = status
        return self._page("leaders", query, skip, limit, [("created_at", ASCENDING), ("_id", ASCENDING)])

    def insert_leader(self, uow: UnitOfWork, doc: dict) -> None:
        self.db.leaders.insert_one(_to_bson(doc), session=uow.session)

    def replace_leader(self, uow: UnitOfWork, doc: dict) -> None:
        self.db.leaders.replace_one({"_id": doc["_id"], "organization_id": doc["organization_id"]}, _to_bson(doc),
                                    session=uow.session)

    # --- imports and audit -------------------------------------------------------------------------
    def insert_import(self, doc: dict) -> None:
        self.db.imports.insert_one(doc)

    def get_import(self, organization_id: str, import_id: str) -> dict | None:
        return self._get("imports", organization_id, import_id)

    def list_audit(self, organization_id: str, *, resource_id: str | None, resource_type: str | None,
                   action: str | None, skip: int, limit: int):
        query: dict = {"organization_id": organization_id}
        for name, value in (("resource_id", resource_id), ("resource_type", resource_type), ("action", action)):
            if value is not None:
                query[name] = value
        return self._page("audit_log", query, skip, limit, [("at", ASCENDING), ("_id", ASCENDING)])
