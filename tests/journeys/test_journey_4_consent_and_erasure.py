"""Journey 4: a member revokes consent for matching and for email, then asks for erasure: the match ends,
no further email is sent, and afterwards no service holds their identifying data."""
from datetime import datetime, timedelta, timezone

import pytest

DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@pytest.mark.timeout(180)
def test_journey_4_consent_revoked_then_erasure(new_org, helpers):
    org = new_org("journey 4 consent and erasure")
    zone = "Europe/London"
    site = org.site("Northgate", zone)
    uma = org.leader("Uma", [site["id"]])
    wes = org.member("Wes", site["id"], phone="+442079460123", pronouns="he/him")
    vic = org.member("Vic", site["id"], consents=("notify:email",))

    # Wes is matched with Uma, has a session booked, and a seat in a weekly meeting (with Vic)
    match_id = org.wait_event("match.proposed", member_id=wes["id"])[0].data["match_id"]
    org.leader_client("matching", uma["id"]).post(f"/v1/matches/{match_id}/accept").expect(200)
    org.wait_event("session.times_suggested", match_id=match_id)
    slot = org.scheduling.get(f"/v1/matches/{match_id}/suggestions").expect(200)["suggestions"][-1]
    session = org.scheduling.post("/v1/sessions", json={"match_id": match_id, "start": slot["start"],
                                                        "on_behalf_of": "member"}).expect(201)
    first = helpers.soon_local(72, zone)
    meeting = org.meeting({
        "site_id": site["id"], "facilitator_id": uma["id"], "name": f"Evening Circle {org.tag}", "capacity": 10,
        "attendance_mode": "in_person", "rrule": f"FREQ=WEEKLY;BYDAY={DAYS[first.weekday()]}",
        "first_start_local": first.isoformat(timespec="minutes"), "duration_minutes": 60})
    for member in (wes, vic):
        org.register(meeting["id"], member["id"])
    org.wait_mail(wes["email"], lambda m: "Evening Circle" in m["subject"])

    # 1. matching consent revoked: the match ends (no new proposal), the session is cancelled, Wes is told
    org.intake.delete(f"/v1/members/{wes['id']}/consents/matching").expect(200, 204)
    ended = org.wait_event("match.ended", member_id=wes["id"])[0].data
    assert ended["match_id"] == match_id and ended["reason_code"] == "consent_revoked"
    assert ended["re_proposal_follows"] is False
    cancelled = org.wait_event("session.cancelled", session_id=session["id"])[0].data
    assert cancelled["member_id"] == wes["id"]
    org.wait_mail(wes["email"], lambda m: m["subject"] == "Your peer support match has ended")
    org.wait_mail(wes["email"], lambda m: "cancel" in m["subject"].lower())

    # 2. email consent revoked: once notifications knows, nothing more reaches Wes by email
    org.intake.delete(f"/v1/members/{wes['id']}/consents/notify:email").expect(200, 204)
    helpers.eventually(lambda: "email" not in org.notifications.get(f"/v1/people/{wes['id']}/preferences")
                       .expect(200)["effective_channels"], timeout=30)
    helpers.eventually(lambda: all(d["status"] in ("delivered", "cancelled", "failed")
                                   for d in org.deliveries(recipient_id=wes["id"])), timeout=30)
    mail_before = len(org.mail(wes["email"]))
    occurrences = org.scheduling.get(f"/v1/meetings/{meeting['id']}/occurrences", params={
        "from": datetime.now(timezone.utc).isoformat(),
        "to": (datetime.now(timezone.utc) + timedelta(days=10)).isoformat()}).expect(200)
    occurrences = occurrences["items"] if isinstance(occurrences, dict) else occurrences
    org.scheduling.post(f"/v1/meetings/{meeting['id']}/occurrences/{occurrences[0]['occurrence_id']}/cancel",
                        json={"reason": "snow"}).expect(200)
    told = org.wait_event("occurrence.cancelled", meeting_id=meeting["id"])[0]
    assert wes["id"] in told.data["registrant_ids"]
    org.wait_mail(vic["email"], lambda m: "snow" in (m["text"] or "") or "cancel" in m["subject"].lower())
    wes_deliveries = helpers.eventually(lambda: [d for d in org.deliveries(recipient_id=wes["id"])
                                                 if d["source_event_id"] == told.id] or [{"status": "none"}])
    assert all(d.get("channel") != "email" or d["status"] == "cancelled" for d in wes_deliveries), wes_deliveries

    # 3. erasure
    org.intake.post(f"/v1/members/{wes['id']}/erasure", json={"reason": "asked to be forgotten"}).expect(200, 201, 202)
    erased = org.wait_event("member.erased", member_id=wes["id"])[0]
    assert set(erased.data) >= {"organization_id", "member_id"}

    # afterwards no service holds their identifying data
    assert org.intake.get(f"/v1/members/{wes['id']}").status_code == 410
    listing = org.intake.get("/v1/members", params={"site_id": site["id"], "limit": 200}).text
    for identifier in (wes["email"], '"Wes"', "+442079460123"):
        assert identifier not in listing
    # the email address and phone are free again (intake dropped them)
    again = org.member("Wes", site["id"], email=wes["email"], phone="+442079460123", consents=())
    assert again["id"] != wes["id"]
    # matching: no profile left, the past match keeps ids only
    helpers.eventually(lambda: org.matching.get(f"/v1/members/{wes['id']}/proposals").status_code == 404, timeout=30)
    past = org.matching.get(f"/v1/matches/{match_id}").expect(200)
    assert wes["email"] not in str(past) and wes["first_name"] not in str(past)
    assert org.matching.get("/v1/waitlist").text.count(wes["id"]) == 0
    # scheduling: registrations gone; his personal calendar is no more
    def registrations_gone():
        items = org.scheduling.get(f"/v1/meetings/{meeting['id']}/registrations").expect(200)["items"]
        assert wes["id"] not in {r["member_id"] for r in items} and vic["id"] in {r["member_id"] for r in items}
        return True
    helpers.eventually(registrations_gone, timeout=30)
    calendar = org.scheduling.get(f"/v1/feeds/{org.id}/members/{wes['id']}/calendar.ics")
    assert calendar.status_code in (404, 410) or "VEVENT" not in calendar.text
    # notifications: contact, preferences and inbox gone; the delivery log keeps ids only
    def directory_forgot():
        answer = org.notifications.get(f"/v1/people/{wes['id']}/preferences")
        assert answer.status_code in (404, 410) or not answer.json.get("time_zone"), answer.text
        return True
    helpers.eventually(directory_forgot, timeout=30)
    inbox = org.notifications.get(f"/v1/people/{wes['id']}/inbox")
    assert inbox.status_code in (404, 410) or not inbox.json["items"]
    log = org.notifications.get("/v1/deliveries", params={"recipient_id": wes["id"], "limit": 200}).text
    assert wes["email"] not in log and "+442079460123" not in log and wes["last_name"] not in log

    # no further email reached Wes after he revoked email consent
    assert len(org.mail(wes["email"])) == mail_before
