"""Fault: the database fails commands (``configureFailPoint`` / ``failCommand`` on the embedded server,
started with its test commands on) or is stopped. Guarantee: the API answers 503 problem+json with
Retry-After (never a 500, never a hung request), no partial state is left (a member is stored with its
identities, audit entry and outbox event, or not at all), and the workers resume when it returns:
every member registered around the fault is matched and told exactly once.

The failpoints are set on every service's database server (the local platform runs one per service), and
SecantusDB's ``failCommand`` fails by command name only, so a failpoint on ``insert`` hits every service's
web and worker at once: a harsher fault than one database failing. "Stopped" stops every server.
"""
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from pymongo import MongoClient

from shared.testing import eventually

HOLD_SECONDS = 5
# A sender cut off by the fault after the SMTP server took its message waits for the database for most of
# its lease; should that not do, the delivery is taken over when the lease (60 s here) lapses.
LEASE_AND_MARGIN = 180


class EveryServer:
    """A client of each of the platform's database servers (one per service), to set a failpoint on all."""

    def __init__(self, platform):
        self.clients = [MongoClient(mongo.uri) for mongo in platform.platform.mongos.values()]

    def command(self, command: dict) -> None:
        for client in self.clients:
            client.admin.command(command)

    def close(self) -> None:
        for client in self.clients:
            client.close()


def fail_inserts(admin: EveryServer, mode, **data) -> None:
    admin.command({"configureFailPoint": "failCommand", "mode": mode, "data": {"failCommands": ["insert"], **data}})


def failpoint_off(admin: EveryServer) -> None:
    admin.command({"configureFailPoint": "failCommand", "mode": "off"})


def name_mongo_client(platform, process: str) -> None:
    """Restart ``process`` with ``appName=<process>`` in its MONGO_URI, so a failpoint can aim at it alone
    (``failCommand``'s ``appName`` filter) while the other processes keep working."""
    args, env = platform.platform.commands[process]
    if "appName=" not in env["MONGO_URI"]:
        env = {**env, "MONGO_URI": f"{env['MONGO_URI']}&appName={process}"}
        platform.platform.commands[process] = (args, env)
        platform.restart(process)
    service = process.split("-")[0]

    def ready():
        try:
            return platform.client(service).get("/readyz").status_code == 200
        except requests.ConnectionError:
            return False
    eventually(ready, timeout=60)


def assert_unavailable(tries, *, within: float) -> None:
    status, headers, body, seconds = tries
    assert status == 503, f"expected 503, got {status}: {body}"
    assert headers.get("Content-Type", "").startswith("application/problem+json"), headers
    assert headers.get("Retry-After"), headers
    assert body["status"] == 503 and body["title"], body
    assert seconds < within, f"the 503 took {seconds:.1f}s"


def one_try(org, index: int):
    started = time.monotonic()
    status, headers, body = org.register(index, retry_503_for=0)[-1]
    return status, headers, body, time.monotonic() - started


def no_partial_state(fault_platform, org) -> None:
    """Every member of the organization in intake's database has its identities, its creation audit entry
    and its MemberRegistered outbox entry; nothing of the kind exists for a member that is not there."""
    with MongoClient(fault_platform.mongo_uri("intake")) as client:
        db = client["recoverynet_intake"]
        members = {m["_id"] for m in db.members.find({"organization_id": org.id}, {"_id": 1})}
        assert members == set(org.members), (len(members), len(org.members))
        identities = {i["person_id"] for i in db.identities.find({"_id": {"$regex": f"^{org.id}\\|member\\|"}})}
        assert identities == members, identities ^ members
        created = {a["resource_id"] for a in db.audit_log.find({"organization_id": org.id, "action": "create",
                                                                "resource_type": "member"})}
        assert created == members, created ^ members
        registered = [o["key"] for o in db.outbox.find({"type": {"$regex": r"\.member\.registered\."},
                                                         "key": {"$regex": "^mem_"}})]
        ours = [k for k in registered if k in members]
        assert sorted(ours) == sorted(members), "a member without its outbox event, or one twice"
        # no orphans: identities of this organization all point at stored members
        orphans = db.identities.count_documents({"_id": {"$regex": f"^{org.id}\\|member\\|"},
                                                 "person_id": {"$nin": sorted(members)}})
        assert orphans == 0


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_fault_database_failpoints_answer_503_leave_no_partial_state_and_workers_resume(fault_platform, fault_org):
    org = fault_org("database failpoints")
    admin = EveryServer(fault_platform)
    try:
        org.register(0)
        org.wait_matched(timeout=90)
        before = org.register_many(range(1, 7))  # the workers are busy with these when inserts start failing
        assert all(t[-1][0] == 201 for t in before.values())

        # 1. every insert fails as on a primary shutting down (code 91, labelled TransientTransactionError as
        #    mongod labels it inside a transaction, so the driver retries the transaction): 503, soon
        fail_inserts(admin, "alwaysOn", errorCode=91)
        try:
            with ThreadPoolExecutor(3) as pool:
                refused = list(pool.map(lambda i: one_try(org, i), range(7, 10)))
            for tries in refused:
                assert_unavailable(tries, within=25)
            time.sleep(HOLD_SECONDS)  # hold the fault open while the workers keep trying
        finally:
            failpoint_off(admin)

        # 2. a registration's transaction fails half-way (its third insert) with a time-limit error (262):
        #    without a retry label: 503 at once, nothing of it kept ...
        name_mongo_client(fault_platform, "intake-web")
        fail_inserts(admin, {"skip": 2, "times": 1}, errorCode=262, errorLabels=[], appName="intake-web")
        try:
            assert_unavailable(one_try(org, 10), within=5)
        finally:
            failpoint_off(admin)
        no_partial_state(fault_platform, org)
        #    ... labelled TransientTransactionError (as mongod labels it): the whole transaction is run
        #    again and the member is stored once
        fail_inserts(admin, {"skip": 2, "times": 1}, errorCode=262, appName="intake-web")
        try:
            status, _, body, _ = one_try(org, 12)
            assert status == 201, body
        finally:
            failpoint_off(admin)
        no_partial_state(fault_platform, org)

        # 3. the connection drops in the middle of a registration: 503 or 201, never a 500 and never half
        fail_inserts(admin, {"skip": 1, "times": 1}, closeConnection=True, appName="intake-web")
        try:
            status, headers, body, _ = one_try(org, 11)
            assert status in (201, 503), f"{status}: {body}"
        finally:
            failpoint_off(admin)
        no_partial_state(fault_platform, org)

        # the database is back: the refused members are registered again (as a client would retry) ...
        retried = org.register_many([i for i in range(7, 13) if i not in {m["index"] for m in org.members.values()}])
        assert all(t[-1][0] == 201 for t in retried.values()), retried
        no_partial_state(fault_platform, org)
        # ... and the workers resumed: everyone matched and told exactly once
        matches = org.wait_matched(timeout=120)
        mail = org.wait_emails(timeout=LEASE_AND_MARGIN)
        org.assert_each_member_once(matches=matches, mail=mail)
    finally:
        failpoint_off(admin)
        admin.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fault_database_stopped_answers_503_and_workers_resume(fault_platform, fault_org):
    org = fault_org("database stopped")
    org.register(0)
    org.wait_matched(timeout=90)
    org.register_many(range(1, 5))
    servers = list(fault_platform.platform.mongos.values())
    for mongo in servers:
        mongo.stop()
    try:
        with ThreadPoolExecutor(2) as pool:
            refused = list(pool.map(lambda i: one_try(org, i), range(5, 7)))
        for tries in refused:
            assert_unavailable(tries, within=25)
        assert fault_platform.client("intake").get("/readyz").status_code == 503
    finally:
        for mongo in servers:
            mongo.start()
    retried = org.register_many(range(5, 7))
    assert all(t[-1][0] == 201 for t in retried.values()), retried
    no_partial_state(fault_platform, org)
    matches = org.wait_matched(timeout=120)
    mail = org.wait_emails(timeout=120)
    org.assert_each_member_once(matches=matches, mail=mail)
