"""The only module of the reporting service that touches MongoDB (``$`` operators and pymongo live here).

Collections (every document carries ``organization_id``; no id of a person is stored anywhere):
  members         per-member facts (model.new_member), ``_id`` "<org>:<pseudonym>" (a keyed digest of the
                  member id, model.pseudonym); after erasure "<org>:anon:<random>" with no pseudonym
  leaders         per-leader status history, ``_id`` "<org>:<pseudonym>"
  meetings        meeting series: name and site only (never facilitators or registrants)
  messages        one per delivery outcome or unsubscribe: channel, outcome, time, and the recipient's
                  pseudonym (dropped at the recipient's erasure) to place it at the recipient's site
  erased          markers of erased members (model.erasure_marker): late events about them are dropped
  audit_log       who pulled which report (kept by ``rebuild``: it is not built from events)
"""
from __future__ import annotations

import uuid

from pymongo import ASCENDING
from pymongo.database import Database

from shared import repository as base
from shared.repository import site_scope

from reporting import model

SOURCE = "/recoverynet/reporting"
# what rebuild empties (token_revocations too: TokensRevoked is replayed like any other event)
DERIVED = ("members", "leaders", "meetings", "messages", "erased", "token_revocations", "inbox")

MEMBER_FIELDS = {"_id": 0, "organization_id": 0, "pseudonym": 0, "site_at": 0, "profile_at": 0}


def ensure_indexes(db: Database) -> None:
    Store.ensure_collections(db)
    db.members.create_index([("organization_id", ASCENDING), ("site_id", ASCENDING)], name="org_site")
    db.leaders.create_index([("organization_id", ASCENDING)], name="org")
    db.meetings.create_index([("organization_id", ASCENDING)], name="org")
    db.messages.create_index([("organization_id", ASCENDING), ("at", ASCENDING)], name="org_at")
    db.messages.create_index([("recipient", ASCENDING)], name="recipient", sparse=True)


class Store(base.Store):
    collections = ("members", "leaders", "meetings", "messages", "erased", "audit_log")

    # -- writes (handlers) ------------------------------------------------------------------------
    def is_erased(self, marker: str) -> bool:
        return self.find_one("erased", {"_id": marker}) is not None

    def member(self, org: str, pseudonym: str) -> dict | None:
        return self.find_one("members", {"_id": f"{org}:{pseudonym}"})

    def save_member(self, org: str, pseudonym: str, doc: dict) -> None:
        self.db.members.replace_one({"_id": f"{org}:{pseudonym}"},
                                    {**doc, "_id": f"{org}:{pseudonym}", "organization_id": org, "pseudonym": pseudonym},
                                    upsert=True, session=self.session)

    def leader(self, org: str, pseudonym: str) -> dict | None:
        return self.find_one("leaders", {"_id": f"{org}:{pseudonym}"})

    def save_leader(self, org: str, pseudonym: str, doc: dict) -> None:
        self.db.leaders.replace_one({"_id": f"{org}:{pseudonym}"},
                                    {**doc, "_id": f"{org}:{pseudonym}", "organization_id": org}, upsert=True,
                                    session=self.session)

    def save_meeting(self, org: str, meeting_id: str, fields: dict) -> None:
        self.upsert("meetings", f"{org}:{meeting_id}", {"organization_id": org, **fields})

    def add_message(self, org: str, event_id: str, fields: dict) -> None:
        self.upsert("messages", event_id, {"organization_id": org, **fields})

    def erase_member(self, org: str, pseudonym: str, marker: str) -> None:
        """Keep the member's facts as an anonymous record (a random id, no pseudonym); their messages keep
        only the site; a marker drops events about them that arrive later."""
        doc = self.member(org, pseudonym)
        site = doc.get("site_id") if doc else None
        if doc is not None:
            self.db.members.delete_one({"_id": doc["_id"]}, session=self.session)
            anon = model.anonymous(doc)
            self.db.members.insert_one({**anon, "_id": f"{org}:anon:{uuid.uuid4().hex}", "erased": True},
                                       session=self.session)
        self.db.messages.update_many({"organization_id": org, "recipient": pseudonym},
                                     {"$set": {"site_id": site}, "$unset": {"recipient": ""}}, session=self.session)
        self.upsert("erased", marker, {"organization_id": org})

    def forget_subjects(self, org: str, subjects: list[str]) -> None:
        """Drop the sign-out records (shared.revocations) of an erased person: their token subject names
        them. Harmless for access: reports answer only admins and coordinators, never a member's token."""
        self.db.token_revocations.delete_many({"_id": {"$in": subjects}, "organization_id": org},
                                              session=self.session)

    # -- reads (reports) --------------------------------------------------------------------------
    def report_inputs(self, org: str, site_filter: list[str] | None, site_id: str | None,
                      start=None, end=None):
        """(members, leaders, messages, meeting names) of the organization inside the caller's sites. Messages:
        only those of the range (indexed by organization and time), only the fields the figures count."""
        scope = site_scope("site_id", site_filter, site_id)
        members = self.find("members", {"organization_id": org, **scope}, projection=MEMBER_FIELDS)
        leader_query: dict = {"organization_id": org}
        if scope:
            leader_query["site_ids"] = scope["site_id"]
        leaders = self.find("leaders", leader_query, projection={"statuses": 1})
        match: dict = {"organization_id": org}
        if start is not None:
            match["at"] = {"$gte": start, "$lt": end}
        messages = self.find("messages", match, projection={"_id": 0, "at": 1, "channel": 1, "outcome": 1,
                                                           "site_id": 1, "recipient": 1})
        if scope:
            # a message counts at its recipient's site now (members only; an erased recipient's keeps the site).
            # Filtered here: an $or over every recipient of the sites is far slower on the embedded server.
            allowed = set(scope["site_id"]["$in"]) if isinstance(scope["site_id"], dict) else {scope["site_id"]}
            sites = {d["pseudonym"]: d.get("site_id") for d in
                     self.find("members", {"organization_id": org, "pseudonym": {"$exists": True}},
                               projection={"site_id": 1, "pseudonym": 1, "_id": 0})}
            messages = [m for m in messages if (m.get("site_id") or sites.get(m.get("recipient"))) in allowed]
        names = {d["_id"].split(":", 1)[1]: d.get("name") or "a meeting"
                 for d in self.find("meetings", {"organization_id": org, **scope}, projection={"name": 1})}
        return members, leaders, messages, names

    def drop_derived(self) -> None:
        for name in DERIVED:
            self.db[name].drop()
