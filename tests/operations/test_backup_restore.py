"""python -m deploy.backup: the whole platform (started as the local runner starts it) gets an organization
with a matched member, meeting registrations and notification preferences; its databases are dumped; a
fresh platform (new database, new broker) gets them restored into its EMPTY databases; matching's read
model and matches, scheduling's registrations and notifications' preferences are intact there, and the
restored platform works: a new member registered on it is matched and registered to the restored meeting."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from deploy.platform_under_test import PlatformUnderTest
from shared.messaging.kafka import platform_topics
from shared.messaging.outbox import outbox_backlog
from shared.mongo import connect
from shared.testing import eventually
from shared.testing.events import EventTap

from tests.journeys.conftest import Journal, Org, soon_local

ROOT = Path(__file__).resolve().parents[2]
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def backup(platform, *args) -> str:
    env = {**platform.platform.environment("setup")}
    done = subprocess.run([sys.executable, "-m", "deploy.backup", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def ready(url: str) -> bool | None:
    try:
        return requests.get(url + "/readyz", timeout=2).status_code == 200 or None
    except requests.RequestException:
        return None


def matched_member(org, site, name: str, leader_id: str) -> tuple[dict, dict]:
    member = org.member(name, site["id"])
    match = eventually(lambda: (org.matching.get("/v1/matches", params={"member_id": member["id"]}).expect(200)["items"] or [None])[0],
                       timeout=60)
    leader = org.leader_client("matching", match["leader_id"])
    assert leader.post(f"/v1/matches/{match['id']}/accept").expect(200)["status"] == "active"
    return member, match


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_dump_and_restore_into_a_fresh_platform(tmp_path):
    zone = "America/Chicago"
    first = PlatformUnderTest.start(tmp_path / "first")
    try:
        with EventTap(first.bootstrap_servers, sorted(platform_topics())) as tap:
            org = Org(first, tap, Journal(), "backup")
            site = org.site("Lakeside", zone)
            leo = org.leader("Leo", [site["id"]])
            mark, match = matched_member(org, site, "Mark", leo["id"])
            facilitator = org.leader("Faye", [site["id"]])
            start = soon_local(72, zone)
            meeting = org.meeting({
                "site_id": site["id"], "facilitator_id": facilitator["id"], "name": f"Circle {org.tag}",
                "format": "discussion", "types": ["O"], "capacity": 10, "is_public": True,
                "attendance_mode": "in_person", "rrule": f"FREQ=WEEKLY;BYDAY={DAYS[start.weekday()]}",
                "first_start_local": start.isoformat(timespec="minutes"), "duration_minutes": 60})
            registration = org.register(meeting["id"], mark["id"])
            path = f"/v1/people/{mark['id']}/preferences"
            current = eventually(lambda: (lambda a: a if a.status_code == 200 else None)(org.notifications.get(path)), timeout=30)
            saved = org.notifications.put(path, json={"digest": True, "channels": {"sms": False}},
                                          headers={"If-Match": current.headers["ETag"]}).expect(200)
            before = {
                "match": org.matching.get(f"/v1/matches/{match['id']}").expect(200),
                "registrations": org.scheduling.get(f"/v1/meetings/{meeting['id']}/registrations").expect(200)["items"],
                "preferences": org.notifications.get(path).expect(200),
            }
        # every outbox entry published before the dump, so the comparison below is of settled state
        clients = {s: connect(first.mongo_uri(s)) for s in ("intake", "matching", "scheduling", "notifications")}
        eventually(lambda: all(outbox_backlog(client[f"recoverynet_{s}"]) == 0
                               for s, client in clients.items()) or None, timeout=30)
        for client in clients.values():
            client.close()
        said = backup(first, "dump", str(tmp_path / "dump"))
        assert "dumped" in said
    finally:
        first.stop()
    assert not list((tmp_path / "dump").glob("*/leases.jsonl")), "volatile collections are not dumped"

    second = PlatformUnderTest.start(tmp_path / "second")   # new database, new broker: nothing of the first
    try:
        # the documented procedure: stop the processes, restore into empty databases, start them again
        names = [name for name, _ in second.platform.processes if name != "mailcatcher"]
        for name in names:
            process = second.platform.process(name)
            process.terminate()
            process.wait(30)
        for service in ("intake", "matching", "scheduling", "notifications", "reporting", "console"):
            client = connect(second.mongo_uri(service))
            client.drop_database(f"recoverynet_{service}")   # set-up's indexes and the workers' first counters
            client.close()
        said = backup(second, "restore", str(tmp_path / "dump"))
        assert "restored" in said
        for name in names:
            second.platform.restart(name)
        for service in ("intake", "matching", "scheduling", "notifications"):
            eventually(lambda: ready(second.url(service)), timeout=60)
        refused = subprocess.run([sys.executable, "-m", "deploy.backup", "restore", str(tmp_path / "dump")],
                                 env=second.platform.environment("setup"), cwd=ROOT, capture_output=True, text=True)
        assert refused.returncode != 0 and "not empty" in refused.stderr + refused.stdout

        with EventTap(second.bootstrap_servers, sorted(platform_topics())) as tap:
            again = Org.__new__(Org)
            again.__dict__.update(org.__dict__)       # the same organization, now on the second platform
            again.platform, again.tap = second, tap
            again.admin_token = second.token(org.id, "admin")
            for service in ("intake", "matching", "scheduling", "notifications"):
                setattr(again, service, second.client(service, again.admin_token))
            assert again.matching.get(f"/v1/matches/{match['id']}").expect(200) == before["match"]
            assert again.scheduling.get(f"/v1/meetings/{meeting['id']}/registrations").expect(200)["items"] == before["registrations"]
            assert again.notifications.get(path).expect(200) == before["preferences"]
            assert before["preferences"]["digest"] is True and saved["version"] == before["preferences"]["version"]
            assert registration["id"] in {r["id"] for r in before["registrations"]}

            # the restored platform works: matching's restored read model knows the site and Leo, so a new
            # member is proposed a match, and scheduling's knows the meeting
            nina, nina_match = matched_member(again, site, "Nina", leo["id"])
            assert nina_match["leader_id"] in {leo["id"], facilitator["id"]}
            again.register(meeting["id"], nina["id"])
            listed = again.scheduling.get(f"/v1/meetings/{meeting['id']}/registrations").expect(200)["items"]
            assert {mark["id"], nina["id"]} <= {r["member_id"] for r in listed}
    finally:
        second.stop()
