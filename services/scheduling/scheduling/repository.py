"""The only module of the scheduling service that touches MongoDB; writes state and outbox together.

Collections (every document carries ``organization_id``; every query is scoped by it):
  sites, leaders, members, matches   read model built from intake's and matching's events
  meetings                           series + exceptions (cancelled / moved occurrences by original start)
  registrations                      per meeting (series) or per occurrence; registered / waitlisted / cancelled
  attendance                         one document per occurrence
  sessions, suggestions              one-on-one sessions and the times proposed for a match
  reminders                          one document per reminder key (_id): the "exactly once" guard
  locks                              per-person / per-meeting counters touched inside a transaction so
                                     concurrent bookings of the same person conflict and retry
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, MongoClient
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared.audit import audit_entry, record
from shared.mongo import ensure_platform_indexes, find_in, utcnow
from shared.unit_of_work import run_in_transaction

SOURCE = "/recoverynet/scheduling"

COLLECTIONS = ("sites", "leaders", "members", "matches", "meetings", "registrations", "attendance",
               "sessions", "suggestions", "reminders", "locks")


def ensure_indexes(db: Database) -> None:
    """Collections and indexes of this service (run by deploy set-up and by tests)."""
    ensure_platform_indexes(db)
    existing = set(db.list_collection_names())
    for name in COLLECTIONS:
        if name not in existing:
            db.create_collection(name)  # transactions cannot always create collections
    db.meetings.create_index([("organization_id", ASCENDING), ("site_id", ASCENDING)], name="org_site")
    db.meetings.create_index([("organization_id", ASCENDING), ("leader_ids", ASCENDING)], name="org_leaders")
    db.meetings.create_index([("status", ASCENDING)], name="status")
    db.meetings.create_index([("organization_id", ASCENDING), ("slug", ASCENDING)], name="org_slug")
    db.registrations.create_index([("organization_id", ASCENDING), ("meeting_id", ASCENDING)], name="org_meeting")
    db.registrations.create_index([("organization_id", ASCENDING), ("member_id", ASCENDING)], name="org_member")
    db.sessions.create_index([("organization_id", ASCENDING), ("leader_id", ASCENDING), ("start", ASCENDING)],
                             name="org_leader_start")
    db.sessions.create_index([("organization_id", ASCENDING), ("member_id", ASCENDING), ("start", ASCENDING)],
                             name="org_member_start")
    db.sessions.create_index([("status", ASCENDING), ("start", ASCENDING)], name="status_start")
    db.sessions.create_index([("organization_id", ASCENDING), ("match_id", ASCENDING)], name="org_match")
    db.matches.create_index([("organization_id", ASCENDING), ("member_id", ASCENDING)], name="org_member")
    db.matches.create_index([("organization_id", ASCENDING), ("leader_id", ASCENDING)], name="org_leader")
    db.reminders.create_index([("organization_id", ASCENDING), ("person_id", ASCENDING)], name="org_person")
    db.members.create_index([("feed_token_hash", ASCENDING)], name="feed_token")
    db.leaders.create_index([("feed_token_hash", ASCENDING)], name="feed_token")


def key(org: str, ident: str) -> str:
    return f"{org}:{ident}"


class Store:
    """Reads and writes of one unit of work (``session`` set) or of a plain read (``session`` None)."""

    def __init__(self, db: Database, session=None):
        self.db, self.session = db, session

    @classmethod
    def of(cls, uow) -> "Store":
        return cls(uow.db, uow.session)

    def _find_one(self, coll: str, query: dict) -> dict | None:
        return self.db[coll].find_one(query, session=self.session)

    def _find(self, coll: str, query: dict, sort=None, skip: int = 0, limit: int = 0) -> list[dict]:
        cursor = self.db[coll].find(query, session=self.session)
        if sort:
            cursor = cursor.sort(sort)
        if skip:
            cursor = cursor.skip(skip)
        if limit:
            cursor = cursor.limit(limit)
        return list(cursor)

    def _upsert(self, coll: str, _id: str, fields: dict, on_insert: dict | None = None) -> None:
        update: dict[str, Any] = {"$set": fields}
        if on_insert:
            update["$setOnInsert"] = on_insert
        self.db[coll].update_one({"_id": _id}, update, upsert=True, session=self.session)

    def audit(self, principal, action: str, resource_type: str, resource_id: str, org: str, **details) -> None:
        """Who read or changed a member's record (ids only), in the same transaction as a change."""
        record(self.db, audit_entry(principal, action, resource_type, resource_id, org, **details), session=self.session)

    def lock(self, name: str) -> None:
        """Touch a lock document: two transactions touching the same one conflict, and the loser is
        retried by ``run_in_transaction`` and then sees the winner's writes."""
        self.db.locks.update_one({"_id": name}, {"$inc": {"n": 1}}, upsert=True, session=self.session)

    # -- read model: sites, people, matches ------------------------------------------------------
    def site(self, org: str, site_id: str | None) -> dict | None:
        return self._find_one("sites", {"_id": key(org, site_id)}) if site_id else None

    def save_site(self, org: str, site_id: str, fields: dict) -> None:
        self._upsert("sites", key(org, site_id), {**fields, "organization_id": org, "site_id": site_id})

    def person(self, kind: str, org: str, person_id: str) -> dict | None:
        return self._find_one(f"{kind}s", {"_id": key(org, person_id)})

    def save_person(self, kind: str, org: str, person_id: str, fields: dict) -> None:
        self._upsert(f"{kind}s", key(org, person_id),
                     {**fields, "organization_id": org, f"{kind}_id": person_id, "updated_at": utcnow()})

    def delete_person(self, kind: str, org: str, person_id: str) -> None:
        self.db[f"{kind}s"].delete_one({"_id": key(org, person_id)}, session=self.session)

    def person_by_feed_token(self, kind: str, token_hash: str) -> dict | None:
        return self._find_one(f"{kind}s", {"feed_token_hash": token_hash})

    def match(self, org: str, match_id: str) -> dict | None:
        return self._find_one("matches", {"_id": key(org, match_id)})

    def save_match(self, org: str, match_id: str, fields: dict) -> None:
        self._upsert("matches", key(org, match_id), {**fields, "organization_id": org, "match_id": match_id})

    def matches_of_member(self, org: str, member_id: str) -> list[dict]:
        return self._find("matches", {"organization_id": org, "member_id": member_id})

    def matches_awaiting_suggestions(self, org: str, person_field: str, person_id: str) -> list[dict]:
        """Active matches of this member or leader whose suggestions waited for a profile."""
        return self._find("matches", {"organization_id": org, person_field: person_id, "status": "active",
                                      "suggested": {"$ne": True}})

    # -- meetings --------------------------------------------------------------------------------
    def insert_meeting(self, doc: dict) -> None:
        self.db.meetings.insert_one(doc, session=self.session)

    def meeting(self, org: str, meeting_id: str) -> dict | None:
        return self._find_one("meetings", {"_id": meeting_id, "organization_id": org})

    def update_meeting(self, org: str, meeting_id: str, fields: dict) -> None:
        self.db.meetings.update_one({"_id": meeting_id, "organization_id": org},
                                    {"$set": {**fields, "updated_at": utcnow()}, "$inc": {"version": 1}},
                                    session=self.session)

    def set_exception(self, org: str, meeting_id: str, exception_key: str, exception: dict) -> None:
        self.db.meetings.update_one({"_id": meeting_id, "organization_id": org},
                                    {"$set": {f"exceptions.{exception_key}": exception, "updated_at": utcnow()},
                                     "$inc": {"version": 1}}, session=self.session)

    def meetings(self, org: str, *, site_ids: list[str] | None = None, leader_id: str | None = None,
                 site_id: str | None = None, status: str | None = "active", public_only: bool = False,
                 skip: int = 0, limit: int = 0) -> tuple[list[dict], int]:
        query: dict[str, Any] = {"organization_id": org}
        if status:
            query["status"] = status
        if site_ids is not None:
            query["site_id"] = {"$in": [s for s in site_ids if not site_id or s == site_id]}
        elif site_id:
            query["site_id"] = site_id
        if leader_id:
            query["leader_ids"] = leader_id
        if public_only:
            query["is_public"] = True
        total = self.db.meetings.count_documents(query, session=self.session)
        return self._find("meetings", query, sort=[("created_at", ASCENDING), ("_id", ASCENDING)],
                          skip=skip, limit=limit), total

    def public_meeting_by_slug(self, org: str, slug: str) -> dict | None:
        return self._find_one("meetings", {"organization_id": org, "slug": slug, "is_public": True, "status": "active"})

    def meetings_at_site(self, org: str, site_id: str) -> list[dict]:
        return self._find("meetings", {"organization_id": org, "site_id": site_id, "status": "active"})

    def all_active_meetings(self, org: str | None = None) -> list[dict]:
        return self._find("meetings", {"status": "active", **({"organization_id": org} if org else {})})

    # -- registrations and attendance ------------------------------------------------------------
    def insert_registration(self, doc: dict) -> None:
        self.db.registrations.insert_one(doc, session=self.session)

    def registration(self, org: str, meeting_id: str, registration_id: str) -> dict | None:
        return self._find_one("registrations", {"_id": registration_id, "organization_id": org,
                                                "meeting_id": meeting_id})

    def registrations(self, org: str, meeting_id: str, statuses=("registered", "waitlisted")) -> list[dict]:
        return self._find("registrations", {"organization_id": org, "meeting_id": meeting_id,
                                            "status": {"$in": list(statuses)}},
                          sort=[("created_at", ASCENDING), ("_id", ASCENDING)])

    def registrations_of_member(self, org: str, member_id: str, statuses=("registered",)) -> list[dict]:
        return self._find("registrations", {"organization_id": org, "member_id": member_id,
                                            "status": {"$in": list(statuses)}})

    def set_registration_status(self, registration_id: str, status: str) -> None:
        self.db.registrations.update_one({"_id": registration_id},
                                         {"$set": {"status": status, "updated_at": utcnow()}},
                                         session=self.session)

    def attendance(self, org: str, occurrence_id: str) -> dict | None:
        return self._find_one("attendance", {"_id": key(org, occurrence_id)})

    def save_attendance(self, org: str, occurrence_id: str, fields: dict) -> None:
        self._upsert("attendance", key(org, occurrence_id), {**fields, "organization_id": org,
                                                             "occurrence_id": occurrence_id})

    def forget_member_everywhere(self, org: str, member_id: str) -> None:
        """Erasure: registrations and reminders go; attendance keeps counts but not the id."""
        self.db.registrations.delete_many({"organization_id": org, "member_id": member_id}, session=self.session)
        self.db.attendance.update_many({"organization_id": org},
                                       {"$pull": {"present_member_ids": member_id, "absent_member_ids": member_id}},
                                       session=self.session)
        self.db.reminders.delete_many({"organization_id": org, "person_id": member_id}, session=self.session)
        self.db.suggestions.delete_many({"organization_id": org, "member_id": member_id}, session=self.session)

    # -- sessions --------------------------------------------------------------------------------
    def insert_session(self, doc: dict) -> None:
        self.db.sessions.insert_one(doc, session=self.session)

    def anonymize_sessions(self, org: str, member_id: str) -> None:
        self.db.sessions.update_many({"organization_id": org, "member_id": member_id},
                                     {"$set": {"member_id": "erased"}}, session=self.session)

    def session_doc(self, org: str, session_id: str) -> dict | None:
        return self._find_one("sessions", {"_id": session_id, "organization_id": org})

    def update_session(self, session_id: str, fields: dict) -> None:
        self.db.sessions.update_one({"_id": session_id}, {"$set": {**fields, "updated_at": utcnow()},
                                                          "$inc": {"version": 1}}, session=self.session)

    def booked_sessions(self, org: str, *, person_field: str, person_id: str, start: datetime,
                        end: datetime) -> list[dict]:
        return self._find("sessions", {"organization_id": org, person_field: person_id, "status": "booked",
                                       "start": {"$lt": end}, "end": {"$gt": start}})

    def sessions(self, org: str, query: dict, skip: int = 0, limit: int = 0) -> tuple[list[dict], int]:
        full = {"organization_id": org, **query}
        total = self.db.sessions.count_documents(full, session=self.session)
        return self._find("sessions", full, sort=[("start", ASCENDING)], skip=skip, limit=limit), total

    def upcoming_booked_sessions(self, start: datetime, end: datetime, org: str | None = None) -> list[dict]:
        return self._find("sessions", {"status": "booked", "start": {"$gte": start, "$lt": end},
                                       **({"organization_id": org} if org else {})})

    def save_suggestions(self, org: str, match_id: str, fields: dict) -> None:
        self._upsert("suggestions", key(org, match_id), {**fields, "organization_id": org, "match_id": match_id})

    def suggestions(self, org: str, match_id: str) -> dict | None:
        return self._find_one("suggestions", {"_id": key(org, match_id)})

    # -- reminders -------------------------------------------------------------------------------
    def reminder_ids_sent(self, ids: list[str]) -> set[str]:
        return {d["_id"] for d in find_in(self.db.reminders, "_id", ids, projection={"_id": 1}, session=self.session)}

    def insert_reminders(self, docs: list[dict]) -> None:
        """Insert new reminders (raises DuplicateKeyError when another worker sent one of them)."""
        self.db.reminders.insert_many(docs, ordered=True, session=self.session)

    def insert_reminder(self, doc: dict) -> bool:
        """False when this reminder exists already (another worker, or an earlier run, sent it)."""
        if self._find_one("reminders", {"_id": doc["_id"]}) is not None:
            return False
        self.db.reminders.insert_one(doc, session=self.session)
        return True


class Repository:
    def __init__(self, client: MongoClient, db: Database):
        self.client, self.db = client, db

    def transaction(self, work):
        """Run ``work(uow)`` in one transaction; events emitted on ``uow`` go to the outbox with it."""
        return run_in_transaction(self.client, self.db, work, source=SOURCE)

    def reader(self) -> Store:
        """Plain reads outside a transaction (lists, feeds)."""
        return Store(self.db)


__all__ = ["Repository", "Store", "ensure_indexes", "DuplicateKeyError", "SOURCE"]
