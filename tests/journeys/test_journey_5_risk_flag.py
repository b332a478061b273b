"""Journey 5: a screening with a positive risk result reaches the site coordinator at once, even in quiet
hours (while an ordinary message to someone in quiet hours waits)."""
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from shared.testing import eventually


def quiet_now(zone: str) -> dict:
    """Quiet hours around the current local time in ``zone``."""
    local = datetime.now(timezone.utc).astimezone(ZoneInfo(zone))
    return {"start": (local - timedelta(hours=1)).strftime("%H:%M"), "end": (local + timedelta(hours=2)).strftime("%H:%M")}


def set_quiet_hours(org, person_id: str, zone: str) -> None:
    path = f"/v1/people/{person_id}/preferences"
    current = org.notifications.get(path)
    current.expect(200)
    saved = org.notifications.put(path, json={"quiet_hours": quiet_now(zone)},
                                  headers={"If-Match": current.headers["ETag"]}).expect(200)
    assert saved["quiet_hours"]


@pytest.mark.timeout(180)
def test_journey_5_positive_screening_reaches_coordinator_at_once_in_quiet_hours(new_org, helpers):
    org = new_org("journey 5 risk")
    zone = "Asia/Tokyo"
    site = org.site("Harbor", zone)
    sam = org.coordinator("Sam", [site["id"]])
    lia = org.leader("Lia", [site["id"]])
    # both are in their quiet hours now (the directory must know them before preferences can be set)
    helpers.eventually(lambda: org.notifications.get(f"/v1/people/{sam['id']}/preferences").expect(200)["time_zone"],
                       timeout=30)
    helpers.eventually(lambda: org.notifications.get(f"/v1/people/{lia['id']}/preferences").expect(200)["time_zone"],
                       timeout=30)
    set_quiet_hours(org, sam["id"], zone)
    set_quiet_hours(org, lia["id"], zone)
    coordinators = org.notifications.get(f"/v1/sites/{site['id']}/coordinators").expect(200)
    assert sam["id"] in str(coordinators)

    member = org.member("Theo", site["id"])
    screened_at = time.monotonic()
    screening = org.intake.post(f"/v1/members/{member['id']}/screenings", json={"instrument": "PHQ-2", "answers": [3, 2]})
    result = screening.expect(201)
    assert result["flagged"] is True and result["band"] == "positive"

    flagged = org.wait_event("risk_flagged", member_id=member["id"])[0]
    assert flagged.data["site_id"] == site["id"]
    urgent = org.wait_mail(sam["email"], lambda m: m["subject"].startswith("URGENT"), timeout=30)
    assert time.monotonic() - screened_at < 30, "the coordinator is told at once"
    assert len(urgent) == 1

    def alerts_recorded():  # a delivery is recorded with the rest of its batch just after the server took it
        alerts = [d for d in org.deliveries(recipient_id=sam["id"]) if d["template"] == "risk_flagged"]
        assert alerts and all(d["status"] != "sending" for d in alerts), alerts
        return alerts
    alerts = helpers.eventually(alerts_recorded, timeout=30)
    assert [(d["priority"], d["status"], d["held_until"]) for d in alerts] == [("urgent", "delivered", None)] * len(alerts)
    # the member's identity is not in the alert's subject, and the alert names no one but the coordinator
    assert member["first_name"] not in urgent[0]["subject"]

    # meanwhile an ordinary message to someone in quiet hours waits: Lia's match proposal is held
    org.wait_event("match.proposed", member_id=member["id"])
    held = helpers.eventually(lambda: [d for d in org.deliveries(recipient_id=lia["id"]) if d["status"] == "held"],
                              timeout=30)
    assert held[0]["template"] == "match_proposed" and held[0]["held_until"]
    assert not org.mail(lia["email"])
    # the member (not in quiet hours) has theirs
    org.wait_mail(member["email"], lambda m: m["subject"] == "We found a peer leader for you")


@pytest.mark.timeout(120)
def test_journey_5_risk_flag_at_a_site_without_coordinator_reaches_the_coordinator_named_later(new_org, helpers):
    """No coordinator yet (or their CoordinatorAssigned, on another topic, arrives after the flag): the
    failure is visible at once, and the coordinator named for the site is told when they are known."""
    org = new_org("journey 5 risk, coordinator later")
    site = org.site("Quayside", "Europe/Dublin")
    member = org.member("Ula", site["id"], consents=("notify:email",))
    org.intake.post(f"/v1/members/{member['id']}/screenings", json={"instrument": "PHQ-2", "answers": [3, 3]}).expect(201)
    failed = org.wait_event("delivery.failed", recipient_id=f"coordinators-of:{site['id']}")[0]
    assert "no coordinator" in failed.data["reason"]

    zoe = org.coordinator("Zoe", [site["id"]])
    urgent = org.wait_mail(zoe["email"], lambda m: m["subject"].startswith("URGENT"), timeout=30)
    assert len(urgent) == 1

    def told_and_recorded():  # a delivery is recorded with the rest of its batch just after the server took it
        told = [d for d in org.deliveries(recipient_id=zoe["id"]) if d["template"] == "risk_flagged"]
        assert all(d["status"] in ("delivered", "cancelled") for d in told), told
        return told
    told = eventually(told_and_recorded, timeout=30)
    assert {d["source_event_id"] for d in told} == {failed.data["source_event_id"]}
    assert all(d["priority"] == "urgent" for d in told), told
    assert [d["status"] for d in told if d["channel"] == "email"] == ["delivered"]
