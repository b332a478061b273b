"""The only module of the matching service that touches MongoDB; writes state and outbox together.

Collections (every document carries ``organization_id``; read-model ids are "<org>/<id>"):
  members, leaders, sites   the read model built from intake's events (only what matching needs)
  matches                   proposals and matches; ``open_key`` (unique, sparse) = one open match per member
  waitlist                  members nobody can take now, with the reason in words
  overrides                 coordinator pins/blocks, and leaders a member declined / asked to change
  org_settings              per-organization weights and timings
  batch_runs                batch assignment runs and their results
"""
from __future__ import annotations

from datetime import date, datetime, time, timezone

from pymongo import ASCENDING, DESCENDING, DeleteOne, MongoClient, UpdateOne
from pymongo.database import Database

from shared.audit import record
from shared.mongo import ensure_platform_indexes, find_in
from shared.unit_of_work import run_in_transaction

from matching import model

SOURCE = "/recoverynet/matching"
COLLECTIONS = ("members", "leaders", "sites", "matches", "waitlist", "overrides", "org_settings", "batch_runs")


def ensure_indexes(db: Database) -> None:
    """Collections and indexes of this service (run by deploy set-up and by tests)."""
    ensure_platform_indexes(db)
    existing = set(db.list_collection_names())
    for name in COLLECTIONS:
        if name not in existing:
            db.create_collection(name)
    db.members.create_index([("organization_id", ASCENDING), ("site_id", ASCENDING)], name="org_site")
    db.leaders.create_index([("organization_id", ASCENDING)], name="org")
    db.sites.create_index([("organization_id", ASCENDING)], name="org")
    db.matches.create_index([("open_key", ASCENDING)], name="one_open_match_per_member", unique=True, sparse=True)
    db.matches.create_index([("organization_id", ASCENDING), ("member_id", ASCENDING)], name="org_member")
    db.matches.create_index([("organization_id", ASCENDING), ("leader_id", ASCENDING), ("status", ASCENDING)],
                            name="org_leader_status")
    db.matches.create_index([("status", ASCENDING), ("expires_at", ASCENDING)], name="status_expiry")
    db.waitlist.create_index([("organization_id", ASCENDING), ("since", ASCENDING)], name="org_since")
    db.overrides.create_index([("organization_id", ASCENDING), ("member_id", ASCENDING)], name="org_member")
    db.batch_runs.create_index([("status", ASCENDING), ("created_at", ASCENDING)], name="status_created")
    db.batch_runs.create_index([("organization_id", ASCENDING), ("created_at", DESCENDING)], name="org_created")


def key(org: str, ident: str) -> str:
    return f"{org}/{ident}"


def _date_to_dt(value: date | None) -> datetime | None:
    return None if value is None else datetime.combine(value, time(0), tzinfo=timezone.utc)


def _windows(raw) -> list[model.Window]:
    return [model.Window(int(w["day"]), str(w["start"]), str(w["end"])) for w in raw or []]


def member_from_doc(doc: dict) -> model.Member:
    return model.Member(
        member_id=doc["member_id"], site_id=doc["site_id"], status=doc.get("status", "active"),
        time_zone=doc.get("time_zone") or "UTC", languages=doc.get("languages") or [],
        leader_gender_preference=doc.get("leader_gender_preference"), meeting_mode=doc.get("meeting_mode", "either"),
        availability=_windows(doc.get("availability")), substances=doc.get("substances") or [],
        pathways=doc.get("pathways") or [], co_occurring_mental_health=doc.get("co_occurring_mental_health") or "prefer_not_to_say",
        lived_experience_topics=doc.get("lived_experience_topics") or [],
        matching_consent=bool(doc.get("matching_consent")),
        matching_consent_expires_at=doc.get("matching_consent_expires_at"))


def leader_from_doc(doc: dict) -> model.Leader:
    until = doc.get("certified_until")
    return model.Leader(
        leader_id=doc["leader_id"], site_ids=doc.get("site_ids") or [], status=doc.get("status", "active"),
        time_zone=doc.get("time_zone") or "UTC", languages=doc.get("languages") or [], gender=doc.get("gender"),
        meets_virtually=bool(doc.get("meets_virtually")), availability=_windows(doc.get("availability")),
        capacity=int(doc.get("capacity") or 0), open_count=int(doc.get("open_count") or 0),
        substances=doc.get("substances") or [], pathways=doc.get("pathways") or [],
        lived_experience_areas=doc.get("lived_experience_areas") or [],
        co_occurring_mental_health_experience=bool(doc.get("co_occurring_mental_health_experience")),
        certified=bool(doc.get("certified")), certified_until=until.date() if isinstance(until, datetime) else until)


class Store:
    """Reads and writes of one unit of work (``session`` may be None for plain reads)."""

    def __init__(self, db: Database, session=None):
        self.db, self.s = db, session

    # -- read model ------------------------------------------------------------------------------
    def upsert_site(self, org: str, site_id: str, fields: dict) -> None:
        self.db.sites.update_one({"_id": key(org, site_id)},
                                 {"$set": {"organization_id": org, "site_id": site_id, **fields}},
                                 upsert=True, session=self.s)

    def virtual_only_sites(self, org: str) -> frozenset[str]:
        return frozenset(d["site_id"] for d in self.db.sites.find({"organization_id": org, "virtual_only": True},
                                                                   {"site_id": 1}, session=self.s))

    def site_facts(self, org: str) -> tuple[frozenset[str], dict[str, str]]:
        """In one read: the sites that meet only virtually, and every known site's name (for reasons in words)."""
        docs = list(self.db.sites.find({"organization_id": org}, {"site_id": 1, "name": 1, "virtual_only": 1},
                                       session=self.s))
        return (frozenset(d["site_id"] for d in docs if d.get("virtual_only")),
                {d["site_id"]: d["name"] for d in docs if d.get("name")})

    def site_known(self, org: str, site_id: str) -> bool:
        """One of the organization's sites: seen in intake's SiteCreated/SiteUpdated, or named by one of the
        organization's members or leaders (intake checked it there; their events may arrive first)."""
        return bool(self.db.sites.find_one({"_id": key(org, site_id)}, {"_id": 1}, session=self.s)
                    or self.db.members.find_one({"organization_id": org, "site_id": site_id}, {"_id": 1}, session=self.s)
                    or self.db.leaders.find_one({"organization_id": org, "site_ids": site_id}, {"_id": 1},
                                                session=self.s))

    def site_time_zone(self, org: str, site_id: str) -> str | None:
        doc = self.db.sites.find_one({"_id": key(org, site_id)}, {"time_zone": 1}, session=self.s)
        return doc and doc.get("time_zone")

    def member(self, org: str, member_id: str) -> dict | None:
        return self.db.members.find_one({"_id": key(org, member_id)}, session=self.s)

    def members(self, org: str, member_ids: list[str]) -> list[dict]:
        return find_in(self.db.members, "_id", [key(org, m) for m in member_ids], session=self.s)

    def save_member(self, org: str, member_id: str, fields: dict) -> dict:
        self.db.members.update_one({"_id": key(org, member_id)},
                                   {"$set": {"organization_id": org, "member_id": member_id, **fields}},
                                   upsert=True, session=self.s)
        return self.member(org, member_id)

    def delete_member(self, org: str, member_id: str) -> None:
        self.db.members.delete_one({"_id": key(org, member_id)}, session=self.s)
        self.db.waitlist.delete_one({"_id": key(org, member_id)}, session=self.s)
        self.db.overrides.delete_many({"organization_id": org, "member_id": member_id}, session=self.s)

    def leader(self, org: str, leader_id: str) -> dict | None:
        return self.db.leaders.find_one({"_id": key(org, leader_id)}, session=self.s)

    def leaders(self, org: str) -> list[dict]:
        return list(self.db.leaders.find({"organization_id": org}, session=self.s).sort("_id", ASCENDING))

    def save_leader(self, org: str, leader_id: str, fields: dict) -> dict:
        self.db.leaders.update_one({"_id": key(org, leader_id)},
                                   {"$set": {"organization_id": org, "leader_id": leader_id, **fields},
                                    "$setOnInsert": {"open_count": 0}},
                                   upsert=True, session=self.s)
        return self.leader(org, leader_id)

    def add_to_leader_load(self, org: str, leader_id: str, delta: int) -> None:
        self.db.leaders.update_one({"_id": key(org, leader_id)}, {"$inc": {"open_count": delta}}, session=self.s)

    # -- matches ---------------------------------------------------------------------------------
    def open_match(self, org: str, member_id: str) -> dict | None:
        return self.db.matches.find_one({"open_key": key(org, member_id)}, session=self.s)

    def members_with_open_match(self, org: str, member_ids: list[str]) -> set[str]:
        return {d["member_id"] for d in find_in(self.db.matches, "open_key", [key(org, m) for m in member_ids],
                                                projection={"member_id": 1}, session=self.s)}

    def write_proposals(self, org: str, matches: list[dict]) -> None:
        """A batch run's proposals in a few writes: the matches, the leaders' loads, the waitlist."""
        if not matches:
            return
        self.db.matches.insert_many(matches, ordered=True, session=self.s)
        loads: dict[str, int] = {}
        for match in matches:
            loads[match["leader_id"]] = loads.get(match["leader_id"], 0) + 1
        self.db.leaders.bulk_write([UpdateOne({"_id": key(org, leader)}, {"$inc": {"open_count": n}})
                                    for leader, n in loads.items()], ordered=True, session=self.s)
        self.db.waitlist.bulk_write([DeleteOne({"_id": key(org, m["member_id"])}) for m in matches], ordered=False,
                                    session=self.s)  # by _id each: the embedded database's $in is quadratic

    def open_matches_of_leader(self, org: str, leader_id: str) -> list[dict]:
        return list(self.db.matches.find({"organization_id": org, "leader_id": leader_id,
                                          "status": {"$in": list(model.OPEN_STATUSES)}}, session=self.s))

    def match(self, org: str, match_id: str) -> dict | None:
        return self.db.matches.find_one({"_id": match_id, "organization_id": org}, session=self.s)

    def match_by_id(self, match_id: str) -> dict | None:
        return self.db.matches.find_one({"_id": match_id}, session=self.s)

    def move_match_to_site(self, doc: dict, site_id: str) -> None:
        self.db.matches.update_one({"_id": doc["_id"]}, {"$set": {"site_id": site_id}, "$inc": {"version": 1}},
                                   session=self.s)

    def insert_match(self, doc: dict) -> None:
        self.db.matches.insert_one(doc, session=self.s)

    def update_match(self, doc: dict, changes: dict, *, close: bool = False, history: dict | None = None) -> dict:
        """Change a match from the state it was read in (a concurrent change makes this fail and retry)."""
        update: dict = {"$set": changes, "$inc": {"version": 1}}
        if close:
            update["$unset"] = {"open_key": ""}
        if history:
            update["$push"] = {"history": history}
        result = self.db.matches.update_one({"_id": doc["_id"], "version": doc.get("version", 0)}, update,
                                            session=self.s)
        if result.modified_count != 1:
            raise model.TransitionError("the match changed meanwhile; read it again")
        return self.db.matches.find_one({"_id": doc["_id"]}, session=self.s)

    def expired_proposals(self, now: datetime, limit: int = 200) -> list[dict]:
        return list(self.db.matches.find({"status": model.PROPOSED, "expires_at": {"$lte": now}},
                                         session=self.s).limit(limit))

    def list_matches(self, org: str, filters: dict, skip: int, limit: int) -> tuple[list[dict], int]:
        query = {"organization_id": org, **filters}
        total = self.db.matches.count_documents(query, session=self.s)
        items = list(self.db.matches.find(query, session=self.s).sort([("proposed_at", DESCENDING), ("_id", ASCENDING)])
                     .skip(skip).limit(limit))
        return items, total

    def members_without_open_match(self, org: str, site_id: str | None) -> list[dict]:
        query: dict = {"organization_id": org}
        if site_id:
            query["site_id"] = site_id
        open_members = {d["member_id"] for d in self.db.matches.find(
            {"organization_id": org, "status": {"$in": list(model.OPEN_STATUSES)}}, {"member_id": 1}, session=self.s)}
        return [d for d in self.db.members.find(query, session=self.s) if d["member_id"] not in open_members]

    # -- overrides and exclusions ----------------------------------------------------------------
    def add_override(self, doc: dict) -> None:
        self.db.overrides.insert_one(doc, session=self.s)

    def overrides(self, org: str, member_id: str | None = None, kinds: tuple[str, ...] | None = None) -> list[dict]:
        query: dict = {"organization_id": org, "active": True}
        if member_id:
            query["member_id"] = member_id
        if kinds:
            query["kind"] = {"$in": list(kinds)}
        return list(self.db.overrides.find(query, session=self.s).sort("at", ASCENDING))

    def excluded_leaders(self, org: str, member_ids: list[str] | None = None) -> dict[str, frozenset[str]]:
        query: dict = {"organization_id": org, "active": True, "kind": {"$ne": "pin"}}
        projection = {"member_id": 1, "leader_id": 1}
        docs = (self.db.overrides.find(query, projection, session=self.s) if member_ids is None
                else find_in(self.db.overrides, "member_id", member_ids, query=query, projection=projection, session=self.s))
        found: dict[str, set[str]] = {}
        for doc in docs:
            found.setdefault(doc["member_id"], set()).add(doc["leader_id"])
        return {m: frozenset(ls) for m, ls in found.items()}

    def override(self, org: str, override_id: str) -> dict | None:
        return self.db.overrides.find_one({"_id": override_id, "organization_id": org, "active": True}, session=self.s)

    def active_override(self, org: str, member_id: str, leader_id: str, kind: str) -> dict | None:
        return self.db.overrides.find_one({"organization_id": org, "member_id": member_id, "leader_id": leader_id,
                                           "kind": kind, "active": True}, sort=[("at", DESCENDING)], session=self.s)

    def link_exclusions(self, match: dict, override_id: str) -> None:
        """The exclusion recorded when an override ended a match is the override's doing: lifted with it."""
        self.db.overrides.update_many({"organization_id": match["organization_id"], "member_id": match["member_id"],
                                       "match_id": match["_id"], "kind": "ended_coordinator", "active": True},
                                      {"$set": {"caused_by_override": override_id}}, session=self.s)

    def lift_override(self, doc: dict, fields: dict) -> bool:
        """Lift an active override, and the exclusions it caused (kept, inactive, with who lifted them and when);
        False if it was lifted meanwhile."""
        result = self.db.overrides.update_one({"_id": doc["_id"], "active": True}, {"$set": {"active": False, **fields}},
                                              session=self.s)
        if result.modified_count != 1:
            return False
        self.db.overrides.update_many({"organization_id": doc["organization_id"], "member_id": doc["member_id"],
                                       "caused_by_override": doc["_id"], "active": True}, {"$set": {"active": False, **fields}}, session=self.s)
        return True

    def pinned_leader(self, org: str, member_id: str) -> str | None:
        doc = self.db.overrides.find_one({"organization_id": org, "member_id": member_id, "kind": "pin", "active": True},
                                         sort=[("at", DESCENDING)], session=self.s)
        return doc and doc["leader_id"]

    def deactivate_pins(self, org: str, member_id: str) -> None:
        self.db.overrides.update_many({"organization_id": org, "member_id": member_id, "kind": "pin", "active": True},
                                      {"$set": {"active": False}}, session=self.s)

    # -- waitlist --------------------------------------------------------------------------------
    def waitlist_entry(self, org: str, member_id: str) -> dict | None:
        return self.db.waitlist.find_one({"_id": key(org, member_id)}, session=self.s)

    def put_on_waitlist(self, org: str, member_id: str, site_id: str, reason: str, codes: list[str], now: datetime) -> dict:
        self.db.waitlist.update_one(
            {"_id": key(org, member_id)},
            {"$set": {"organization_id": org, "member_id": member_id, "site_id": site_id, "reason": reason,
                      "reason_codes": codes, "checked_at": now},
             "$setOnInsert": {"since": now}},
            upsert=True, session=self.s)
        return self.waitlist_entry(org, member_id)

    def remove_from_waitlist(self, org: str, member_id: str) -> None:
        self.db.waitlist.delete_one({"_id": key(org, member_id)}, session=self.s)

    def waitlisted_member_ids(self, org: str) -> list[str]:
        return [d["member_id"] for d in self.db.waitlist.find({"organization_id": org}, {"member_id": 1},
                                                               session=self.s).sort("since", ASCENDING)]

    def list_waitlist(self, org: str, sites: list[str] | None, skip: int, limit: int) -> tuple[list[dict], int]:
        query: dict = {"organization_id": org}
        if sites is not None:
            query["site_id"] = {"$in": sites}
        total = self.db.waitlist.count_documents(query, session=self.s)
        return list(self.db.waitlist.find(query, session=self.s).sort("since", ASCENDING).skip(skip).limit(limit)), total

    def organizations_with_unalerted_waits(self) -> list[str]:
        return self.db.waitlist.distinct("organization_id", {"alerted_at": None}, session=self.s)

    def waiting_too_long(self, org: str, before: datetime, limit: int = 500) -> list[dict]:
        return list(self.db.waitlist.find({"organization_id": org, "since": {"$lte": before}, "alerted_at": None},
                                          session=self.s).limit(limit))

    def leaders_with_lapsed_certification(self, today: datetime) -> list[dict]:
        return list(self.db.leaders.find({"certified_until": {"$lt": today}, "open_count": {"$gt": 0}}, session=self.s))

    def members_with_lapsed_consent(self, now: datetime) -> list[dict]:
        return list(self.db.members.find({"matching_consent_expires_at": {"$lte": now}}, session=self.s))

    def mark_alerted(self, entry: dict, now: datetime) -> bool:
        result = self.db.waitlist.update_one({"_id": entry["_id"], "alerted_at": None}, {"$set": {"alerted_at": now}},
                                             session=self.s)
        return result.modified_count == 1

    # -- organization settings -------------------------------------------------------------------
    def org_settings(self, org: str) -> dict:
        return self.db.org_settings.find_one({"_id": org}, session=self.s) or {"_id": org, "weights": {}, "version": 0}

    def save_org_settings(self, org: str, fields: dict, expected_version: int) -> dict:
        result = self.db.org_settings.update_one(
            {"_id": org, "version": expected_version}, {"$set": fields, "$inc": {"version": 1}},
            upsert=expected_version == 0, session=self.s)
        if result.matched_count == 0 and result.upserted_id is None:
            raise model.TransitionError("the settings changed meanwhile; read them again")
        return self.org_settings(org)

    # -- batch runs ------------------------------------------------------------------------------
    def insert_batch_run(self, doc: dict) -> None:
        self.db.batch_runs.insert_one(doc, session=self.s)

    def batch_run(self, org: str, run_id: str) -> dict | None:
        return self.db.batch_runs.find_one({"_id": run_id, "organization_id": org}, session=self.s)

    def list_batch_runs(self, org: str, skip: int, limit: int) -> tuple[list[dict], int]:
        query = {"organization_id": org}
        total = self.db.batch_runs.count_documents(query, session=self.s)
        return list(self.db.batch_runs.find(query, {"unmatched": 0}, session=self.s)
                    .sort("created_at", DESCENDING).skip(skip).limit(limit)), total

    def claim_batch_run(self, now: datetime, owner: str) -> dict | None:
        return self.db.batch_runs.find_one_and_update(
            {"status": "queued"}, {"$set": {"status": "running", "started_at": now, "owner": owner}},
            sort=[("created_at", ASCENDING)], return_document=True, session=self.s)

    def finish_batch_run(self, run_id: str, fields: dict) -> None:
        self.db.batch_runs.update_one({"_id": run_id}, {"$set": fields}, session=self.s)

    def stale_running_runs(self, before: datetime) -> None:
        self.db.batch_runs.update_many({"status": "running", "started_at": {"$lte": before}},
                                       {"$set": {"status": "queued"}}, session=self.s)

    def audit(self, entry: dict) -> None:
        record(self.db, entry, session=self.s)

    def erase_member_history(self, org: str, member_id: str) -> None:
        """Erasure: free-text reasons go; ids (pseudonymous) stay so leaders' history still adds up."""
        self.db.matches.update_many({"organization_id": org, "member_id": member_id},
                                    {"$set": {"member_erased": True, "history": [], "decline_reason": None,
                                              "end_reason": None}}, session=self.s)


class Repository:
    def __init__(self, client: MongoClient, db: Database):
        self.client, self.db = client, db

    def transaction(self, work):
        """Run ``work(uow)`` in one transaction; events emitted on ``uow`` go to the outbox with it."""
        return run_in_transaction(self.client, self.db, work, source=SOURCE)

    def reads(self) -> Store:
        return Store(self.db)


def to_dt(value: date | None) -> datetime | None:
    return _date_to_dt(value)

