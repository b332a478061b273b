"""The only module of the reporting service that touches MongoDB (``$`` operators and pymongo live here).

Collections (every document carries ``organization_id``; no id of a person is stored anywhere):
  members         per-member facts (model.new_member), ``_id`` "<org>:<pseudonym>" (a keyed digest of the
                  member id, model.pseudonym); after erasure "<org>:anon:<random>" with no pseudonym
  leaders         per-leader status history, ``_id`` "<org>:<pseudonym>"
  meetings        meeting series: name and site only (never facilitators or registrants)
  monthly         the aggregates the reports read (reporting.aggregates), a few per organization, site and
                  month (aggregates.family): ``j`` the JSON text of {metric: {rest of key: count}}
                  (aggregates.nest), keys of days, codes and values, never of a person; ``_id`` "<org>:<site or ->:<YYYY-MM>:<family>"
                  (``level`` "d") and, the same rolled to the month (aggregates.month_totals, ``level`` "m"),
                  "<org>:<site or ->:<YYYY-MM>:m:<family>"
  timelines       one per organization and site: the as-of intervals (active, flag open, waiting), ``j``
                  as above, ``_id`` "<org>:<site or ->"
  erased          markers of erased members (model.erasure_marker): late events about them are dropped
  audit_log       who pulled which report (kept by ``rebuild``: it is not built from events)
"""
from __future__ import annotations

import json
import uuid

from pymongo import ASCENDING, ReplaceOne
from pymongo.database import Database

from shared import repository as base
from shared.repository import site_scope

from reporting import aggregates, model

SOURCE = "/recoverynet/reporting"
# what rebuild empties (token_revocations too: TokensRevoked is replayed like any other event)
# ("messages": the per-message documents of before the aggregates; dropped by a rebuild)
DERIVED = ("members", "leaders", "meetings", "monthly", "timelines", "messages", "erased", "token_revocations",
           "inbox")

def ensure_indexes(db: Database) -> None:
    Store.ensure_collections(db)
    db.members.create_index([("organization_id", ASCENDING), ("site_id", ASCENDING)], name="org_site")
    db.leaders.create_index([("organization_id", ASCENDING)], name="org")
    db.meetings.create_index([("organization_id", ASCENDING)], name="org")
    db.monthly.create_index([("organization_id", ASCENDING), ("level", ASCENDING), ("month", ASCENDING)],
                            name="org_level_month")
    db.timelines.create_index([("organization_id", ASCENDING)], name="org")


class Store(base.Store):
    collections = ("members", "leaders", "meetings", "monthly", "timelines", "erased", "audit_log")

    # -- writes (handlers) ------------------------------------------------------------------------
    def is_erased(self, marker: str) -> bool:
        return self.find_one("erased", {"_id": marker}) is not None

    def member(self, org: str, pseudonym: str) -> dict | None:
        return self.find_one("members", {"_id": f"{org}:{pseudonym}"})

    def save_member(self, org: str, pseudonym: str, doc: dict) -> None:
        self.db.members.replace_one({"_id": f"{org}:{pseudonym}"},
                                    {**doc, "_id": f"{org}:{pseudonym}", "organization_id": org, "pseudonym": pseudonym},
                                    upsert=True, session=self.session)

    def members_of(self, org: str, pseudonyms: list[str]) -> dict[str, dict]:
        """{pseudonym: facts} of those known, in one query."""
        return {d["pseudonym"]: d for d in self.find_in("members", "_id", [f"{org}:{p}" for p in pseudonyms])}

    def save_members(self, org: str, docs: dict[str, dict]) -> None:
        """Write several members' facts ({pseudonym: facts}) in one request."""
        if docs:
            self.db.members.bulk_write([ReplaceOne({"_id": f"{org}:{p}"}, {**doc, "_id": f"{org}:{p}", "organization_id": org,
                                                                        "pseudonym": p}, upsert=True)
                                        for p, doc in docs.items()], ordered=False, session=self.session)

    def erased_among(self, markers: list[str]) -> set[str]:
        return {d["_id"] for d in self.find_in("erased", "_id", markers, projection={"_id": 1})}

    def leader(self, org: str, pseudonym: str) -> dict | None:
        return self.find_one("leaders", {"_id": f"{org}:{pseudonym}"})

    def save_leader(self, org: str, pseudonym: str, doc: dict) -> None:
        self.db.leaders.replace_one({"_id": f"{org}:{pseudonym}"},
                                    {**doc, "_id": f"{org}:{pseudonym}", "organization_id": org}, upsert=True,
                                    session=self.session)

    def save_meeting(self, org: str, meeting_id: str, fields: dict) -> None:
        self.upsert("meetings", f"{org}:{meeting_id}", {"organization_id": org, **fields})

    def add_counts(self, org: str, diff: dict) -> None:
        """Add ``diff`` ((site, month or None, key) -> n, aggregates.contribution's shape) to the aggregates.
        Each document keeps its counters as one JSON text (``j``), read and rewritten here in the event's
        transaction: on the embedded database a document's many fields cost far more to update and to read
        than one text of the same counters (measured: bench/README.md, reporting)."""
        docs: dict[str, dict[str, tuple]] = {"monthly": {}, "timelines": {}}
        for (site, month, key), n in diff.items():
            if not n:
                continue
            if month is None:
                coll, _id = "timelines", f"{org}:{site or '-'}"
            else:
                coll, _id = "monthly", f"{org}:{site or '-'}:{month}:{aggregates.family(key)}"
            docs[coll].setdefault(_id, (site, month, {}, "d"))[2][key] = n
        # the month-level totals (aggregates.month_totals), in the same documents' query and write
        for (site, month, key), n in aggregates.month_totals(diff).items():
            _id = f"{org}:{site or '-'}:{month}:m:{aggregates.family(key)}"
            docs["monthly"].setdefault(_id, (site, month, {}, "m"))[2][key] = n
        for coll, wanted in docs.items():
            if not wanted:
                continue
            found = {d["_id"]: json.loads(d["j"]) for d in self.find_in(coll, "_id", list(wanted), projection={"j": 1})}
            writes = []
            for _id, (site, month, inc, level) in wanted.items():
                counts = found.get(_id, {})  # {metric: {rest of the key: n}} (aggregates.nest)
                for metric, rests in aggregates.nest(inc).items():
                    row = counts.setdefault(metric, {})
                    for rest, n in rests.items():
                        value = row.get(rest, 0) + n
                        if value:
                            row[rest] = value
                        else:
                            row.pop(rest, None)
                    if not row:
                        del counts[metric]
                doc = {"_id": _id, "organization_id": org, "site_id": site,
                       "j": json.dumps(counts, separators=(",", ":"))}
                if month is not None:
                    doc["month"], doc["level"] = month, level
                writes.append(ReplaceOne({"_id": _id}, doc, upsert=True))
            self.db[coll].bulk_write(writes, ordered=False, session=self.session)

    def erase_member(self, org: str, pseudonym: str, marker: str) -> None:
        """Keep the member's facts as an anonymous record (a random id, no pseudonym; the aggregates it added
        stay as they are: counts only); a marker drops events about them that arrive later."""
        doc = self.member(org, pseudonym)
        if doc is not None:
            self.db.members.delete_one({"_id": doc["_id"]}, session=self.session)
            anon = model.anonymous(doc)
            self.db.members.insert_one({**anon, "_id": f"{org}:anon:{uuid.uuid4().hex}", "erased": True},
                                       session=self.session)
        self.upsert("erased", marker, {"organization_id": org})

    def forget_subjects(self, org: str, subjects: list[str]) -> None:
        """Drop the sign-out records (shared.revocations) of an erased person: their token subject names
        them. Harmless for access: reports answer only admins and coordinators, never a member's token."""
        self.delete_many("token_revocations", {"_id": {"$in": subjects}, "organization_id": org})

    # -- reads (reports) --------------------------------------------------------------------------
    def report_inputs(self, org: str, site_filter: list[str] | None, site_id: str | None, whole: list[str],
                      part: list[str] = ()):
        """(monthly aggregates: month-level totals of the months ``whole``, day-level counters of the months
        ``part``; the sites' timelines, leaders, meeting names) of the organization inside the caller's
        sites: O(sites x months) documents, whatever the members."""
        scope = site_scope("site_id", site_filter, site_id)
        monthly = []
        for level, months in (("m", list(whole)), ("d", list(part))):
            if months:
                monthly += [{"c": json.loads(d["j"])} for d in
                            self.find("monthly", {"organization_id": org, "month": {"$in": months}, "level": level,
                                                  **scope}, projection={"j": 1})]
        timelines = [{"c": json.loads(d["j"])} for d in
                     self.find("timelines", {"organization_id": org, **scope}, projection={"j": 1})]
        leader_query: dict = {"organization_id": org}
        if scope:
            leader_query["site_ids"] = scope["site_id"]
        leaders = self.find("leaders", leader_query, projection={"statuses": 1})
        names = {d["_id"].split(":", 1)[1]: d.get("name") or "a meeting"
                 for d in self.find("meetings", {"organization_id": org, **scope}, projection={"name": 1})}
        return monthly, timelines, leaders, names

    def drop_derived(self) -> None:
        for name in DERIVED:
            self.db[name].drop()
