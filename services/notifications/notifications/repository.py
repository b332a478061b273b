"""The only module of the notifications service that touches MongoDB: ``Store``, this service's named
reads and writes (bound to a unit of work, or plain for reads and the delivery job's single-document
lease writes), and ``Repository``, the entry points' handle (shared) with this service's source.

Collections (every document carries organization_id; every query is scoped by it):
  contacts        the contact directory, from the restricted contacts topic only (_id: person id)
  consents        members' consents in force (_id: member id)
  preferences     per person: channel choices, quiet hours, digest (_id: person id)
  coordinators    site coordinator directory, from CoordinatorAssigned (_id: read_model_key(org, staff id))
  templates       organizations' template overrides (kind, channel, language)
  webhooks        organizations' endpoints (url, secret, event types)
  deliveries      one per (source event, recipient, channel): unique ``key``; the delivery log
  inapp_messages  the in-app inbox (_id: the delivery id)
  digests         the last daily digest per person and channel
  meetings        meeting names and zones (from scheduling's meeting events), to name them in messages
  organizations   organization names (from intake's OrganizationCreated), for the unsubscribe page
  sites           site names (from intake's SiteCreated / SiteUpdated; _id: read_model_key(org, site id)), so
                  messages and reasons name a site and the API knows which sites are the organization's
  erased          ids of erased people (nothing else), so later events about them tell nobody
  signin_secrets  a sign-in message's address, code and link (_id: its delivery id), kept only until the
                  delivery is settled (sent, cancelled or failed) or the code expires; never in the log
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument, UpdateOne
from pymongo.write_concern import WriteConcern
from pymongo.database import Database

from shared import repository as base
from shared.mongo import drop_retired_indexes, utcnow
from shared.repository import read_model_key
from shared.unit_of_work import UnitOfWork

SOURCE = "/recoverynet/notifications"
WAITING = ["pending", "held", "digest"]  # not sent yet: an erasure cancels these


def new_id() -> str:
    return uuid.uuid4().hex


def _key(organization_id: str, ident: str) -> str:
    """The ``_id`` of a copy of intake's site or coordinator assignment."""
    return read_model_key(organization_id, ident)


class Store(base.Store):
    collections = ("contacts", "consents", "preferences", "coordinators", "templates", "webhooks", "deliveries",
                   "inapp_messages", "digests", "meetings", "organizations", "sites", "erased")

    # -- the directory (written by event handlers, inside the consumer's transaction) --------------
    def save_contact(self, organization_id: str, person_id: str, fields: dict) -> None:
        self.upsert("contacts", person_id, {**fields, "organization_id": organization_id, "updated_at": utcnow()})

    def save_consents(self, organization_id: str, member_id: str, consents: list[dict]) -> bool:
        """True when they changed (or were not known). A registration's consent events repeat the consents
        its snapshot brought: no write of the same (nor a look for deliveries waiting for them)."""
        held = self.held_consents(organization_id, member_id)
        if held is not None and held == consents:
            return False
        self.upsert("consents", member_id, {"organization_id": organization_id, "consents": consents,
                                            "updated_at": utcnow()})
        self.remember(("consents", organization_id, member_id), consents)
        return True

    def held_consents(self, organization_id: str, member_id: str) -> list[dict] | None:
        """The member's consents as held (None: no member event about them yet); once per unit of work."""
        def read():
            doc = self.find_one("consents", {"_id": member_id, "organization_id": organization_id},
                                projection={"consents": 1})
            return None if doc is None else doc.get("consents", [])
        return self.remembered(("consents", organization_id, member_id), read)

    def read_people_ahead(self, people: set[tuple[str, str]]) -> None:
        """For a consumer batch of member and contact events: whether each (organization, person) is erased and
        their consents as held, in one query per collection instead of two per event."""
        ids = sorted({person_id for _, person_id in people})
        erased = {(d["organization_id"], d["_id"])
                  for d in self.find_in("erased", "_id", ids, projection={"organization_id": 1})}
        consents = {(d["organization_id"], d["_id"]): d.get("consents", [])
                    for d in self.find_in("consents", "_id", ids, projection={"organization_id": 1, "consents": 1})}
        for org, person_id in people:
            self.remember(("erased", org, person_id), (org, person_id) in erased)
            self.remember(("consents", org, person_id), consents.get((org, person_id)))

    def wake_deliveries_waiting_for(self, organization_id: str, person_id: str) -> None:
        """Deliveries that failed because this person was not known yet are due now (their contact or
        consents just arrived), instead of after their wait."""
        self.update_many("deliveries",
                         {"organization_id": organization_id, "recipient_id": person_id, "waiting_for_person": True},
                         {"$set": {"next_attempt_at": utcnow(), "waiting_for_person": False}})

    def save_coordinator(self, organization_id: str, staff_id: str, site_ids: list[str]) -> None:
        self.upsert("coordinators", _key(organization_id, staff_id),
                    {"organization_id": organization_id, "staff_id": staff_id, "site_ids": site_ids,
                     "updated_at": utcnow()})

    def save_organization(self, organization_id: str, name: str) -> None:
        self.upsert("organizations", organization_id, {"organization_id": organization_id, "name": name,
                                                       "updated_at": utcnow()})

    def save_site(self, organization_id: str, site_id: str, name: str) -> None:
        self.upsert("sites", _key(organization_id, site_id), {"organization_id": organization_id, "site_id": site_id,
                                                             "name": name, "updated_at": utcnow()})

    def save_meeting(self, organization_id: str, meeting_id: str, name: str, time_zone: str | None) -> None:
        """A small read model of meetings (name, zone) so registration messages can name the meeting."""
        self.upsert("meetings", meeting_id, {"organization_id": organization_id, "name": name, "time_zone": time_zone,
                                             "updated_at": utcnow()})

    def site_name(self, organization_id: str, site_id: str | None) -> str | None:
        if not site_id:
            return None
        doc = self.find_one("sites", {"_id": _key(organization_id, site_id), "organization_id": organization_id})
        return doc["name"] if doc else None

    def organization_name(self, organization_id: str) -> str | None:
        doc = self.find_one("organizations", {"_id": organization_id})
        return doc["name"] if doc else None

    def knows_site(self, organization_id: str, site_id: str) -> bool:
        """A site of the organization: named by intake's SiteCreated / SiteUpdated, or by a CoordinatorAssigned
        (intake only assigns its own organization's sites), which also covers sites created before this
        service kept site names."""
        return (self.find_one("sites", {"_id": _key(organization_id, site_id), "organization_id": organization_id},
                              {"_id": 1}) is not None
                or self.find_one("coordinators", {"organization_id": organization_id, "site_ids": site_id},
                                 {"_id": 1}) is not None)

    def meeting_of(self, organization_id: str, meeting_id: str | None) -> dict:
        if not meeting_id:
            return {}
        doc = self.find_one("meetings", {"_id": meeting_id, "organization_id": organization_id})
        return {"name": doc["name"], "time_zone": doc.get("time_zone")} if doc else {}

    def erase_person(self, organization_id: str, person_id: str) -> int:
        """Erasure: contact, consents, preferences and inbox go; waiting deliveries are cancelled.
        The delivery log keeps ids only (no contact detail is stored in it)."""
        scope = {"_id": person_id, "organization_id": organization_id}
        db, s = self.db, self.session
        db.contacts.delete_one(scope, session=s)
        db.consents.delete_one(scope, session=s)
        db.preferences.delete_one(scope, session=s)
        self.delete_many("inapp_messages", {"organization_id": organization_id, "person_id": person_id})
        self.delete_many("digests", {"organization_id": organization_id, "person_id": person_id})
        db.coordinators.delete_one({"_id": _key(organization_id, person_id)}, session=s)
        # Only the id stays, so later events about the person tell nobody instead of retrying in vain.
        self.upsert("erased", person_id, {"organization_id": organization_id, "erased_at": utcnow()})
        self.remember(("erased", organization_id, person_id), True)
        self.remember(("consents", organization_id, person_id), None)
        self.delete_many("signin_secrets", {"organization_id": organization_id, "person_id": person_id})
        return self.update_many(
            "deliveries", {"organization_id": organization_id, "recipient_id": person_id, "status": {"$in": WAITING}},
            {"$set": {"status": "cancelled", "last_error": "person erased", "updated_at": utcnow()}})

    # -- sign-in codes (intake's SignInCodeIssued): the secret part of a sign-in delivery ------------
    def save_signin_secret(self, delivery_id: str, doc: dict) -> None:
        self.db.signin_secrets.insert_one({**doc, "_id": delivery_id}, session=self.session)

    def signin_secret(self, delivery_id: str) -> dict | None:
        return self.find_one("signin_secrets", {"_id": delivery_id})

    def forget_signin_secret(self, delivery_id: str) -> None:
        self.db.signin_secrets.delete_one({"_id": delivery_id}, session=self.session)

    def forget_signin_secrets(self, delivery_ids: list[str]) -> None:
        if delivery_ids:
            self.delete_many("signin_secrets", {"_id": {"$in": delivery_ids}})

    def is_erased(self, organization_id: str, person_id: str) -> bool:
        """Once per unit of work (``read_people_ahead`` reads a batch's at once; ``erase_person`` updates it)."""
        return self.remembered(("erased", organization_id, person_id), lambda: self.find_one(
            "erased", {"_id": person_id, "organization_id": organization_id}) is not None)

    def person_state(self, organization_id: str, person_id: str):
        """(contact, consents list, preferences) of a person in an organization. The consents are None
        when no member event about the person has arrived yet (unknown, as opposed to none given)."""
        scope = {"_id": person_id, "organization_id": organization_id}
        consents = self.find_one("consents", scope)
        return (self.find_one("contacts", scope), consents.get("consents", []) if consents else None,
                self.find_one("preferences", scope))

    def people_state(self, people: set[tuple[str, str]]) -> dict[tuple[str, str], tuple]:
        """``person_state`` of many people at once (one query per collection): {(organization, person):
        (contact, consents list or None, preferences)}."""
        ids = sorted({person_id for _, person_id in people})
        found = {coll: {(doc["organization_id"], doc["_id"]): doc for doc in self.find_in(coll, "_id", ids)}
                 for coll in ("contacts", "consents", "preferences")}
        out = {}
        for key in people:
            consents = found["consents"].get(key)
            out[key] = (found["contacts"].get(key), consents.get("consents", []) if consents else None,
                        found["preferences"].get(key))
        return out

    def coordinators_of_site(self, organization_id: str, site_id: str | None) -> list[str]:
        if not site_id:
            return []
        return [doc["staff_id"] for doc in self.find("coordinators", {"organization_id": organization_id,
                                                                      "site_ids": site_id}, sort=[("staff_id", ASCENDING)])]

    def untold_coordinator_messages(self, organization_id: str, site_ids: list[str], max_age_days: int = 30) -> list[dict]:
        """Recent messages for a site's coordinators that failed because no coordinator was known."""
        if not site_ids:
            return []
        return self.find("deliveries", {"organization_id": organization_id, "status": "failed",
                                        "recipient_id": {"$in": [f"coordinators-of:{s}" for s in site_ids]},
                                        "created_at": {"$gte": utcnow() - timedelta(days=max_age_days)}},
                         sort=[("created_at", ASCENDING)])

    def coordinator_directory(self, organization_id: str, site_id: str) -> list[dict]:
        """Coordinators of a site with what the directory knows of how to reach them (no addresses)."""
        out = []
        for staff_id in self.coordinators_of_site(organization_id, site_id):
            contact = self.contact(organization_id, staff_id) or {}
            out.append({"staff_id": staff_id, "in_directory": bool(contact), "has_email": bool(contact.get("email")),
                        "has_phone": bool(contact.get("phone")), "time_zone": contact.get("time_zone")})
        return out

    # -- preferences ------------------------------------------------------------------------------
    def contact(self, organization_id: str, person_id: str) -> dict | None:
        return self.find_one("contacts", {"_id": person_id, "organization_id": organization_id})

    def consents(self, organization_id: str, person_id: str) -> list[dict]:
        doc = self.find_one("consents", {"_id": person_id, "organization_id": organization_id}) or {}
        return doc.get("consents", [])

    def preferences(self, organization_id: str, person_id: str) -> dict | None:
        return self.find_one("preferences", {"_id": person_id, "organization_id": organization_id})

    def replace_preferences(self, doc: dict) -> None:
        self.db.preferences.replace_one({"_id": doc["_id"], "organization_id": doc["organization_id"]}, doc,
                                        upsert=True, session=self.session)

    def turn_channel_off(self, organization_id: str, person_id: str, channel: str) -> None:
        self.db.preferences.update_one({"_id": person_id, "organization_id": organization_id},
                                       {"$set": {f"channels.{channel}": False, "updated_at": utcnow()},
                                        "$inc": {"version": 1}}, upsert=True, session=self.session)

    # -- in-app inbox -----------------------------------------------------------------------------
    def inbox(self, organization_id: str, person_id: str, unread_only: bool, skip: int, limit: int):
        query = {"organization_id": organization_id, "person_id": person_id}
        if unread_only:
            query["read_at"] = None
        return self.page("inapp_messages", query, skip=skip, limit=limit,
                         sort=[("created_at", DESCENDING), ("_id", ASCENDING)])

    def all_inbox_messages(self, organization_id: str, person_id: str) -> list[dict]:
        """Every in-app message of one person, newest first (their export)."""
        return self.find("inapp_messages", {"organization_id": organization_id, "person_id": person_id},
                         sort=[("created_at", DESCENDING), ("_id", ASCENDING)])

    def deliveries_to(self, organization_id: str, person_id: str) -> list[dict]:
        """Every delivery addressed to one person, newest first (their export)."""
        return self.find("deliveries", {"organization_id": organization_id, "recipient_id": person_id},
                         sort=[("created_at", DESCENDING), ("_id", ASCENDING)])

    def mark_read(self, organization_id: str, person_id: str, message_id: str) -> dict | None:
        doc = self.find_one("inapp_messages", {"_id": message_id, "organization_id": organization_id,
                                               "person_id": person_id})
        if doc is None:
            return None
        if doc.get("read_at") is None:
            doc = self.db.inapp_messages.find_one_and_update(
                {"_id": message_id, "read_at": None}, {"$set": {"read_at": utcnow()}},
                return_document=ReturnDocument.AFTER, session=self.session) \
                or self.find_one("inapp_messages", {"_id": message_id})
        return doc

    def add_inapp_message(self, doc: dict) -> None:
        self.db.inapp_messages.update_one({"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True, session=self.session)

    def add_inapp_messages(self, docs: list[dict]) -> None:
        """Several in-app messages in one command (each inserted unless its delivery's is there)."""
        if docs:
            self.db.inapp_messages.bulk_write([UpdateOne({"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True)
                                               for doc in docs], ordered=False, session=self.session)

    # -- webhooks ---------------------------------------------------------------------------------
    def webhooks_for(self, organization_id: str, event_type: str) -> list[dict]:
        return [hook for hook in self.find("webhooks", {"organization_id": organization_id, "active": True})
                if not hook.get("event_types") or event_type in hook["event_types"]]

    def add_webhook(self, doc: dict) -> dict:
        self.db.webhooks.insert_one(doc, session=self.session)
        return doc

    def webhooks(self, organization_id: str) -> list[dict]:
        return self.find("webhooks", {"organization_id": organization_id}, sort=[("created_at", ASCENDING)])

    def webhook(self, organization_id: str, webhook_id: str) -> dict | None:
        return self.find_one("webhooks", {"_id": webhook_id, "organization_id": organization_id})

    def delete_webhook(self, organization_id: str, webhook_id: str) -> bool:
        return self.db.webhooks.delete_one({"_id": webhook_id, "organization_id": organization_id},
                                           session=self.session).deleted_count == 1

    # -- template overrides -----------------------------------------------------------------------
    def template_overrides(self, organization_id: str, kind: str, channel: str) -> dict[str, dict]:
        """{language: {part: source}} of an organization for one kind and channel."""
        return {doc["language"]: doc.get("parts", {})
                for doc in self.find("templates", {"organization_id": organization_id, "kind": kind, "channel": channel})}

    def save_template(self, organization_id: str, kind: str, channel: str, language: str, parts: dict) -> dict:
        return self.db.templates.find_one_and_update(
            {"organization_id": organization_id, "kind": kind, "channel": channel, "language": language},
            {"$set": {"parts": parts, "updated_at": utcnow()}, "$setOnInsert": {"_id": new_id()}},
            upsert=True, return_document=ReturnDocument.AFTER, session=self.session)

    def templates(self, organization_id: str) -> list[dict]:
        return self.find("templates", {"organization_id": organization_id},
                         sort=[("kind", ASCENDING), ("channel", ASCENDING), ("language", ASCENDING)])

    def delete_template(self, organization_id: str, kind: str, channel: str, language: str) -> bool:
        return self.db.templates.delete_one({"organization_id": organization_id, "kind": kind, "channel": channel,
                                             "language": language}, session=self.session).deleted_count == 1

    # -- the delivery log -------------------------------------------------------------------------
    def record_delivery(self, doc: dict) -> bool:
        """Insert a delivery unless its idempotency key exists. True when new."""
        result = self.db.deliveries.update_one({"key": doc["key"]}, {"$setOnInsert": doc}, upsert=True,
                                               session=self.session)
        return result.upserted_id is not None

    def record_deliveries(self, docs: list[dict]) -> None:
        """``record_delivery`` for each of ``docs``, in one write (a consumer batch's deliveries)."""
        if docs:
            self.db.deliveries.bulk_write([UpdateOne({"key": d["key"]}, {"$setOnInsert": d}, upsert=True) for d in docs],
                                          ordered=False, session=self.session)

    def delivery(self, organization_id: str, delivery_id: str) -> dict | None:
        return self.find_one("deliveries", {"_id": delivery_id, "organization_id": organization_id})

    def deliveries(self, organization_id: str, filters: dict, site_clause: dict, skip: int, limit: int, *,
                   created_from: datetime | None = None, created_to: datetime | None = None):
        """One page of the log; ``filters`` are equalities (None: any), ``site_clause`` a ``site_scope``;
        ``created_from`` (inclusive) and ``created_to`` (exclusive) bound when the delivery was created."""
        query = {"organization_id": organization_id, **{k: v for k, v in filters.items() if v is not None},
                 **site_clause}
        created = {op: value for op, value in (("$gte", created_from), ("$lt", created_to)) if value is not None}
        if created:
            query["created_at"] = created
        return self.page("deliveries", query, skip=skip, limit=limit,
                         sort=[("created_at", DESCENDING), ("_id", ASCENDING)])

    def retry_failed(self, organization_id: str, delivery_id: str) -> dict | None:
        """A failed delivery goes again from its first try (after its endpoint or address was fixed)."""
        now = utcnow()
        return self.db.deliveries.find_one_and_update(
            {"_id": delivery_id, "organization_id": organization_id, "status": "failed",
             "recipient_id": {"$not": {"$regex": "^coordinators-of:"}}},
            {"$set": {"status": "pending", "attempts": 0, "next_attempt_at": now, "updated_at": now,
                      "retried_at": now}}, return_document=ReturnDocument.AFTER, session=self.session)

    def delivery_backlog(self, now: datetime) -> dict:
        """For /metrics: deliveries per waiting/final status, and how late the oldest due one is (seconds),
        so operators see a stuck delivery job or a failing channel."""
        counts = {row["_id"]: row["n"] for row in self.db.deliveries.aggregate([
            {"$match": {"status": {"$in": ["pending", "held", "digest", "sending", "failed"]}}},
            {"$group": {"_id": "$status", "n": {"$sum": 1}}}])}
        oldest = self.db.deliveries.find_one({"status": "pending", "next_attempt_at": {"$lte": now}},
                                             sort=[("next_attempt_at", ASCENDING)], projection={"next_attempt_at": 1})
        lateness = (now - oldest["next_attempt_at"]).total_seconds() if oldest else 0.0
        return {"counts": counts, "oldest_due_seconds": max(0.0, lateness)}

    # -- the delivery job: claims and outcomes ----------------------------------------------------
    @staticmethod
    def _due(now: datetime, status: str | None = None) -> dict:
        """Due for sending: pending ones whose time came, and 'sending' ones whose lease ran out (their
        worker died mid-send). A claim sets ``next_attempt_at`` to the lease's end too, so both halves are
        found on the one ``due`` index (status, next_attempt_at): every write of a delivery pays for each
        index (bench/README.md, reminders), and the claim itself checks the lease (``_still_due``)."""
        pending = {"status": "pending", "next_attempt_at": {"$lte": now}}
        abandoned = {"status": "sending", "next_attempt_at": {"$lt": now}}
        return {"pending": pending, "sending": abandoned}.get(status) or {"$or": [pending, abandoned]}

    @staticmethod
    def _still_due(now: datetime, status: str) -> dict:
        """The condition a claim of one found by ``_due`` writes under (read by _id, so no index is needed):
        a 'sending' one only when its lease ran out, whatever its next_attempt_at says (one claimed by a
        version before next_attempt_at followed the lease)."""
        if status == "sending":
            return {"status": "sending", "lease_until": {"$lt": now}}
        return {"status": "pending", "next_attempt_at": {"$lte": now}}

    def due_deliveries(self, now: datetime, limit: int, skip: int = 0, abandoned: bool = True) -> list[dict]:
        """Up to ``limit`` due deliveries ({_id, status}): first those whose sender died (lease run out;
        unless ``abandoned`` is false), then pending ones, oldest first, after the first ``skip`` of those (a
        sender looks past the batches other senders are likely taking). Two queries, each on an index: the
        embedded database answers the ``$or`` of both by scanning the whole collection (1.2 s at 8,000
        deliveries, against 0.25 s and 7 ms for the two halves), so a batch's look-up grew with the log."""
        projection = {"_id": 1, "status": 1}
        if not abandoned:
            return self.find("deliveries", self._due(now, "pending"), projection=projection,
                             sort=[("next_attempt_at", ASCENDING)], skip=skip, limit=limit)
        abandoned = self.find("deliveries", self._due(now, "sending"), projection=projection,
                              sort=[("next_attempt_at", ASCENDING)], limit=limit)
        if len(abandoned) >= limit:
            return abandoned
        return abandoned + self.find("deliveries", self._due(now, "pending"), projection=projection,
                                     sort=[("next_attempt_at", ASCENDING)], skip=skip, limit=limit - len(abandoned))

    def claim_batch(self, due: list[dict], now: datetime, lease_seconds: float, lease_id: str) -> list[dict]:
        """Take the still-due ones of ``due`` (from ``due_deliveries``) for sending, all under the lease
        ``lease_id``, in one conditional update per status; returns the deliveries now held under it (none
        of them held by anyone else: a delivery is claimed only while due). Taking one whose lease ran out
        is counted in ``takeovers``. Read back by our lease id whatever the update reported (a retried
        write whose first try was applied reports nothing modified although the leases are ours)."""
        lease_until = now + timedelta(seconds=lease_seconds)
        changes = {"status": "sending", "lease_id": lease_id, "lease_until": lease_until,
                   "next_attempt_at": lease_until, "updated_at": now}
        ids = [d["_id"] for d in due]
        for status in ("pending", "sending"):
            some = [d["_id"] for d in due if d["status"] == status]
            if some:
                update: dict = {"$set": changes}
                if status == "sending":  # rare: the previous holder died
                    update["$inc"] = {"takeovers": 1}
                self.update_each("deliveries", some, self._still_due(now, status), update)
        order = {delivery_id: i for i, delivery_id in enumerate(ids)}
        held = self.find_in("deliveries", "_id", ids, query={"lease_id": lease_id})
        return sorted(held, key=lambda d: order[d["_id"]])

    def mark_sent(self, delivery_id: str, now: datetime) -> None:
        """The channel accepted the message: whoever holds the delivery next must not send it again.
        Unacknowledged (w=0): no round trip; the write is on its way before we go on. By _id alone, whoever
        holds the lease now (the message went out either way): the embedded database finds a document by a
        filter of _id alone directly, and scans the whole collection for ``{_id, status, lease_id}``."""
        self.db.deliveries.with_options(write_concern=WriteConcern(w=0)).update_one(
            {"_id": delivery_id}, {"$set": {"sent_at": now}})

    def finish_deliveries(self, outcomes: list[tuple[dict, dict]]) -> set[str]:
        """Record the outcomes [(delivery as claimed, changes)] of one batch in one write, only for the
        deliveries whose lease we still hold; returns their ids."""
        leases = {d["_id"]: d["lease_id"] for d, _ in outcomes}
        held = {doc["_id"] for doc in self.find_in("deliveries", "_id", list(leases), projection={"status": 1, "lease_id": 1})
                if doc.get("status") == "sending" and doc.get("lease_id") == leases[doc["_id"]]}
        now = utcnow()
        # Read and written by _id in this transaction, for the reason and with the guarantee of Store.update_one.
        ops = [UpdateOne({"_id": d["_id"]},
                         {"$set": {**changes, "updated_at": now}, "$unset": {"lease_until": "", "lease_id": ""}})
               for d, changes in outcomes if d["_id"] in held]
        if ops:
            self.db.deliveries.bulk_write(ops, ordered=False, session=self.session)
        return held

    def claim(self, due: dict, now: datetime, lease_seconds: float, lease_id: str) -> dict | None:
        """Take one due delivery (from ``due_deliveries``) for sending, under the lease ``lease_id``;
        None when it is not due any more (another worker copy took it). Taking one whose lease ran out is
        counted in ``takeovers``: only such a delivery can reach a channel twice."""
        lease_until = now + timedelta(seconds=lease_seconds)
        changes = {"status": "sending", "lease_id": lease_id, "lease_until": lease_until,
                   "next_attempt_at": lease_until, "updated_at": now}
        update: dict = {"$set": changes}
        if due["status"] == "sending":  # rare: the previous holder died
            update["$inc"] = {"takeovers": 1}
        # update + read rather than find_one_and_update: the embedded database scans the collection for
        # findAndModify (~30 ms at 4,000 deliveries) but not for an update by _id (~1.5 ms)
        # The read is by our lease id whatever the update reported: a retried write whose first try was
        # applied (its answer lost) reports nothing modified although the lease is ours.
        self.db.deliveries.update_one({"_id": due["_id"], **self._still_due(now, due["status"])}, update,
                                      session=self.session)
        return self.find_one("deliveries", {"_id": due["_id"], "lease_id": lease_id})

    def release_unsent(self, delivery_ids: str | list[str], lease_id: str) -> None:
        """Give back deliveries claimed under ``lease_id`` and not sent: due again at once (one the channel
        took meanwhile, marked ``sent_at``, stays ours to record)."""
        now = utcnow()
        ids = [delivery_ids] if isinstance(delivery_ids, str) else list(delivery_ids)
        self.update_each("deliveries", ids, {"status": "sending", "lease_id": lease_id, "sent_at": None},
                         {"$set": {"status": "pending", "next_attempt_at": now, "updated_at": now},
                          "$unset": {"lease_until": "", "lease_id": ""}})

    def finish_delivery(self, delivery: dict, changes: dict) -> bool:
        """Record an outcome, only while we still hold the delivery's lease."""
        return self.update_one("deliveries", {"_id": delivery["_id"], "status": "sending", "lease_id": delivery["lease_id"]},
                               {"$set": {**changes, "updated_at": utcnow()}, "$unset": {"lease_until": "", "lease_id": ""}})

    def release_held(self, now: datetime) -> int:
        """Quiet hours over: held deliveries become due (they still pass the send-time checks)."""
        return self.update_many("deliveries", {"status": "held", "next_attempt_at": {"$lte": now}},
                                {"$set": {"status": "pending", "updated_at": now}})

    # -- digests ----------------------------------------------------------------------------------
    def digest_groups(self) -> list[dict]:
        """Waiting digest items per (organization, person, channel): {organization_id, person_id,
        channel, kind, ids}."""
        return [{"organization_id": g["_id"]["o"], "person_id": g["_id"]["r"], "channel": g["_id"]["c"],
                 "kind": g["kind"], "ids": g["ids"]}
                for g in self.db.deliveries.aggregate([
                    {"$match": {"status": "digest"}},
                    {"$group": {"_id": {"o": "$organization_id", "r": "$recipient_id", "c": "$channel"},
                                "kind": {"$first": "$recipient_kind"}, "ids": {"$push": "$_id"}}},
                ], session=self.session)]

    def last_digest_date(self, organization_id: str, person_id: str, channel: str) -> str | None:
        doc = self.find_one("digests", {"_id": f"{organization_id}|{person_id}|{channel}"})
        return doc["local_date"] if doc else None

    def mark_digest_sent(self, organization_id: str, person_id: str, channel: str, local_date: str) -> None:
        self.upsert("digests", f"{organization_id}|{person_id}|{channel}",
                    {"organization_id": organization_id, "person_id": person_id, "channel": channel,
                     "local_date": local_date})

    def take_digest_items(self, ids: list[str], digest_id: str) -> list[dict]:
        items = self.find("deliveries", {"_id": {"$in": ids}, "status": "digest"}, sort=[("created_at", ASCENDING)])
        self.update_many("deliveries", {"_id": {"$in": [i["_id"] for i in items]}, "status": "digest"},
                         {"$set": {"status": "digested", "digest_id": digest_id, "updated_at": utcnow()}})
        return items

    @classmethod
    def ensure_collections(cls, db: Database) -> None:
        """Collections and indexes of this service (run by deploy set-up and by tests)."""
        super().ensure_collections(db)
        db.contacts.create_index([("organization_id", ASCENDING)], name="org")
        db.coordinators.create_index([("organization_id", ASCENDING), ("site_ids", ASCENDING)], name="org_site")
        db.templates.create_index([("organization_id", ASCENDING), ("kind", ASCENDING), ("channel", ASCENDING),
                                   ("language", ASCENDING)], name="org_kind_channel_lang", unique=True)
        db.webhooks.create_index([("organization_id", ASCENDING)], name="org")
        # Exactly one delivery per (source event, recipient, channel), whatever redelivers or races.
        db.deliveries.create_index([("key", ASCENDING)], name="idempotency_key", unique=True)
        db.deliveries.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)], name="due")
        db.deliveries.create_index([("organization_id", ASCENDING), ("created_at", DESCENDING)], name="org_log")
        # Scoped lists name the caller's sites: the embedded database (SecantusDB) uses an index only when it holds
        # every field a query names, so these hold site_id (or status) too (bench/README.md, console).
        db.deliveries.create_index([("organization_id", ASCENDING), ("status", ASCENDING), ("site_id", ASCENDING)], name="org_status_site")
        db.deliveries.create_index([("organization_id", ASCENDING), ("recipient_id", ASCENDING), ("site_id", ASCENDING)],
                                   name="org_recipient_site")
        db.deliveries.create_index([("organization_id", ASCENDING), ("recipient_id", ASCENDING),
                                    ("waiting_for_person", ASCENDING)], name="org_recipient_waiting")
        # Every write of a delivery rewrites its entry in each index (four writes a message), so none is kept
        # that another serves: a query naming (organization, recipient) walks the prefix of either one above.
        drop_retired_indexes(db.deliveries, {
            "org_recipient": "(organization, recipient): the prefix of org_recipient_site serves it",
            "status_lease": "(status, lease_until): abandoned leases are found on the due index (_due)"})
        db.inapp_messages.create_index([("organization_id", ASCENDING), ("person_id", ASCENDING),
                                        ("created_at", DESCENDING)], name="org_person_time")
        base.ensure_collections(db, ("signin_secrets",))
        # A code not sent by the time it expires is never sent: the database drops it.
        db.signin_secrets.create_index([("expires_at", ASCENDING)], name="expiry", expireAfterSeconds=0)


ensure_indexes = Store.ensure_collections  # the name deploy set-up and the tests call


class Repository(base.Repository):
    """The shared entry points' handle with this service's source and Store. The delivery job's lease
    writes (``claim``, ``claim_batch``, ``release_unsent``, ``mark_sent``) are not part of a unit of
    work (each is its own write or transaction), so they are asked of the handle (a test makes a claim lose its answer by overriding
    ``claim_batch``)."""

    def __init__(self, client: MongoClient, db: Database):
        super().__init__(client, db, source=SOURCE, store=Store)

    def reader(self) -> Store:
        return Store(self.db)

    def claim(self, due: dict, now: datetime, lease_seconds: float, lease_id: str) -> dict | None:
        return self.reader().claim(due, now, lease_seconds, lease_id)

    def claim_batch(self, due: list[dict], now: datetime, lease_seconds: float, lease_id: str) -> list[dict]:
        return self.reader().claim_batch(due, now, lease_seconds, lease_id)

    def release_unsent(self, delivery_ids: str | list[str], lease_id: str) -> None:
        self.reader().release_unsent(delivery_ids, lease_id)

    def mark_sent(self, delivery_id: str, now: datetime) -> None:
        self.reader().mark_sent(delivery_id, now)

    @staticmethod
    def finish_delivery(uow: UnitOfWork, delivery: dict, changes: dict) -> bool:
        """``Store.of(uow).finish_delivery``, under the name a test calls."""
        return Store.of(uow).finish_delivery(delivery, changes)
