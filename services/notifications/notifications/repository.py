"""The only module of the notifications service that touches MongoDB; writes state and outbox together.

Collections (every document carries organization_id; every query is scoped by it):
  contacts        the contact directory, from the restricted contacts topic only (_id: person id)
  consents        members' consents in force (_id: member id)
  preferences     per person: channel choices, quiet hours, digest (_id: person id)
  coordinators    site coordinator directory, from CoordinatorAssigned (_id: org|staff id)
  templates       organizations' template overrides (kind, channel, language)
  webhooks        organizations' endpoints (url, secret, event types)
  deliveries      one per (source event, recipient, channel): unique ``key``; the delivery log
  inapp_messages  the in-app inbox (_id: the delivery id)
  digests         the last daily digest per person and channel
  meetings        meeting names and zones (from scheduling's meeting events), to name them in messages
  organizations   organization names (from intake's OrganizationCreated), for the unsubscribe page
  sites           site names (from intake's SiteCreated / SiteUpdated; _id: org|site id), so messages and
                  reasons name a site and the API knows which sites are the organization's
  erased          ids of erased people (nothing else), so later events about them tell nobody
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.database import Database

from shared.audit import record as audit_record
from shared.mongo import ensure_platform_indexes, utcnow
from shared.unit_of_work import UnitOfWork, run_in_transaction

SOURCE = "/recoverynet/notifications"

COLLECTIONS = ("contacts", "consents", "preferences", "coordinators", "templates", "webhooks", "deliveries",
               "inapp_messages", "digests", "meetings", "organizations", "sites", "erased")


def ensure_indexes(db: Database) -> None:
    """Collections and indexes of this service (run by deploy set-up and by tests)."""
    ensure_platform_indexes(db)
    existing = set(db.list_collection_names())
    for name in COLLECTIONS:
        if name not in existing:
            db.create_collection(name)
    db.contacts.create_index([("organization_id", ASCENDING)], name="org")
    db.coordinators.create_index([("organization_id", ASCENDING), ("site_ids", ASCENDING)], name="org_site")
    db.templates.create_index([("organization_id", ASCENDING), ("kind", ASCENDING), ("channel", ASCENDING),
                               ("language", ASCENDING)], name="org_kind_channel_lang", unique=True)
    db.webhooks.create_index([("organization_id", ASCENDING)], name="org")
    # Exactly one delivery per (source event, recipient, channel), whatever redelivers or races.
    db.deliveries.create_index([("key", ASCENDING)], name="idempotency_key", unique=True)
    db.deliveries.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="due")
    db.deliveries.create_index([("organization_id", ASCENDING), ("created_at", DESCENDING)], name="org_log")
    db.deliveries.create_index([("organization_id", ASCENDING), ("recipient_id", ASCENDING)], name="org_recipient")
    db.inapp_messages.create_index([("organization_id", ASCENDING), ("person_id", ASCENDING),
                                    ("created_at", DESCENDING)], name="org_person_time")


def delivery_backlog(db: Database, now: datetime) -> dict:
    """For /metrics: deliveries per waiting/final status, and how late the oldest due one is (seconds),
    so operators see a stuck delivery job or a failing channel."""
    counts = {row["_id"]: row["n"] for row in db.deliveries.aggregate([
        {"$match": {"status": {"$in": ["pending", "held", "digest", "sending", "failed"]}}},
        {"$group": {"_id": "$status", "n": {"$sum": 1}}}])}
    oldest = db.deliveries.find_one({"status": "pending", "next_attempt_at": {"$lte": now}},
                                    sort=[("next_attempt_at", ASCENDING)], projection={"next_attempt_at": 1})
    lateness = (now - oldest["next_attempt_at"]).total_seconds() if oldest else 0.0
    return {"counts": counts, "oldest_due_seconds": max(0.0, lateness)}


def new_id() -> str:
    return uuid.uuid4().hex


class Repository:
    def __init__(self, client: MongoClient, db: Database):
        self.client, self.db = client, db

    def transaction(self, work):
        """Run ``work(uow)`` in one transaction; events emitted on ``uow`` go to the outbox with it."""
        return run_in_transaction(self.client, self.db, work, source=SOURCE)

    # -- directory (written by event handlers, inside the consumer's transaction) -----------------
    @staticmethod
    def save_contact(uow: UnitOfWork, organization_id: str, person_id: str, fields: dict) -> None:
        uow.db.contacts.update_one({"_id": person_id},
                                   {"$set": {**fields, "organization_id": organization_id, "updated_at": utcnow()}},
                                   upsert=True, session=uow.session)

    @staticmethod
    def save_consents(uow: UnitOfWork, organization_id: str, member_id: str, consents: list[dict]) -> None:
        uow.db.consents.update_one({"_id": member_id},
                                   {"$set": {"organization_id": organization_id, "consents": consents,
                                             "updated_at": utcnow()}},
                                   upsert=True, session=uow.session)

    @staticmethod
    def save_coordinator(uow: UnitOfWork, organization_id: str, staff_id: str, site_ids: list[str]) -> None:
        uow.db.coordinators.update_one({"_id": f"{organization_id}|{staff_id}"},
                                       {"$set": {"organization_id": organization_id, "staff_id": staff_id,
                                                 "site_ids": site_ids, "updated_at": utcnow()}},
                                       upsert=True, session=uow.session)

    @staticmethod
    def save_organization(uow: UnitOfWork, organization_id: str, name: str) -> None:
        uow.db.organizations.update_one({"_id": organization_id},
                                        {"$set": {"organization_id": organization_id, "name": name,
                                                  "updated_at": utcnow()}}, upsert=True, session=uow.session)

    @staticmethod
    def save_site(uow: UnitOfWork, organization_id: str, site_id: str, name: str) -> None:
        uow.db.sites.update_one({"_id": f"{organization_id}|{site_id}"},
                                {"$set": {"organization_id": organization_id, "site_id": site_id, "name": name,
                                          "updated_at": utcnow()}}, upsert=True, session=uow.session)

    @staticmethod
    def site_name(db: Database, organization_id: str, site_id: str | None,
                  session: ClientSession | None = None) -> str | None:
        if not site_id:
            return None
        doc = db.sites.find_one({"_id": f"{organization_id}|{site_id}", "organization_id": organization_id},
                                session=session)
        return doc["name"] if doc else None

    def organization_name(self, organization_id: str) -> str | None:
        doc = self.db.organizations.find_one({"_id": organization_id})
        return doc["name"] if doc else None

    def knows_site(self, organization_id: str, site_id: str) -> bool:
        """A site of the organization: named by intake's SiteCreated / SiteUpdated, or by a CoordinatorAssigned
        (intake only assigns its own organization's sites), which also covers sites created before this
        service kept site names."""
        return (self.db.sites.find_one({"_id": f"{organization_id}|{site_id}", "organization_id": organization_id},
                                       projection={"_id": 1}) is not None
                or self.db.coordinators.find_one({"organization_id": organization_id, "site_ids": site_id},
                                                 projection={"_id": 1}) is not None)

    @staticmethod
    def save_meeting(uow: UnitOfWork, organization_id: str, meeting_id: str, name: str, time_zone: str | None) -> None:
        """A small read model of meetings (name, zone) so registration messages can name the meeting."""
        uow.db.meetings.update_one({"_id": meeting_id}, {"$set": {"organization_id": organization_id, "name": name,
                                                                 "time_zone": time_zone, "updated_at": utcnow()}},
                                   upsert=True, session=uow.session)

    @staticmethod
    def meeting_of(db: Database, organization_id: str, meeting_id: str | None, session: ClientSession | None = None) -> dict:
        if not meeting_id:
            return {}
        doc = db.meetings.find_one({"_id": meeting_id, "organization_id": organization_id}, session=session)
        return {"name": doc["name"], "time_zone": doc.get("time_zone")} if doc else {}

    @staticmethod
    def erase_person(uow: UnitOfWork, organization_id: str, person_id: str) -> int:
        """Erasure: contact, consents, preferences and inbox go; waiting deliveries are cancelled.
        The delivery log keeps ids only (no contact detail is stored in it)."""
        scope = {"_id": person_id, "organization_id": organization_id}
        s = uow.session
        uow.db.contacts.delete_one(scope, session=s)
        uow.db.consents.delete_one(scope, session=s)
        uow.db.preferences.delete_one(scope, session=s)
        uow.db.inapp_messages.delete_many({"organization_id": organization_id, "person_id": person_id}, session=s)
        uow.db.digests.delete_many({"organization_id": organization_id, "person_id": person_id}, session=s)
        uow.db.coordinators.delete_one({"_id": f"{organization_id}|{person_id}"}, session=s)
        # Only the id stays, so later events about the person tell nobody instead of retrying in vain.
        uow.db.erased.update_one({"_id": person_id}, {"$set": {"organization_id": organization_id, "erased_at": utcnow()}},
                                 upsert=True, session=s)
        result = uow.db.deliveries.update_many(
            {"organization_id": organization_id, "recipient_id": person_id,
             "status": {"$in": ["pending", "held", "digest"]}},
            {"$set": {"status": "cancelled", "last_error": "person erased", "updated_at": utcnow()}}, session=s)
        return result.modified_count

    @staticmethod
    def is_erased(db: Database, organization_id: str, person_id: str, session: ClientSession | None = None) -> bool:
        return db.erased.find_one({"_id": person_id, "organization_id": organization_id}, session=session) is not None

    @staticmethod
    def person_state(db: Database, organization_id: str, person_id: str, session: ClientSession | None = None):
        """(contact, consents list, preferences) of a person in an organization. The consents are None
        when no member event about the person has arrived yet (unknown, as opposed to none given)."""
        scope = {"_id": person_id, "organization_id": organization_id}
        contact = db.contacts.find_one(scope, session=session)
        consents = db.consents.find_one(scope, session=session)
        prefs = db.preferences.find_one(scope, session=session)
        return contact, (consents.get("consents", []) if consents else None), prefs

    @staticmethod
    def coordinators_of_site(db: Database, organization_id: str, site_id: str | None,
                             session: ClientSession | None = None) -> list[str]:
        if not site_id:
            return []
        return [doc["staff_id"] for doc in db.coordinators.find({"organization_id": organization_id, "site_ids": site_id},
                                                                session=session).sort("staff_id", ASCENDING)]

    @staticmethod
    def untold_coordinator_messages(db: Database, organization_id: str, site_ids: list[str],
                                    session: ClientSession | None = None, max_age_days: int = 30) -> list[dict]:
        """Recent messages for a site's coordinators that failed because no coordinator was known."""
        if not site_ids:
            return []
        return list(db.deliveries.find({"organization_id": organization_id, "status": "failed",
                                        "recipient_id": {"$in": [f"coordinators-of:{s}" for s in site_ids]},
                                        "created_at": {"$gte": utcnow() - timedelta(days=max_age_days)}},
                                       session=session).sort("created_at", ASCENDING))

    def coordinator_directory(self, organization_id: str, site_id: str) -> list[dict]:
        """Coordinators of a site with what the directory knows of how to reach them (no addresses)."""
        out = []
        for staff_id in self.coordinators_of_site(self.db, organization_id, site_id):
            contact = self.db.contacts.find_one({"_id": staff_id, "organization_id": organization_id}) or {}
            out.append({"staff_id": staff_id, "in_directory": bool(contact), "has_email": bool(contact.get("email")),
                        "has_phone": bool(contact.get("phone")), "time_zone": contact.get("time_zone")})
        return out

    @staticmethod
    def webhooks_for(db: Database, organization_id: str, event_type: str, session: ClientSession | None = None) -> list[dict]:
        return [hook for hook in db.webhooks.find({"organization_id": organization_id, "active": True}, session=session)
                if not hook.get("event_types") or event_type in hook["event_types"]]

    # -- deliveries -------------------------------------------------------------------------------
    @staticmethod
    def record_delivery(uow: UnitOfWork, doc: dict) -> bool:
        """Insert a delivery unless its idempotency key exists. True when new."""
        result = uow.db.deliveries.update_one({"key": doc["key"]}, {"$setOnInsert": doc}, upsert=True,
                                              session=uow.session)
        return result.upserted_id is not None

    @staticmethod
    def _due(now: datetime, status: str | None = None) -> dict:
        """Due for sending: pending ones whose time came, and 'sending' ones whose lease ran out (their
        worker died mid-send)."""
        pending = {"status": "pending", "next_attempt_at": {"$lte": now}}
        abandoned = {"status": "sending", "lease_until": {"$lt": now}}
        return {"pending": pending, "sending": abandoned}.get(status) or {"$or": [pending, abandoned]}

    def due_deliveries(self, now: datetime, limit: int) -> list[dict]:
        """Up to ``limit`` due deliveries ({_id, status}), oldest first: one query for a batch (each is
        claimed on its own just before it is sent, so a slow channel never holds a batch's leases)."""
        return list(self.db.deliveries.find(self._due(now), {"_id": 1, "status": 1})
                    .sort("next_attempt_at", ASCENDING).limit(limit))

    def claim(self, due: dict, now: datetime, lease_seconds: float, lease_id: str) -> dict | None:
        """Take one due delivery (from ``due_deliveries``) for sending, under the lease ``lease_id``;
        None when it is not due any more (another worker copy took it). Taking one whose lease ran out is
        counted in ``takeovers``: only such a delivery can reach a channel twice."""
        lease_until = now + timedelta(seconds=lease_seconds)
        changes = {"status": "sending", "lease_id": lease_id, "lease_until": lease_until, "updated_at": now}
        update = {"$set": changes}
        if due["status"] == "sending":  # rare: the previous holder died
            update["$inc"] = {"takeovers": 1}
        # update + read rather than find_one_and_update: the embedded database scans the collection for
        # findAndModify (~30 ms at 4,000 deliveries) but not for an update by _id (~1.5 ms)
        # The read is by our lease id whatever the update reported: a retried write whose first try was
        # applied (its answer lost) reports nothing modified although the lease is ours.
        self.db.deliveries.update_one({"_id": due["_id"], **self._due(now, due["status"])}, update)
        return self.db.deliveries.find_one({"_id": due["_id"], "lease_id": lease_id})

    def release_unsent(self, delivery_id: str, lease_id: str) -> None:
        """Give back a delivery claimed under ``lease_id`` and not sent: due again at once."""
        now = utcnow()
        self.db.deliveries.update_one({"_id": delivery_id, "status": "sending", "lease_id": lease_id},
                                      {"$set": {"status": "pending", "next_attempt_at": now, "updated_at": now},
                                       "$unset": {"lease_until": "", "lease_id": ""}})

    @staticmethod
    def finish_delivery(uow: UnitOfWork, delivery: dict, changes: dict) -> bool:
        """Record an outcome, only while we still hold the delivery's lease."""
        result = uow.db.deliveries.update_one({"_id": delivery["_id"], "status": "sending",
                                               "lease_id": delivery["lease_id"]},
                                              {"$set": {**changes, "updated_at": utcnow()},
                                               "$unset": {"lease_until": "", "lease_id": ""}}, session=uow.session)
        return result.modified_count == 1

    @staticmethod
    def add_inapp_message(uow: UnitOfWork, doc: dict) -> None:
        uow.db.inapp_messages.update_one({"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True, session=uow.session)

    def release_held(self, now: datetime) -> int:
        """Quiet hours over: held deliveries become due (they still pass the send-time checks)."""
        result = self.db.deliveries.update_many({"status": "held", "next_attempt_at": {"$lte": now}},
                                                {"$set": {"status": "pending", "updated_at": now}})
        return result.modified_count

    def digest_groups(self) -> list[dict]:
        return list(self.db.deliveries.aggregate([
            {"$match": {"status": "digest"}},
            {"$group": {"_id": {"o": "$organization_id", "r": "$recipient_id", "c": "$channel"},
                        "kind": {"$first": "$recipient_kind"}, "ids": {"$push": "$_id"}}},
        ]))

    @staticmethod
    def last_digest_date(uow: UnitOfWork, organization_id: str, person_id: str, channel: str) -> str | None:
        doc = uow.db.digests.find_one({"_id": f"{organization_id}|{person_id}|{channel}"}, session=uow.session)
        return doc["local_date"] if doc else None

    @staticmethod
    def mark_digest_sent(uow: UnitOfWork, organization_id: str, person_id: str, channel: str, local_date: str) -> None:
        uow.db.digests.update_one({"_id": f"{organization_id}|{person_id}|{channel}"},
                                  {"$set": {"organization_id": organization_id, "person_id": person_id,
                                            "channel": channel, "local_date": local_date}},
                                  upsert=True, session=uow.session)

    @staticmethod
    def take_digest_items(uow: UnitOfWork, ids: list[str], digest_id: str) -> list[dict]:
        items = list(uow.db.deliveries.find({"_id": {"$in": ids}, "status": "digest"}, session=uow.session)
                     .sort("created_at", ASCENDING))
        uow.db.deliveries.update_many({"_id": {"$in": [i["_id"] for i in items]}, "status": "digest"},
                                      {"$set": {"status": "digested", "digest_id": digest_id, "updated_at": utcnow()}},
                                      session=uow.session)
        return items

    def retry_failed(self, organization_id: str, delivery_id: str) -> dict | None:
        """A failed delivery goes again from its first try (after its endpoint or address was fixed)."""
        now = utcnow()
        return self.db.deliveries.find_one_and_update(
            {"_id": delivery_id, "organization_id": organization_id, "status": "failed",
             "recipient_id": {"$not": {"$regex": "^coordinators-of:"}}},
            {"$set": {"status": "pending", "attempts": 0, "next_attempt_at": now, "updated_at": now,
                      "retried_at": now}}, return_document=ReturnDocument.AFTER)

    def get_delivery(self, organization_id: str, delivery_id: str) -> dict | None:
        return self.db.deliveries.find_one({"_id": delivery_id, "organization_id": organization_id})

    def list_deliveries(self, organization_id: str, filters: dict, skip: int, limit: int) -> tuple[list[dict], int]:
        query = {"organization_id": organization_id, **{k: v for k, v in filters.items() if v is not None}}
        total = self.db.deliveries.count_documents(query)
        docs = list(self.db.deliveries.find(query).sort([("created_at", DESCENDING), ("_id", ASCENDING)])
                    .skip(skip).limit(limit))
        return docs, total

    def audit(self, entry: dict) -> None:
        audit_record(self.db, entry)

    # -- preferences ------------------------------------------------------------------------------
    def get_contact(self, organization_id: str, person_id: str) -> dict | None:
        return self.db.contacts.find_one({"_id": person_id, "organization_id": organization_id})

    def get_consents(self, organization_id: str, person_id: str) -> list[dict]:
        doc = self.db.consents.find_one({"_id": person_id, "organization_id": organization_id}) or {}
        return doc.get("consents", [])

    def get_preferences(self, organization_id: str, person_id: str) -> dict | None:
        return self.db.preferences.find_one({"_id": person_id, "organization_id": organization_id})

    def save_preferences(self, organization_id: str, person_id: str, prefs: dict, expected_version: int,
                         audit: dict) -> dict | None:
        """Replace a person's preferences if they are still at ``expected_version`` (0: none yet), with
        the audit entry in the same transaction; None when stale."""
        fields = {"channels": prefs.get("channels") or {}, "quiet_hours": prefs.get("quiet_hours"),
                  "digest": bool(prefs.get("digest"))}

        def work(uow: UnitOfWork):
            s = uow.session
            current = uow.db.preferences.find_one({"_id": person_id, "organization_id": organization_id}, session=s)
            if (current or {}).get("version", 0) != expected_version:
                return None
            doc = {"_id": person_id, "organization_id": organization_id, **fields, "updated_at": utcnow(),
                   "version": expected_version + 1}
            uow.db.preferences.replace_one({"_id": person_id, "organization_id": organization_id}, doc, upsert=True,
                                           session=s)
            audit_record(uow.db, audit, session=s)
            return doc

        return self.transaction(work)

    def turn_channel_off(self, organization_id: str, person_id: str, channel: str, audit: dict) -> None:
        def work(uow: UnitOfWork) -> None:
            uow.db.preferences.update_one({"_id": person_id, "organization_id": organization_id},
                                          {"$set": {f"channels.{channel}": False, "updated_at": utcnow()},
                                           "$inc": {"version": 1}}, upsert=True, session=uow.session)
            audit_record(uow.db, audit, session=uow.session)

        self.transaction(work)

    # -- in-app inbox -----------------------------------------------------------------------------
    def list_inbox(self, organization_id: str, person_id: str, unread_only: bool, skip: int, limit: int):
        query = {"organization_id": organization_id, "person_id": person_id}
        if unread_only:
            query["read_at"] = None
        total = self.db.inapp_messages.count_documents(query)
        docs = list(self.db.inapp_messages.find(query).sort([("created_at", DESCENDING), ("_id", ASCENDING)])
                    .skip(skip).limit(limit))
        return docs, total

    def mark_read(self, organization_id: str, person_id: str, message_id: str) -> dict | None:
        doc = self.db.inapp_messages.find_one({"_id": message_id, "organization_id": organization_id,
                                               "person_id": person_id})
        if doc is None:
            return None
        if doc.get("read_at") is None:
            doc = self.db.inapp_messages.find_one_and_update(
                {"_id": message_id, "read_at": None}, {"$set": {"read_at": utcnow()}},
                return_document=ReturnDocument.AFTER) or self.db.inapp_messages.find_one({"_id": message_id})
        return doc

    # -- webhooks ---------------------------------------------------------------------------------
    def add_webhook(self, doc: dict) -> dict:
        self.db.webhooks.insert_one(doc)
        return doc

    def list_webhooks(self, organization_id: str) -> list[dict]:
        return list(self.db.webhooks.find({"organization_id": organization_id}).sort("created_at", ASCENDING))

    def get_webhook(self, organization_id: str, webhook_id: str) -> dict | None:
        return self.db.webhooks.find_one({"_id": webhook_id, "organization_id": organization_id})

    def delete_webhook(self, organization_id: str, webhook_id: str) -> bool:
        return self.db.webhooks.delete_one({"_id": webhook_id, "organization_id": organization_id}).deleted_count == 1

    # -- template overrides -----------------------------------------------------------------------
    def template_overrides(self, organization_id: str, kind: str, channel: str) -> dict[str, dict]:
        """{language: {part: source}} of an organization for one kind and channel."""
        return {doc["language"]: doc.get("parts", {})
                for doc in self.db.templates.find({"organization_id": organization_id, "kind": kind, "channel": channel})}

    def save_template(self, organization_id: str, kind: str, channel: str, language: str, parts: dict) -> dict:
        return self.db.templates.find_one_and_update(
            {"organization_id": organization_id, "kind": kind, "channel": channel, "language": language},
            {"$set": {"parts": parts, "updated_at": utcnow()}, "$setOnInsert": {"_id": new_id()}},
            upsert=True, return_document=ReturnDocument.AFTER)

    def list_templates(self, organization_id: str) -> list[dict]:
        return list(self.db.templates.find({"organization_id": organization_id})
                    .sort([("kind", ASCENDING), ("channel", ASCENDING), ("language", ASCENDING)]))

    def delete_template(self, organization_id: str, kind: str, channel: str, language: str) -> bool:
        return self.db.templates.delete_one({"organization_id": organization_id, "kind": kind, "channel": channel,
                                             "language": language}).deleted_count == 1
