"""A peer leader says they are stretched (issue 17): the coordinators of every site of theirs are told
privately (email and in-app), nobody else; when the leader lifts it their coordinators hear it, and when staff
lift it the leader does. Through the real broker, database and mail catcher."""
from __future__ import annotations

import pytest

from shared.events import intake
from shared.testing import eventually
from shared.testing.events import publish

pytestmark = pytest.mark.timeout(240)


def test_the_coordinators_of_the_leaders_sites_are_told_privately(people, mail, kafka_bootstrap, db, org_id):
    leader = people.contact("leader", site_ids=("site-a", "site-b"))
    here = people.coordinator("site-a")
    there = people.coordinator("site-b")
    elsewhere = people.coordinator("site-c")
    sites = {"site_ids": ["site-a", "site-b"], "leader_id": leader["person_id"], "organization_id": org_id}

    said = publish(kafka_bootstrap, intake.LeaderStretched, {**sites, "since": "2026-11-30T06:00:00+00:00"})
    for coordinator in (here, there):
        got = eventually(lambda c=coordinator: mail.messages(to=c["email"]), timeout=60)
        assert got[0]["subject"] == "A peer leader at your site says they are stretched"
        assert "New members are not proposed to them until the pause is lifted" in got[0]["text"]
    inapp = eventually(lambda: db.deliveries.find_one({"source_event_id": said.id, "channel": "inapp",
                                                       "recipient_id": here["person_id"]}), timeout=30)
    assert inapp["template"] == "leader_stretched"
    told = {d["recipient_id"] for d in db.deliveries.find({"source_event_id": said.id})}
    assert told == {here["person_id"], there["person_id"]}
    assert mail.messages(to=elsewhere["email"]) == [] and mail.messages(to=leader["email"]) == []

    # the leader lifts it: their coordinators hear it; staff lift it: the leader hears it
    mine = publish(kafka_bootstrap, intake.LeaderStretchLifted, {**sites, "lifted_by_role": "leader"})
    ready = eventually(lambda: [m for m in mail.messages(to=here["email"]) if "ready for new members" in m["subject"]],
                       timeout=60)
    assert ready[0]["subject"] == "A peer leader is ready for new members again"
    assert {d["recipient_id"] for d in db.deliveries.find({"source_event_id": mine.id})} == {here["person_id"],
                                                                                            there["person_id"]}
    publish(kafka_bootstrap, intake.LeaderStretchLifted, {**sites, "lifted_by_role": "coordinator"})
    back = eventually(lambda: mail.messages(to=leader["email"]), timeout=60)
    assert back[0]["subject"] == "New members can be proposed to you again"
