"""The only module of the matching service that touches MongoDB (``$`` operators and pymongo live here).

Collections (every document carries ``organization_id``; read-model ids, waitlist ids and a match's
``open_key`` are ``read_model_key(org, id)``, "<org>:<id>"):
  members, leaders, sites   the read model built from intake's events (only what matching needs)
  matches                   proposals and matches; ``open_key`` (unique, sparse) = one open match per member
  waitlist                  members nobody can take now, with the reason in words
  overrides                 coordinator pins/blocks, and leaders a member declined / asked to change
  org_settings              per-organization weights and timings
  batch_runs                batch assignment runs and their results

``Store`` is the service's named queries on the shared base (``Store.of(uow)`` in a unit of work,
``Repository.reader()`` for plain reads); the entry points' ``Repository`` is ``shared.repository.Repository``.
"""
from __future__ import annotations

from datetime import date, datetime, time, timezone

from pymongo import ASCENDING, DESCENDING, DeleteOne, UpdateOne
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared import repository as base
from shared.errors import Conflict
from shared.repository import read_model_key as key

from matching import model

SOURCE = "/recoverynet/matching"


def ensure_indexes(db: Database) -> None:
    """Collections and indexes of this service (run by deploy set-up and by tests)."""
    Store.ensure_collections(db)
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
    # Scoped lists name the caller's sites: the embedded database (SecantusDB) uses an index only when it holds
    # every field a query names, so these hold site_id (or status) too (bench/README.md, console).
    db.waitlist.create_index([("organization_id", ASCENDING), ("site_id", ASCENDING)], name="org_site")
    db.matches.create_index([("organization_id", ASCENDING), ("status", ASCENDING), ("site_id", ASCENDING)], name="org_status_site")
    db.matches.create_index([("organization_id", ASCENDING), ("member_id", ASCENDING), ("site_id", ASCENDING)], name="org_member_site")
    db.batch_runs.create_index([("organization_id", ASCENDING), ("site_id", ASCENDING)], name="org_site")


def to_dt(value: date | None) -> datetime | None:
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
        certified=bool(doc.get("certified")), certified_until=until.date() if isinstance(until, datetime) else until,
        stretched=bool(doc.get("stretched")))


class Store(base.Store):
    """Matching's reads and writes of one unit of work (or of a plain read)."""

    collections = ("members", "leaders", "sites", "matches", "waitlist", "overrides", "org_settings", "batch_runs")

    # -- read model ------------------------------------------------------------------------------
    def upsert_site(self, org: str, site_id: str, fields: dict) -> None:
        self.forget(("site_facts", org))
        self.upsert("sites", key(org, site_id), {"organization_id": org, "site_id": site_id, **fields})

    def site_facts(self, org: str) -> tuple[frozenset[str], dict[str, str]]:
        """In one read (once per unit of work): the sites that meet only virtually, and every known site's
        name (for reasons in words)."""
        def read():
            docs = self.find("sites", {"organization_id": org}, projection={"site_id": 1, "name": 1, "virtual_only": 1})
            return (frozenset(d["site_id"] for d in docs if d.get("virtual_only")),
                    {d["site_id"]: d["name"] for d in docs if d.get("name")})
        return self.remembered(("site_facts", org), read)

    def site_known(self, org: str, site_id: str) -> bool:
        """One of the organization's sites: seen in intake's SiteCreated/SiteUpdated, or named by one of the
        organization's members or leaders (intake checked it there; their events may arrive first)."""
        only_id = {"_id": 1}
        return bool(self.find_one("sites", {"_id": key(org, site_id)}, only_id)
                    or self.find_one("members", {"organization_id": org, "site_id": site_id}, only_id)
                    or self.find_one("leaders", {"organization_id": org, "site_ids": site_id}, only_id))

    def site_time_zone(self, org: str, site_id: str) -> str | None:
        doc = self.find_one("sites", {"_id": key(org, site_id)}, {"time_zone": 1})
        return doc and doc.get("time_zone")

    def member(self, org: str, member_id: str) -> dict | None:
        """Once per unit of work: a registration's consent events, often in its consumer batch, read it again."""
        return self.remembered(("member", org, member_id), lambda: self.find_one("members", {"_id": key(org, member_id)}))

    def members(self, org: str, member_ids: list[str]) -> list[dict]:
        return self.find_in("members", "_id", [key(org, m) for m in member_ids])

    def save_member(self, org: str, member_id: str, fields: dict) -> dict:
        self.forget(("member", org, member_id))
        self.upsert("members", key(org, member_id), {"organization_id": org, "member_id": member_id, **fields})
        return self.member(org, member_id)

    def delete_member(self, org: str, member_id: str) -> None:
        self.remember(("member", org, member_id), None)
        self.db.members.delete_one({"_id": key(org, member_id)}, session=self.session)
        self.db.waitlist.delete_one({"_id": key(org, member_id)}, session=self.session)
        self.delete_many("overrides", {"organization_id": org, "member_id": member_id})

    def leader(self, org: str, leader_id: str) -> dict | None:
        return self.find_one("leaders", {"_id": key(org, leader_id)})

    def leaders(self, org: str) -> list[dict]:
        return self.find("leaders", {"organization_id": org}, sort=[("_id", ASCENDING)])

    def save_leader(self, org: str, leader_id: str, fields: dict) -> dict:
        self.upsert("leaders", key(org, leader_id), {"organization_id": org, "leader_id": leader_id, **fields},
                    on_insert={"open_count": 0})
        return self.leader(org, leader_id)

    def add_to_leader_load(self, org: str, leader_id: str, delta: int) -> None:
        self.db.leaders.update_one({"_id": key(org, leader_id)}, {"$inc": {"open_count": delta}},
                                   session=self.session)

    def leaders_with_lapsed_certification(self, today: datetime) -> list[dict]:
        return self.find("leaders", {"certified_until": {"$lt": today}, "open_count": {"$gt": 0}})

    def members_with_lapsed_consent(self, now: datetime) -> list[dict]:
        return self.find("members", {"matching_consent_expires_at": {"$lte": now}})

    # -- matches ---------------------------------------------------------------------------------
    def open_match(self, org: str, member_id: str) -> dict | None:
        return self.find_one("matches", {"open_key": key(org, member_id)})

    def matches_of_member(self, org: str, member_id: str) -> list[dict]:
        """Every match of one member, open or closed, newest first (the member's export)."""
        return self.find("matches", {"organization_id": org, "member_id": member_id},
                         sort=[("proposed_at", DESCENDING), ("_id", ASCENDING)])

    def members_with_open_match(self, org: str, member_ids: list[str]) -> set[str]:
        return {d["member_id"] for d in self.find_in("matches", "open_key", [key(org, m) for m in member_ids],
                                                     projection={"member_id": 1})}

    def insert_match(self, doc: dict) -> None:
        """A new proposal; a member can hold one open match only (the ``open_key`` unique index): a second one
        written at the same moment is a conflict."""
        doc = {**doc, "open_key": key(doc["organization_id"], doc["member_id"])}
        try:
            self.db.matches.insert_one(doc, session=self.session)
        except DuplicateKeyError as exc:
            if exc.has_error_label("TransientTransactionError"):
                raise  # the transaction runs again
            raise Conflict("The member's match changed at the same moment; read it again and retry.") from None

    def write_proposals(self, org: str, matches: list[dict]) -> None:
        """A batch run's proposals in a few writes: the matches, the leaders' loads, the waitlist."""
        if not matches:
            return
        self.db.matches.insert_many([{**m, "open_key": key(org, m["member_id"])} for m in matches], ordered=True,
                                    session=self.session)
        loads: dict[str, int] = {}
        for match in matches:
            loads[match["leader_id"]] = loads.get(match["leader_id"], 0) + 1
        self.db.leaders.bulk_write([UpdateOne({"_id": key(org, leader)}, {"$inc": {"open_count": n}})
                                    for leader, n in loads.items()], ordered=True, session=self.session)
        self.db.waitlist.bulk_write([DeleteOne({"_id": key(org, m["member_id"])}) for m in matches], ordered=False,
                                    session=self.session)  # by _id each: the embedded database's $in is quadratic

    def open_matches_of_leader(self, org: str, leader_id: str) -> list[dict]:
        return self.find("matches", {"organization_id": org, "leader_id": leader_id,
                                     "status": {"$in": list(model.OPEN_STATUSES)}})

    def match(self, org: str, match_id: str) -> dict | None:
        return self.find_one("matches", {"_id": match_id, "organization_id": org})

    def match_by_id(self, match_id: str) -> dict | None:
        return self.find_one("matches", {"_id": match_id})

    def move_match_to_site(self, doc: dict, site_id: str) -> None:
        self.db.matches.update_one({"_id": doc["_id"]}, {"$set": {"site_id": site_id}, "$inc": {"version": 1}},
                                   session=self.session)

    def update_match(self, doc: dict, changes: dict, *, close: bool = False, history: dict | None = None) -> dict:
        """Change a match from the state it was read in (a concurrent change makes this fail and retry)."""
        update: dict = {"$set": changes, "$inc": {"version": 1}}
        if close:
            update["$unset"] = {"open_key": ""}
        if history:
            update["$push"] = {"history": history}
        if not self.update_one("matches", {"_id": doc["_id"], "version": doc.get("version", 0)}, update):
            raise model.TransitionError("the match changed meanwhile; read it again")
        return self.find_one("matches", {"_id": doc["_id"]})

    def expired_proposals(self, now: datetime, limit: int = 200) -> list[dict]:
        return self.find("matches", {"status": model.PROPOSED, "expires_at": {"$lte": now}}, limit=limit)

    def list_matches(self, org: str, filters: dict, skip: int, limit: int) -> tuple[list[dict], int]:
        """A page of matches; ``filters`` are field values (and a ``site_scope`` clause)."""
        return self.page("matches", {"organization_id": org, **filters}, skip=skip, limit=limit,
                         sort=[("proposed_at", DESCENDING), ("_id", ASCENDING)])

    def members_without_open_match(self, org: str, site_id: str | None) -> list[dict]:
        query: dict = {"organization_id": org}
        if site_id:
            query["site_id"] = site_id
        open_members = {d["member_id"] for d in self.find(
            "matches", {"organization_id": org, "status": {"$in": list(model.OPEN_STATUSES)}},
            projection={"member_id": 1})}
        return [d for d in self.find("members", query) if d["member_id"] not in open_members]

    def erase_member_history(self, org: str, member_id: str) -> None:
        """Erasure: free-text reasons go; ids (pseudonymous) stay so leaders' history still adds up."""
        self.update_many("matches", {"organization_id": org, "member_id": member_id},
                         {"$set": {"member_erased": True, "history": [], "decline_reason": None, "end_reason": None}})

    # -- overrides and exclusions ----------------------------------------------------------------
    def add_override(self, doc: dict) -> None:
        self.db.overrides.insert_one(doc, session=self.session)

    def overrides(self, org: str, member_id: str | None = None, kinds: tuple[str, ...] | None = None) -> list[dict]:
        query: dict = {"organization_id": org, "active": True}
        if member_id:
            query["member_id"] = member_id
        if kinds:
            query["kind"] = {"$in": list(kinds)}
        return self.find("overrides", query, sort=[("at", ASCENDING)])

    def overrides_of_member(self, org: str, member_id: str) -> list[dict]:
        """Every override concerning one member, in force or lifted (the member's export)."""
        return self.find("overrides", {"organization_id": org, "member_id": member_id}, sort=[("at", ASCENDING)])

    def excluded_leaders(self, org: str, member_ids: list[str] | None = None) -> dict[str, frozenset[str]]:
        query: dict = {"organization_id": org, "active": True, "kind": {"$ne": "pin"}}
        projection = {"member_id": 1, "leader_id": 1}
        docs = (self.find("overrides", query, projection=projection) if member_ids is None
                else self.find_in("overrides", "member_id", member_ids, query=query, projection=projection))
        found: dict[str, set[str]] = {}
        for doc in docs:
            found.setdefault(doc["member_id"], set()).add(doc["leader_id"])
        return {m: frozenset(ls) for m, ls in found.items()}

    def override(self, org: str, override_id: str) -> dict | None:
        return self.find_one("overrides", {"_id": override_id, "organization_id": org, "active": True})

    def active_override(self, org: str, member_id: str, leader_id: str, kind: str) -> dict | None:
        found = self.find("overrides", {"organization_id": org, "member_id": member_id, "leader_id": leader_id,
                                        "kind": kind, "active": True}, sort=[("at", DESCENDING)], limit=1)
        return found[0] if found else None

    def link_exclusions(self, match: dict, override_id: str) -> None:
        """The exclusion recorded when an override ended a match is the override's doing: lifted with it."""
        self.update_many("overrides", {"organization_id": match["organization_id"], "member_id": match["member_id"],
                                       "match_id": match["_id"], "kind": "ended_coordinator", "active": True},
                         {"$set": {"caused_by_override": override_id}})

    def lift_override(self, doc: dict, fields: dict) -> bool:
        """Lift an active override, and the exclusions it caused (kept, inactive, with who lifted them and when);
        False if it was lifted meanwhile."""
        if not self.update_one("overrides", {"_id": doc["_id"], "active": True}, {"$set": {"active": False, **fields}}):
            return False
        self.update_many("overrides", {"organization_id": doc["organization_id"], "member_id": doc["member_id"],
                                       "caused_by_override": doc["_id"], "active": True},
                         {"$set": {"active": False, **fields}})
        return True

    def member_overrides(self, org: str, member_id: str) -> tuple[frozenset[str], str | None]:
        """For one member's proposal, in one read on the (organization, member) index: the leaders excluded
        (as ``excluded_leaders``) and the pinned one (as ``pinned_leader``)."""
        docs = [d for d in self.find("overrides", {"organization_id": org, "member_id": member_id},
                                     projection={"leader_id": 1, "kind": 1, "active": 1, "at": 1}) if d.get("active")]
        pins = sorted((d for d in docs if d["kind"] == "pin"), key=lambda d: d["at"], reverse=True)
        return (frozenset(d["leader_id"] for d in docs if d["kind"] != "pin"),
                pins[0]["leader_id"] if pins else None)

    def pinned_leader(self, org: str, member_id: str) -> str | None:
        doc = self.active_pin(org, member_id)
        return doc and doc["leader_id"]

    def active_pin(self, org: str, member_id: str) -> dict | None:
        found = self.find("overrides", {"organization_id": org, "member_id": member_id, "kind": "pin", "active": True},
                          sort=[("at", DESCENDING)], limit=1)
        return found[0] if found else None

    def deactivate_pins(self, org: str, member_id: str) -> None:
        self.update_many("overrides", {"organization_id": org, "member_id": member_id, "kind": "pin", "active": True},
                         {"$set": {"active": False}})

    # -- waitlist --------------------------------------------------------------------------------
    def waitlist_entry(self, org: str, member_id: str) -> dict | None:
        return self.find_one("waitlist", {"_id": key(org, member_id)})

    def put_on_waitlist(self, org: str, member_id: str, site_id: str, reason: str, codes: list[str],
                        now: datetime) -> dict:
        self.upsert("waitlist", key(org, member_id), {"organization_id": org, "member_id": member_id,
                                                      "site_id": site_id, "reason": reason, "reason_codes": codes,
                                                      "checked_at": now}, on_insert={"since": now})
        return self.waitlist_entry(org, member_id)

    def remove_from_waitlist(self, org: str, member_id: str) -> None:
        self.db.waitlist.delete_one({"_id": key(org, member_id)}, session=self.session)

    def waitlisted_member_ids(self, org: str) -> list[str]:
        return [d["member_id"] for d in self.find("waitlist", {"organization_id": org}, projection={"member_id": 1},
                                                  sort=[("since", ASCENDING)])]

    def list_waitlist(self, org: str, scope: dict, skip: int, limit: int) -> tuple[list[dict], int]:
        """A page of the waitlist, oldest first; ``scope`` is a ``site_scope`` clause."""
        return self.page("waitlist", {"organization_id": org, **scope}, skip=skip, limit=limit,
                         sort=[("since", ASCENDING)])

    def organizations_with_unalerted_waits(self) -> list[str]:
        return self.db.waitlist.distinct("organization_id", {"alerted_at": None}, session=self.session)

    def waiting_too_long(self, org: str, before: datetime, limit: int = 500) -> list[dict]:
        return self.find("waitlist", {"organization_id": org, "since": {"$lte": before}, "alerted_at": None},
                         limit=limit)

    def mark_alerted(self, entry: dict, now: datetime) -> bool:
        return self.update_one("waitlist", {"_id": entry["_id"], "alerted_at": None}, {"$set": {"alerted_at": now}})

    # -- organization settings -------------------------------------------------------------------
    def org_settings(self, org: str) -> dict:
        """Once per unit of work (every proposal of a consumer batch reads them)."""
        return self.remembered(("org_settings", org), lambda: self.find_one("org_settings", {"_id": org})
                               or {"_id": org, "weights": {}, "version": 0})

    def save_org_settings(self, org: str, fields: dict, expected_version: int) -> dict:
        self.forget(("org_settings", org))
        result = self.db.org_settings.update_one(
            {"_id": org, "version": expected_version}, {"$set": fields, "$inc": {"version": 1}},
            upsert=expected_version == 0, session=self.session)
        if result.matched_count == 0 and result.upserted_id is None:
            raise model.TransitionError("the settings changed meanwhile; read them again")
        return self.org_settings(org)

    # -- batch runs ------------------------------------------------------------------------------
    def insert_batch_run(self, doc: dict) -> None:
        self.db.batch_runs.insert_one(doc, session=self.session)

    def batch_run(self, org: str, run_id: str) -> dict | None:
        return self.find_one("batch_runs", {"_id": run_id, "organization_id": org})

    def batch_runs(self, org: str, scope: dict, skip: int, limit: int) -> tuple[list[dict], int]:
        """A page of batch runs, newest first, without their unmatched lists; ``scope`` is a ``site_scope``
        clause."""
        return self.page("batch_runs", {"organization_id": org, **scope}, skip=skip, limit=limit,
                         sort=[("created_at", DESCENDING)], projection={"unmatched": 0})

    def claim_batch_run(self, now: datetime, owner: str) -> dict | None:
        return self.db.batch_runs.find_one_and_update(
            {"status": "queued"}, {"$set": {"status": "running", "started_at": now, "owner": owner}},
            sort=[("created_at", ASCENDING)], return_document=True, session=self.session)

    def finish_batch_run(self, run_id: str, fields: dict) -> None:
        self.db.batch_runs.update_one({"_id": run_id}, {"$set": fields}, session=self.session)

    def requeue_stale_runs(self, before: datetime) -> None:
        self.update_many("batch_runs", {"status": "running", "started_at": {"$lte": before}},
                         {"$set": {"status": "queued"}})
