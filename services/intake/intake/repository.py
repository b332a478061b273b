"""The only module of the intake service that touches MongoDB: ``Store``, intake's named queries on the
platform's base (``shared.repository``); the entry points' ``Repository`` is built in app.py / worker.py.

Collections: organizations, sites, staff, members, leaders, identities (one document per email /
phone / external id of a person, ``_id`` unique per organization, which is how duplicates are
refused even under concurrent writes: the loser's insert fails with a duplicate key, and the
``Repository`` built with ``retry_duplicates=True`` runs the work again so it answers the usual 409),
screenings, consent_log, plan_history, imports, matches (intake's copy of matching's matches: who is
matched with whom, ``_id`` = read_model_key(org, match id), from the match events), plus the platform's
outbox, audit_log, counters and leases.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timezone
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared.audit import audit_entry
from shared.events.intake import CONTACTS, MEMBER_FLAGS, MEMBER_STATUSES
from shared.mongo import drop_retired_indexes
from shared.repository import ensure_collections
from shared.repository import Store as BaseStore, any_of, read_model_key, site_scope

SOURCE = "/recoverynet/intake"


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


OLDEST_FIRST = [("created_at", ASCENDING), ("_id", ASCENDING)]


class Store(BaseStore):
    collections = ("token_versions", "organizations", "sites", "staff", "members", "leaders", "identities", "screenings",
                   "consent_log", "plan_history", "imports", "matches")

    # --- token versions (sign-out-everywhere: handlers/tokens.py) --------------------------------

    def token_version(self, subject: str) -> int:
        doc = self.find_one("token_versions", {"_id": subject}, {"version": 1})
        return int(doc["version"]) if doc else 0

    def bump_token_version(self, subject: str, organization_id: str | None) -> int:
        doc = self.db.token_versions.find_one_and_update(
            {"_id": subject}, {"$inc": {"version": 1}, "$set": {"organization_id": organization_id,
                                                              "revoked_at": datetime.now(timezone.utc)}},
            upsert=True, return_document=True, session=self.session)  # True: ReturnDocument.AFTER
        return int(doc["version"])

    # --- generic -------------------------------------------------------------------------------
    def _get(self, collection: str, organization_id: str, doc_id: str) -> dict | None:
        return _from_bson(self.find_one(collection, {"_id": doc_id, "organization_id": organization_id}))

    def _page(self, collection: str, query: dict, skip: int, limit: int, sort, *,
              total_with_page: bool = False) -> tuple[list[dict], int]:
        read = self.page_and_total if total_with_page else self.page
        docs, total = read(collection, query, skip=skip, limit=limit, sort=sort)
        return [_from_bson(d) for d in docs], total

    def _insert(self, collection: str, doc: dict) -> None:
        self.db[collection].insert_one(_to_bson(doc), session=self.session)

    def _replace(self, collection: str, doc: dict) -> None:
        self.replace_one(collection, {"_id": doc["_id"], "organization_id": doc["organization_id"]}, _to_bson(doc))

    # --- organizations, sites, staff -------------------------------------------------------------
    def organization(self, organization_id: str) -> dict | None:
        return self.find_one("organizations", {"_id": organization_id})

    def insert_organization(self, doc: dict) -> None:
        self._insert("organizations", doc)

    def replace_organization(self, doc: dict) -> None:
        self.db.organizations.replace_one({"_id": doc["_id"]}, doc, session=self.session)

    def site(self, organization_id: str, site_id: str) -> dict | None:
        return self._get("sites", organization_id, site_id)

    def sites_page(self, organization_id: str, site_filter: list[str] | None, skip: int, limit: int):
        query = {"organization_id": organization_id, **site_scope("_id", site_filter)}
        return self._page("sites", query, skip, limit, [("name", ASCENDING), ("_id", ASCENDING)])

    def insert_site(self, doc: dict) -> None:
        self._insert("sites", doc)

    def replace_site(self, doc: dict) -> None:
        self._replace("sites", doc)

    def staff(self, organization_id: str, staff_id: str) -> dict | None:
        return self._get("staff", organization_id, staff_id)

    def staff_page(self, organization_id: str, skip: int, limit: int):
        return self._page("staff", {"organization_id": organization_id}, skip, limit, [("_id", ASCENDING)])

    def insert_staff(self, doc: dict) -> None:
        self._insert("staff", doc)

    def replace_staff(self, doc: dict) -> None:
        self._replace("staff", doc)

    # --- identities (duplicate detection) --------------------------------------------------------
    def identity(self, organization_id: str, kind: str, key_type: str, value: str) -> dict | None:
        return self.find_one("identities", {"_id": identity_id(organization_id, kind, key_type, value)})

    def claim_identity(self, organization_id: str, kind: str, key_type: str, value: str, person_id: str) -> None:
        self.db.identities.insert_one({"_id": identity_id(organization_id, kind, key_type, value),
                                       "organization_id": organization_id, "person_id": person_id,
                                       "kind": kind, "key_type": key_type, "value": value}, session=self.session)

    def release_identity(self, organization_id: str, kind: str, key_type: str, value: str) -> None:
        self.db.identities.delete_one({"_id": identity_id(organization_id, kind, key_type, value)},
                                      session=self.session)

    # --- signing in (handlers/signin.py) ------------------------------------------------------------
    def identities_with(self, key_type: str, value: str) -> list[dict]:
        """Every person, in any organization, whose email (its comparison form) or phone is ``value``."""
        return self.find("identities", {"key_type": key_type, "value": value},
                         projection={"_id": 0, "organization_id": 1, "person_id": 1, "kind": 1})

    def person(self, kind: str, organization_id: str, person_id: str) -> dict | None:
        """A member, leader or staff member by kind."""
        collection = {"member": "members", "leader": "leaders", "staff": "staff"}[kind]
        return self._get(collection, organization_id, person_id)

    def organizations_named(self, organization_ids: list[str]) -> dict[str, str]:
        return {o["_id"]: o["name"] for o in self.find_in("organizations", "_id", organization_ids,
                                                          projection={"_id": 1, "name": 1})}

    def operators_with_email(self, key: str) -> list[dict]:
        return self.find("operators", {"email_key": key})

    def operator(self, operator_id: str) -> dict | None:
        return self.find_one("operators", {"_id": operator_id})

    def insert_operator(self, doc: dict) -> None:
        self.db.operators.insert_one(doc, session=self.session)

    def set_operator_status(self, operator_id: str, status: str) -> None:
        self.db.operators.update_one({"_id": operator_id}, {"$set": {"status": status}}, session=self.session)

    def insert_signin_code(self, doc: dict) -> None:
        self.db.signin_codes.insert_one(doc, session=self.session)

    def signin_code(self, code_hashes: list[str]) -> dict | None:
        """The sign-in code whose short code or link token hashes to one of ``code_hashes``."""
        return self.find_one("signin_codes", {"$or": [{"code_hash": {"$in": code_hashes}},
                                                      {"link_hash": {"$in": code_hashes}}]})

    def use_signin_code(self, code_id: str, now: datetime, used_as: dict) -> dict | None:
        """Take the code for one sign-in, atomically: only an unused, unexpired code is taken, so two
        racing requests cannot both have it. None when it was used, expired or never existed."""
        return self.db.signin_codes.find_one_and_update(
            {"_id": code_id, "used_at": None, "expires_at": {"$gt": now}},
            {"$set": {"used_at": now, "used_as": used_as}}, return_document=ReturnDocument.AFTER,
            session=self.session)

    def count_hit(self, key: str, window_start: datetime, window_end: datetime) -> int:
        """One more hit on a rate-limit counter of one window (a single atomic write, no transaction, so
        every gunicorn process counts on the same document); returns the window's count so far."""
        for _ in range(3):
            try:
                doc = self.db.signin_counters.find_one_and_update(
                    {"_id": f"{key}|{window_start.isoformat()}"},
                    {"$inc": {"n": 1}, "$setOnInsert": {"expires_at": window_end}},
                    upsert=True, return_document=ReturnDocument.AFTER)
            except DuplicateKeyError:  # two first hits of a window at once: the loser increments
                continue
            if doc is not None:
                return doc["n"]
            # The embedded database can answer a racing upsert with no document at all: count again.
        raise RuntimeError("rate-limit counter kept clashing")

    def set_staff_status(self, organization_id: str, staff_id: str, status: str, now: datetime) -> None:
        self.update_one("staff", {"_id": staff_id, "organization_id": organization_id},
                        {"$set": {"status": status, "updated_at": now}, "$inc": {"version": 1}})

    # --- members, consents, screenings, plans ----------------------------------------------------
    def member(self, organization_id: str, member_id: str) -> dict | None:
        return self._get("members", organization_id, member_id)

    def members_page(self, organization_id: str, *, site_filter: list[str] | None, site_id: str | None,
                     status: str | None, flagged: bool | None, external_id: str | None, skip: int, limit: int,
                     name: str | None = None, ids: list[str] | None = None):
        if ids is not None and status is None and flagged is None and external_id is None and not name:
            return self._members_by_ids(organization_id, ids, site_filter, site_id, skip, limit)
        # Not erased: an erased member's stub has status "erased", which no member status is (an index can
        # answer a status; the embedded database scans for ``erased: {$ne: true}``).
        query: dict = {"organization_id": organization_id, **site_scope("site_id", site_filter, site_id),
                       "status": {"$in": list(MEMBER_STATUSES)}}
        if ids is not None:
            query["_id"] = {"$in": ids}
        if status is not None:
            query["status"] = status
        if flagged:
            # a flag named (an index can answer it; the embedded database scans for ``flags.0: {$exists}``)
            query["flags"] = any_of(MEMBER_FLAGS)
        elif flagged is not None:
            query["flags.0"] = {"$exists": False}
        if external_id is not None:
            query["external_id"] = external_id
        if name:
            starts = {"$regex": "^" + re.escape(name.strip()), "$options": "i"}
            query["$or"] = [{"first_name": starts}, {"last_name": starts}, {"preferred_name": starts}]
        # A site's first page is full and shows the total: one query for both (page_and_total says why)
        return self._page("members", query, skip, limit, OLDEST_FIRST, total_with_page=True)

    def _members_by_ids(self, organization_id: str, ids: list[str], site_filter: list[str] | None,
                        site_id: str | None, skip: int, limit: int) -> tuple[list[dict], int]:
        """The members named (at most a page of them), read by primary key and kept to the organization, the
        caller's sites and the members not erased here: the same answer as members_page's query, which the
        embedded database runs as a scan of every member (its planner leaves an index unused for a query
        naming a field the index lacks, such as ``erased: {$ne: true}``)."""
        sites = site_scope("site_id", site_filter, site_id).get("site_id")
        allowed = None if sites is None else set(sites["$in"]) if isinstance(sites, dict) else {sites}
        docs = [d for d in self.find("members", {"_id": {"$in": list(ids)}})
                if d.get("organization_id") == organization_id and d.get("erased") is not True
                and (allowed is None or d.get("site_id") in allowed)]
        docs.sort(key=lambda d: (d.get("created_at") is not None, d.get("created_at") or 0, d["_id"]))
        return [_from_bson(d) for d in docs[skip:skip + limit if limit else None]], len(docs)

    def insert_member(self, doc: dict) -> None:
        self._insert("members", doc)

    def replace_member(self, doc: dict) -> None:
        self._replace("members", doc)

    def members_with_consents_due(self, now: datetime) -> list[dict]:
        """(id, organization) of members, in any organization, with a consent expiry to announce."""
        return self.find("members", {"consent_expiries": {"$lte": now}, "erased": {"$ne": True}},
                         projection={"_id": 1, "organization_id": 1})

    def log_consent(self, doc: dict) -> None:
        self._insert("consent_log", doc)

    def log_consents(self, docs: list[dict]) -> None:
        self.db.consent_log.insert_many([_to_bson(doc) for doc in docs], ordered=True, session=self.session)

    def consent_log(self, organization_id: str, member_id: str) -> list[dict]:
        return self.find("consent_log", {"organization_id": organization_id, "member_id": member_id},
                         projection={"_id": 0}, sort=[("at", ASCENDING)])

    def insert_screening(self, doc: dict) -> None:
        self._insert("screenings", doc)

    def screenings_page(self, organization_id: str, member_id: str, instrument: str | None, skip: int, limit: int):
        query = {"organization_id": organization_id, "member_id": member_id}
        if instrument:
            query["instrument"] = instrument
        return self._page("screenings", query, skip, limit, [("recorded_at", DESCENDING), ("_id", ASCENDING)])

    def screenings_of_member(self, organization_id: str, member_id: str) -> list[dict]:
        return self.find("screenings", {"organization_id": organization_id, "member_id": member_id},
                         sort=[("recorded_at", ASCENDING), ("_id", ASCENDING)])

    def insert_plan_revision(self, doc: dict) -> None:
        self._insert("plan_history", doc)

    def plan_history(self, organization_id: str, member_id: str) -> list[dict]:
        return self.find("plan_history", {"organization_id": organization_id, "member_id": member_id},
                         projection={"_id": 0}, sort=[("revision", DESCENDING)])

    def erase_member_data(self, organization_id: str, member_id: str, stub: dict,
                          external_id: str | None = None) -> None:
        """Remove everything that identifies the member from this database, keeping only ``stub``."""
        scope = {"organization_id": organization_id, "member_id": member_id}
        self.replace_one("members", {"_id": member_id, "organization_id": organization_id}, stub)
        self.delete_many("identities", {"person_id": member_id})
        for coll in ("screenings", "consent_log", "plan_history", "matches"):
            self.delete_many(coll, scope)
        # Import reports name the member's external id: keep the row, drop the identifier.
        self.update_many("imports", {"organization_id": organization_id, "rows.member_id": member_id},
                         {"$set": {"rows.$[r].external_id": None, "rows.$[r].erased": True}},
                         array_filters=[{"r.member_id": member_id}])
        if external_id:  # rows that named the external id but were rejected
            self.update_many("imports", {"organization_id": organization_id, "rows.external_id": external_id},
                             {"$set": {"rows.$[r].external_id": None}}, array_filters=[{"r.external_id": external_id}])
        # Contact events (email, phone, name) wait or linger in the outbox: a tombstone replaces them.
        self.delete_many("outbox", {"topic": CONTACTS, "key": member_id, "type": {"$ne": None}})

    # --- leaders -----------------------------------------------------------------------------------
    def leader(self, organization_id: str, leader_id: str) -> dict | None:
        return self._get("leaders", organization_id, leader_id)

    def leaders_page(self, organization_id: str, *, site_filter: list[str] | None, site_id: str | None,
                     status: str | None, skip: int, limit: int, ids: list[str] | None = None):
        # The caller's sites and the site asked for are two clauses on the leader's list of sites.
        clauses = [c for c in (site_scope("site_ids", site_filter), site_scope("site_ids", None, site_id)) if c]
        query: dict = {"organization_id": organization_id}
        if ids is not None:
            query["_id"] = {"$in": ids}
        if clauses:
            query["$and"] = clauses
        if status is not None:
            query["status"] = status
        return self._page("leaders", query, skip, limit, OLDEST_FIRST)

    def insert_leader(self, doc: dict) -> None:
        self._insert("leaders", doc)

    def replace_leader(self, doc: dict) -> None:
        self._replace("leaders", doc)

    # --- matches (read model of matching's match events) ------------------------------------------
    def match(self, organization_id: str, match_id: str) -> dict | None:
        return self.find_one("matches", {"_id": read_model_key(organization_id, match_id)})

    def save_match(self, organization_id: str, match_id: str, fields: dict) -> None:
        self.upsert("matches", read_model_key(organization_id, match_id),
                    {**fields, "organization_id": organization_id, "match_id": match_id})

    def open_matches(self, organization_id: str, *, member_id: str | None = None,
                     leader_id: str | None = None) -> list[dict]:
        """Matches in force (proposed, accepted or active) of a member or of a leader, newest first."""
        query: dict = {"organization_id": organization_id, "open": True}
        if member_id is not None:
            query["member_id"] = member_id
        if leader_id is not None:
            query["leader_id"] = leader_id
        return self.find("matches", query, sort=[("updated_at", DESCENDING), ("_id", ASCENDING)],
                         projection={"_id": 0})

    def matches_of_member(self, organization_id: str, member_id: str) -> list[dict]:
        return self.find("matches", {"organization_id": organization_id, "member_id": member_id},
                         sort=[("updated_at", ASCENDING), ("_id", ASCENDING)], projection={"_id": 0})

    # --- imports and audit -------------------------------------------------------------------------
    def insert_import(self, doc: dict) -> None:
        self._insert("imports", doc)

    def import_report(self, organization_id: str, import_id: str) -> dict | None:
        return self._get("imports", organization_id, import_id)

    def audit_page(self, organization_id: str, *, resource_id: str | None, resource_type: str | None,
                   action: str | None, skip: int, limit: int):
        query: dict = {"organization_id": organization_id}
        for name, value in (("resource_id", resource_id), ("resource_type", resource_type), ("action", action)):
            if value is not None:
                query[name] = value
        return self.page("audit_log", query, skip=skip, limit=limit, sort=[("at", ASCENDING), ("_id", ASCENDING)])

    def audit_reads(self, principal, resource_type: str, resource_ids: list[str], organization_id: str,
                    **details) -> None:
        """One "read" entry naming every record a lookup by ids answered. Its ``resource_id`` holds the list:
        the (organization, resource_id) index then finds it by any of them (a multikey entry each), as it
        finds a one-record entry. One document, not one per record: the embedded database spent about 14 ms
        of CPU on 25 entries and 3 ms on one naming 25 (bench/README.md, console)."""
        if resource_ids:
            self.db.audit_log.insert_one(
                audit_entry(principal, "read", resource_type, list(resource_ids), organization_id, **details),
                session=self.session)

    def audit_entries_about(self, organization_id: str, resource_id: str) -> list[dict]:
        """Every audit entry about one record (a member's right to know who read it), each naming that record
        alone: an entry about several records read at once does not show the others."""
        entries = self.find("audit_log", {"organization_id": organization_id, "resource_id": resource_id},
                            sort=[("at", ASCENDING), ("_id", ASCENDING)], projection={"_id": 0})
        return [dict(e, resource_id=resource_id) if isinstance(e.get("resource_id"), list) else e for e in entries]


def ensure_indexes(db: Database) -> None:
    """Collections and indexes of this service (run by deploy set-up and by tests)."""
    Store.ensure_collections(db)
    db.sites.create_index([("organization_id", ASCENDING), ("name", ASCENDING)], name="org_name")
    db.staff.create_index([("organization_id", ASCENDING)], name="org")
    db.members.create_index([("organization_id", ASCENDING), ("site_id", ASCENDING), ("status", ASCENDING)],
                            name="org_site_status")
    db.members.create_index([("organization_id", ASCENDING), ("status", ASCENDING), ("site_id", ASCENDING)],
                            name="org_status_site")  # the lists of admins (every site): status $in
    # the flagged lists (Today's risk flags to follow up), of a coordinator's site and of every site
    db.members.create_index([("organization_id", ASCENDING), ("site_id", ASCENDING), ("flags", ASCENDING),
                             ("status", ASCENDING)], name="org_site_flags_status")
    drop_retired_indexes(db.members, {"org_flags": "(organization, flags): the next one serves its queries too"})
    db.members.create_index([("organization_id", ASCENDING), ("flags", ASCENDING), ("status", ASCENDING)],
                            name="org_flags_status")
    db.members.create_index([("consent_expiries", ASCENDING)], name="consent_expiries")
    db.leaders.create_index([("organization_id", ASCENDING), ("site_ids", ASCENDING), ("status", ASCENDING)],
                            name="org_sites_status")
    db.identities.create_index([("person_id", ASCENDING)], name="person")
    # Sign-in finds a person by address across organizations; identities claimed before sign-in existed
    # get their value (the last part of their _id) once.
    for doc in db.identities.find({"value": {"$exists": False}}, {"_id": 1}):
        db.identities.update_one({"_id": doc["_id"]}, {"$set": {"value": doc["_id"].split("|", 3)[3]}})
    db.identities.create_index([("key_type", ASCENDING), ("value", ASCENDING)], name="key_value")
    ensure_collections(db, ("signin_codes", "signin_counters", "operators"))
    db.signin_codes.create_index([("code_hash", ASCENDING)], name="code_hash", unique=True)
    db.signin_codes.create_index([("link_hash", ASCENDING)], name="link_hash", unique=True)
    db.signin_codes.create_index([("purge_at", ASCENDING)], name="purge", expireAfterSeconds=0)
    db.signin_counters.create_index([("expires_at", ASCENDING)], name="expiry", expireAfterSeconds=0)
    db.operators.create_index([("email_key", ASCENDING)], name="email", unique=True)
    db.screenings.create_index([("organization_id", ASCENDING), ("member_id", ASCENDING),
                                ("recorded_at", DESCENDING)], name="org_member_time")
    db.consent_log.create_index([("organization_id", ASCENDING), ("member_id", ASCENDING), ("at", ASCENDING)],
                                name="org_member_time")
    db.plan_history.create_index([("organization_id", ASCENDING), ("member_id", ASCENDING),
                                  ("revision", ASCENDING)], name="org_member_revision")
    db.imports.create_index([("organization_id", ASCENDING), ("created_at", DESCENDING)], name="org_time")
    db.matches.create_index([("organization_id", ASCENDING), ("member_id", ASCENDING), ("open", ASCENDING)],
                            name="org_member_open")
    db.matches.create_index([("organization_id", ASCENDING), ("leader_id", ASCENDING), ("open", ASCENDING)],
                            name="org_leader_open")
