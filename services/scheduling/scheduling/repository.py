"""The only module of the scheduling service that touches MongoDB: its named queries on shared's Store.

Collections (every document carries ``organization_id``; every query is scoped by it):
  sites, leaders, members, matches   read model built from intake's and matching's events
  meetings                           series + exceptions (cancelled / moved occurrences by original start)
  registrations                      per meeting (series) or per occurrence; registered / waitlisted / cancelled
  seat_counts                        per meeting: its registrants and waiters as counts (model.SeatCount), updated
                                     with each registration, cancellation and promotion
  attendance                         one document per occurrence
  sessions, suggestions              one-on-one sessions and the times proposed for a match
  reminders                          one document per reminder key (_id): the "exactly once" guard
  locks                              per-person / per-meeting counters touched inside a transaction so
                                     concurrent bookings of the same person conflict and retry

Entry points get their handle from ``repository(client, db)`` (shared's ``Repository`` with this Store).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, MongoClient
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.errors import Conflict
from shared.mongo import drop_retired_indexes, utcnow
from shared.repository import Repository, Store as BaseStore, read_model_key, site_scope

SOURCE = "/recoverynet/scheduling"

DUPLICATE_KEY = 11000


class ReminderSent(Conflict):
    """A reminder key is written already (another worker, or an earlier run, sent it): the unit of work
    that tried to write it again is abandoned."""


class Store(BaseStore):
    collections = ("sites", "leaders", "members", "matches", "meetings", "registrations", "seat_counts", "attendance",
                   "sessions", "suggestions", "reminders", "locks")

    def lock(self, name: str) -> None:
        """Touch a lock document: two transactions touching the same one conflict, and the loser is
        retried by ``run_in_transaction`` and then sees the winner's writes."""
        self.db.locks.update_one({"_id": name}, {"$inc": {"n": 1}}, upsert=True, session=self.session)

    # -- read model: sites, people, matches ------------------------------------------------------
    def site(self, org: str, site_id: str | None) -> dict | None:
        return self.find_one("sites", {"_id": read_model_key(org, site_id)}) if site_id else None

    def save_site(self, org: str, site_id: str, fields: dict) -> None:
        self.upsert("sites", read_model_key(org, site_id), {**fields, "organization_id": org, "site_id": site_id})

    def person(self, kind: str, org: str, person_id: str) -> dict | None:
        return self.find_one(f"{kind}s", {"_id": read_model_key(org, person_id)})

    def save_person(self, kind: str, org: str, person_id: str, fields: dict) -> None:
        self.upsert(f"{kind}s", read_model_key(org, person_id),
                    {**fields, "organization_id": org, f"{kind}_id": person_id, "updated_at": utcnow()})

    def delete_person(self, kind: str, org: str, person_id: str) -> None:
        self.db[f"{kind}s"].delete_one({"_id": read_model_key(org, person_id)}, session=self.session)

    def person_by_feed_token(self, kind: str, token_hash: str) -> dict | None:
        return self.find_one(f"{kind}s", {"feed_token_hash": token_hash})

    def match(self, org: str, match_id: str) -> dict | None:
        return self.find_one("matches", {"_id": read_model_key(org, match_id)})

    def save_match(self, org: str, match_id: str, fields: dict) -> None:
        self.upsert("matches", read_model_key(org, match_id), {**fields, "organization_id": org, "match_id": match_id})

    def matches_of_member(self, org: str, member_id: str) -> list[dict]:
        return self.find("matches", {"organization_id": org, "member_id": member_id})

    def matches_awaiting_suggestions(self, org: str, person_field: str, person_id: str) -> list[dict]:
        """Active matches of this member or leader whose suggestions waited for a profile."""
        return self.find("matches", {"organization_id": org, person_field: person_id, "status": "active",
                                     "suggested": {"$ne": True}})

    # -- meetings --------------------------------------------------------------------------------
    def insert_meeting(self, doc: dict) -> None:
        self.db.meetings.insert_one(doc, session=self.session)

    def meeting(self, org: str, meeting_id: str) -> dict | None:
        return self.find_one("meetings", {"_id": meeting_id, "organization_id": org})

    def update_meeting(self, org: str, meeting_id: str, fields: dict) -> None:
        self.update_one("meetings", {"_id": meeting_id, "organization_id": org},
                        {"$set": {**fields, "updated_at": utcnow()}, "$inc": {"version": 1}})

    def set_exception(self, org: str, meeting_id: str, exception_key: str, exception: dict) -> None:
        self.update_one("meetings", {"_id": meeting_id, "organization_id": org},
                        {"$set": {f"exceptions.{exception_key}": exception, "updated_at": utcnow()},
                         "$inc": {"version": 1}})

    def meetings(self, org: str, *, site_filter: list[str] | None = None, leader_id: str | None = None,
                 site_id: str | None = None, status: str | None = "active", public_only: bool = False,
                 skip: int = 0, limit: int = 0, for_peer_providers: bool | None = None) -> tuple[list[dict], int]:
        """``site_filter``: the sites the caller may see (None: every site), ``site_id`` a narrowing;
        ``for_peer_providers``: only support groups for peer providers (True) or only the others (False)."""
        query: dict[str, Any] = {"organization_id": org, **site_scope("site_id", site_filter, site_id)}
        if for_peer_providers is not None:
            query["for_peer_providers"] = True if for_peer_providers else {"$ne": True}
        if status:
            query["status"] = status
        if leader_id:
            query["leader_ids"] = leader_id
        if public_only:   # the public feeds: never a support group for peer providers
            query["is_public"] = True
            query["for_peer_providers"] = {"$ne": True}
        return self.page("meetings", query, skip=skip, limit=limit, sort=[("created_at", ASCENDING), ("_id", ASCENDING)])

    def meetings_for_member(self, org: str, member_site_id: str | None, *, site_id: str | None = None,
                            leader_id: str | None = None, status: str | None = "active", skip: int = 0,
                            limit: int = 0) -> tuple[list[dict], int]:
        """What a member sees (``access.member_may_see_meeting``): public meetings at their site and the
        organization's public online or hybrid meetings."""
        reach: list[dict] = [{"attendance_mode": {"$in": ["online", "hybrid"]}}]
        if member_site_id:
            reach.append({"site_id": member_site_id})
        query: dict[str, Any] = {"organization_id": org, "is_public": True, "$or": reach,
                                 "for_peer_providers": {"$ne": True}}
        if site_id:
            query["site_id"] = site_id
        if status:
            query["status"] = status
        if leader_id:
            query["leader_ids"] = leader_id
        return self.page("meetings", query, skip=skip, limit=limit, sort=[("created_at", ASCENDING), ("_id", ASCENDING)])

    def public_meeting_by_slug(self, org: str, slug: str) -> dict | None:
        return self.find_one("meetings", {"organization_id": org, "slug": slug, "is_public": True, "status": "active"})

    def meetings_at_site(self, org: str, site_id: str) -> list[dict]:
        return self.find("meetings", {"organization_id": org, "site_id": site_id, "status": "active"})

    def all_active_meetings(self, org: str | None = None) -> list[dict]:
        return self.find("meetings", {"status": "active", **({"organization_id": org} if org else {})})

    # -- registrations and attendance ------------------------------------------------------------
    def insert_registration(self, doc: dict) -> None:
        self.db.registrations.insert_one(doc, session=self.session)

    def registration(self, org: str, meeting_id: str, registration_id: str) -> dict | None:
        return self.find_one("registrations", {"_id": registration_id, "organization_id": org,
                                               "meeting_id": meeting_id})

    def registrations(self, org: str, meeting_id: str, statuses=("registered", "waitlisted")) -> list[dict]:
        statuses = list(statuses)   # one status: by equality (the embedded database scans for an $in)
        return self.find("registrations", {"organization_id": org, "meeting_id": meeting_id,
                                           "status": statuses[0] if len(statuses) == 1 else {"$in": statuses}},
                         sort=[("created_at", ASCENDING), ("_id", ASCENDING)])

    def registration_holding(self, org: str, meeting_id: str, member_id: str, occurrence_id: str | None) -> dict | None:
        """The member's registration (registered or waiting) for the whole meeting, or for that occurrence.
        Asked by equality only (the org_meeting_member index), the rest sorted out here: the embedded
        database scans the meeting's registrations when the filter has an ``$in``."""
        for reg in self.find("registrations", {"organization_id": org, "meeting_id": meeting_id, "member_id": member_id}):
            if reg["status"] in ("registered", "waitlisted") and reg.get("occurrence_id") in (None, occurrence_id):
                return reg
        return None

    def seat_count(self, org: str, meeting_id: str) -> dict | None:
        return self.find_one("seat_counts", {"_id": meeting_id, "organization_id": org})

    def seat_counts(self, org: str, meeting_ids: list[str]) -> dict[str, dict]:
        """The seat counts of several meetings at once, by meeting id (a meeting nobody registered for has none)."""
        if not meeting_ids:
            return {}
        # by primary key alone, the organization checked here (the embedded database scans for a query naming
        # a field its index lacks: Store.find_one says more)
        return {d["_id"]: d for d in self.find("seat_counts", {"_id": {"$in": list(meeting_ids)}})
                if d.get("organization_id") == org}

    def occurrence_registrations(self, org: str, occurrence_ids: list[str]) -> list[dict]:
        """The registrations for single occurrences among those named (registered, waiting or cancelled; the
        ``org_occurrence`` index): a calendar's counts, without reading a meeting's series registrations."""
        if not occurrence_ids:
            return []
        return self.find("registrations", {"organization_id": org, "occurrence_id": {"$in": list(occurrence_ids)}},
                         projection={"occurrence_id": 1, "status": 1})

    def save_seat_count(self, org: str, meeting_id: str, counts: dict, version: int | None) -> None:
        """Write a meeting's seat counts, only over the version they were read at (None: there were none)."""
        if version is None:
            self.db.seat_counts.insert_one({**counts, "_id": meeting_id, "organization_id": org, "version": 1,
                                            "updated_at": utcnow()}, session=self.session)
            return
        done = self.update_one("seat_counts", {"_id": meeting_id, "organization_id": org, "version": version},
                               {"$set": {**counts, "updated_at": utcnow()}, "$inc": {"version": 1}})
        if not done:   # the meeting's lock makes this impossible; never count over another's change
            raise Conflict(f"The seats of meeting {meeting_id} changed meanwhile; try again.")

    def registrations_of_member(self, org: str, member_id: str, statuses=("registered",)) -> list[dict]:
        return self.find("registrations", {"organization_id": org, "member_id": member_id,
                                           "status": {"$in": list(statuses)}})

    def all_registrations_of_member(self, org: str, member_id: str) -> list[dict]:
        """Every registration of one member, cancelled ones too, oldest first (their list and export)."""
        return self.find("registrations", {"organization_id": org, "member_id": member_id},
                         sort=[("created_at", ASCENDING), ("_id", ASCENDING)])

    def attendance_of_member(self, org: str, member_id: str) -> list[dict]:
        """The occurrences where a member was marked present or absent."""
        return self.find("attendance", {"organization_id": org, "$or": [{"present_member_ids": member_id},
                                                                        {"absent_member_ids": member_id}]})

    def suggestions_of_member(self, org: str, member_id: str) -> list[dict]:
        return self.find("suggestions", {"organization_id": org, "member_id": member_id})

    def reminders_of_person(self, org: str, person_id: str) -> list[dict]:
        return self.find("reminders", {"organization_id": org, "person_id": person_id}, sort=[("sent_at", ASCENDING)])

    def set_registration_status(self, registration_id: str, status: str) -> None:
        self.db.registrations.update_one({"_id": registration_id},
                                         {"$set": {"status": status, "updated_at": utcnow()}},
                                         session=self.session)

    def attendance(self, org: str, occurrence_id: str) -> dict | None:
        return self.find_one("attendance", {"_id": read_model_key(org, occurrence_id)})

    def save_attendance(self, org: str, occurrence_id: str, fields: dict) -> None:
        self.upsert("attendance", read_model_key(org, occurrence_id), {**fields, "organization_id": org,
                                                                       "occurrence_id": occurrence_id})

    def forget_member_everywhere(self, org: str, member_id: str) -> None:
        """Erasure: registrations and reminders go; attendance keeps counts but not the id."""
        self.delete_many("registrations", {"organization_id": org, "member_id": member_id})
        self.update_many("attendance", {"organization_id": org},
                         {"$pull": {"present_member_ids": member_id, "absent_member_ids": member_id}})
        self.delete_many("reminders", {"organization_id": org, "person_id": member_id})
        self.delete_many("suggestions", {"organization_id": org, "member_id": member_id})

    # -- sessions --------------------------------------------------------------------------------
    def insert_session(self, doc: dict) -> None:
        self.db.sessions.insert_one(doc, session=self.session)

    def anonymize_sessions(self, org: str, member_id: str) -> None:
        self.update_many("sessions", {"organization_id": org, "member_id": member_id}, {"$set": {"member_id": "erased"}})

    def session_doc(self, org: str, session_id: str) -> dict | None:
        return self.find_one("sessions", {"_id": session_id, "organization_id": org})

    def update_session(self, session_id: str, fields: dict) -> None:
        self.db.sessions.update_one({"_id": session_id}, {"$set": {**fields, "updated_at": utcnow()},
                                                          "$inc": {"version": 1}}, session=self.session)

    def sessions_ended_unheld(self, now: datetime, limit: int) -> list[dict]:
        """Booked sessions whose end has passed and that are not yet recorded as held (any organization)."""
        return self.find("sessions", {"status": "booked", "end": {"$lte": now}, "held_at": None},
                         sort=[("end", ASCENDING)], limit=limit)

    def booked_sessions(self, org: str, *, person_field: str, person_id: str, start: datetime,
                        end: datetime) -> list[dict]:
        return self.find("sessions", {"organization_id": org, person_field: person_id, "status": "booked",
                                      "start": {"$lt": end}, "end": {"$gt": start}})

    def sessions(self, org: str, *, member_id: str | None = None, leader_id: str | None = None,
                 match_id: str | None = None, status: str | None = None, scope: dict | None = None,
                 starts_after: datetime | None = None, starts_before: datetime | None = None,
                 ends_after: datetime | None = None, skip: int = 0, limit: int = 0) -> tuple[list[dict], int]:
        """Sessions by person, match and status (each when given), inside ``scope`` (the caller's
        visibility clause, which wins over those filters), starting or ending around the given instants;
        earliest first."""
        query: dict[str, Any] = {"organization_id": org}
        for name, value in (("member_id", member_id), ("leader_id", leader_id), ("match_id", match_id),
                            ("status", status)):
            if value:
                query[name] = value
        query.update(scope or {})
        start: dict[str, datetime] = {}
        if starts_after:
            start["$gt"] = starts_after
        if starts_before:
            start["$lt"] = starts_before
        if start:
            query["start"] = start
        if ends_after:
            query["end"] = {"$gt": ends_after}
        return self.page("sessions", query, skip=skip, limit=limit, sort=[("start", ASCENDING)])

    def upcoming_booked_sessions(self, start: datetime, end: datetime, org: str | None = None) -> list[dict]:
        return self.find("sessions", {"status": "booked", "start": {"$gte": start, "$lt": end},
                                      **({"organization_id": org} if org else {})})

    def save_suggestions(self, org: str, match_id: str, fields: dict) -> None:
        self.upsert("suggestions", read_model_key(org, match_id), {**fields, "organization_id": org, "match_id": match_id})

    def suggestions(self, org: str, match_id: str) -> dict | None:
        return self.find_one("suggestions", {"_id": read_model_key(org, match_id)})

    # -- reminders -------------------------------------------------------------------------------
    def reminder_ids_sent(self, ids: list[str]) -> set[str]:
        return {d["_id"] for d in self.find_in("reminders", "_id", ids, projection={"_id": 1})}

    def insert_reminders(self, docs: list[dict]) -> None:
        """Insert new reminders; ``ReminderSent`` when another worker sent one of them (and nothing else
        went wrong)."""
        try:
            self.db.reminders.insert_many(docs, ordered=True, session=self.session)
        except BulkWriteError as exc:
            if {error.get("code") for error in exc.details.get("writeErrors", [])} != {DUPLICATE_KEY}:
                raise
            raise ReminderSent("One of these reminders is sent already.") from None

    def insert_reminder(self, doc: dict) -> bool:
        """False when this reminder exists already (an earlier run sent it); ``ReminderSent`` when another
        worker committed it meanwhile."""
        if self.find_one("reminders", {"_id": doc["_id"]}) is not None:
            return False
        try:
            self.db.reminders.insert_one(doc, session=self.session)
        except DuplicateKeyError:
            raise ReminderSent(f"Reminder {doc['_id']} is sent already.") from None
        return True


def ensure_indexes(db: Database) -> None:
    """Collections and indexes of this service (run by deploy set-up and by tests)."""
    Store.ensure_collections(db)
    db.meetings.create_index([("organization_id", ASCENDING), ("site_id", ASCENDING)], name="org_site")
    db.meetings.create_index([("organization_id", ASCENDING), ("leader_ids", ASCENDING)], name="org_leaders")
    db.meetings.create_index([("status", ASCENDING)], name="status")
    db.meetings.create_index([("organization_id", ASCENDING), ("slug", ASCENDING)], name="org_slug")
    drop_retired_indexes(db.registrations, {"org_meeting": "(organization, meeting): a prefix of the next two"})
    db.registrations.create_index([("organization_id", ASCENDING), ("member_id", ASCENDING)], name="org_member")
    db.registrations.create_index([("organization_id", ASCENDING), ("meeting_id", ASCENDING), ("member_id", ASCENDING)],
                                  name="org_meeting_member")
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
    # Scoped lists name the caller's sites: the embedded database (SecantusDB) uses an index only when it holds
    # every field a query names, so these hold site_id (or status) too (bench/README.md, console).
    db.meetings.create_index([("organization_id", ASCENDING), ("site_id", ASCENDING), ("status", ASCENDING)], name="org_site_status")
    db.registrations.create_index([("organization_id", ASCENDING), ("meeting_id", ASCENDING), ("status", ASCENDING)],
                                  name="org_meeting_status")
    db.registrations.create_index([("organization_id", ASCENDING), ("occurrence_id", ASCENDING)], name="org_occurrence")
    db.sessions.create_index([("organization_id", ASCENDING), ("member_id", ASCENDING), ("site_id", ASCENDING)], name="org_member_site")


def repository(client: MongoClient, db: Database) -> Repository:
    """The entry points' handle on this service's database (shared's Repository with this Store)."""
    return Repository(client, db, source=SOURCE, store=Store)
