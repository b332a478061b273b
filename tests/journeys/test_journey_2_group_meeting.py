"""Journey 2: a weekly group meeting is created, members register past capacity, the waitlist moves when
someone cancels, an occurrence is cancelled and its registrants are told; reminders arrive once each.

The meeting starts in three days (no reminder is due while seats change hands); then its first occurrence
is moved to a little under 24 hours from now, so its 24-hour reminder (default offsets 1440,60 minutes)
is due at the reminder job's next run (every 60 s by default)."""
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@pytest.mark.timeout(240)
def test_journey_2_weekly_meeting_waitlist_cancellation_and_reminders(new_org, helpers):
    org = new_org("journey 2 group meeting")
    zone = "America/New_York"
    site = org.site("Riverside", zone)
    facilitator = org.leader("Faye", [site["id"]])
    # members who only asked for email (no matching consent: this journey is about meetings)
    members = [org.member(name, site["id"], consents=("notify:email",)) for name in ("Mia", "Noah", "Olga", "Pete")]
    mia, noah, olga, pete = members

    first = helpers.soon_local(72, zone)
    meeting = org.meeting({
        "site_id": site["id"], "facilitator_id": facilitator["id"], "name": f"Tuesday Circle {org.tag}",
        "format": "discussion", "types": ["O", "D"], "capacity": 2, "is_public": True,
        "attendance_mode": "in_person", "rrule": f"FREQ=WEEKLY;BYDAY={DAYS[first.weekday()]}",
        "first_start_local": first.isoformat(timespec="minutes"), "duration_minutes": 60})
    org.wait_event("meeting.created", meeting_id=meeting["id"])

    # registrations past capacity: two seats, then a waiting list in order
    regs = {}
    for member in members:
        regs[member["id"]] = org.register(meeting["id"], member["id"])
    assert [regs[m["id"]]["status"] for m in members] == ["registered", "registered", "waitlisted", "waitlisted"]
    assert [regs[m["id"]]["waitlist_position"] for m in (olga, pete)] == [1, 2]

    # someone cancels: the first on the waiting list gets the seat, the next moves up
    org.scheduling.delete(f"/v1/meetings/{meeting['id']}/registrations/{regs[mia['id']]['id']}").expect(200, 204)
    promoted = org.wait_event("registration.promoted", meeting_id=meeting["id"])
    assert [e.data["member_id"] for e in promoted] == [olga["id"]]
    listing = org.scheduling.get(f"/v1/meetings/{meeting['id']}/registrations").expect(200)["items"]
    status = {r["member_id"]: (r["status"], r["waitlist_position"]) for r in listing}
    assert status == {noah["id"]: ("registered", None), olga["id"]: ("registered", None), pete["id"]: ("waitlisted", 1)}

    # the second occurrence is cancelled: its registrants are told
    now = datetime.now(timezone.utc)
    occurrences = org.scheduling.get(f"/v1/meetings/{meeting['id']}/occurrences", params={
        "from": now.isoformat(), "to": (now + timedelta(days=15)).isoformat()}).expect(200)
    occurrences = occurrences["items"] if isinstance(occurrences, dict) else occurrences
    assert occurrences[0]["local_start"].startswith(first.isoformat(timespec="minutes"))
    assert occurrences[0]["seats_left"] == 0
    first_occurrence, second = occurrences[0], occurrences[1]
    org.scheduling.post(f"/v1/meetings/{meeting['id']}/occurrences/{second['occurrence_id']}/cancel",
                        json={"reason": "The room is being painted"}).expect(200)
    cancelled = org.wait_event("occurrence.cancelled", meeting_id=meeting["id"])[0]
    assert {noah["id"], olga["id"]} <= set(cancelled.data["registrant_ids"])
    assert mia["id"] not in cancelled.data["registrant_ids"]
    for member in (noah, olga):
        org.wait_mail(member["email"], lambda m: "cancel" in m["subject"].lower() and meeting["name"] in m["subject"])

    # the first occurrence is moved to tomorrow: its registrants are told
    moved_to = (datetime.now(timezone.utc) + timedelta(hours=23, minutes=15)).replace(second=0, microsecond=0)
    org.scheduling.post(f"/v1/meetings/{meeting['id']}/occurrences/{first_occurrence['occurrence_id']}/move",
                        json={"start": moved_to.isoformat(), "reason": "Holiday week"}).expect(200)
    moved = org.wait_event("occurrence.moved", meeting_id=meeting["id"])[0]
    assert {noah["id"], olga["id"]} <= set(moved.data["registrant_ids"]) and mia["id"] not in moved.data["registrant_ids"]
    for member in (noah, olga):
        org.wait_mail(member["email"], lambda m: "moved" in m["subject"].lower() and meeting["name"] in m["subject"])

    # reminders of the moved occurrence: the facilitator and the two seated members, once each
    reminders = org.wait_event("reminder.due", meeting_id=meeting["id"], count=3, timeout=150)
    people = Counter((e.data["person_kind"], e.data["person_id"], e.data["offset_minutes"]) for e in reminders)
    assert people == Counter({("leader", facilitator["id"], 1440): 1, ("member", noah["id"], 1440): 1,
                              ("member", olga["id"], 1440): 1})
    for person in (facilitator, noah, olga):
        org.wait_mail(person["email"], lambda m: m["subject"].startswith("Reminder:"))

    # what each person received, in the end: what concerned them, once each
    def subjects(person):
        return Counter(m["subject"] for m in org.mail(person["email"]))

    def all_delivered():
        log = org.deliveries(channel="email")
        assert all(d["status"] == "delivered" for d in log), [(d["template"], d["status"]) for d in log]
        return log
    log = helpers.eventually(all_delivered, timeout=30)
    assert all(n == 1 for person in (facilitator, *members) for n in subjects(person).values())
    templates = Counter((d["recipient_id"], d["template"]) for d in log)
    assert templates[(mia["id"], "registration_created")] == 1 and templates[(mia["id"], "reminder")] == 0
    assert templates[(olga["id"], "registration_created")] == 1
    assert templates[(olga["id"], "registration_promoted")] == 1
    assert templates[(pete["id"], "reminder")] == 0, "a waitlisted member is not reminded"
    assert templates[(facilitator["id"], "reminder")] == 1
    assert all(n == 1 for n in templates.values()), templates
    waitlisted_mail = [m["subject"] for m in org.mail(pete["email"])]
    assert any("waiting list" in s for s in waitlisted_mail), waitlisted_mail
