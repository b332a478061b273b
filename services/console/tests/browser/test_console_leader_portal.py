"""The peer leader's portal (issue 17, area 5) in a real browser on a phone (375x812): a leader signs in by
the emailed link, accepts a proposal (with why, in sentences), books a session with the new member from the
suggested times, takes attendance at the meeting they facilitate, goes on leave and sees their members pass
to another peer leader. Every page: axe clean, no horizontal scroll at 360 px, no member not matched with them."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect

from shared.testing import eventually

ALL_DAYS = [{"day": d, "start": "08:00", "end": "22:00"} for d in range(7)]
CERTIFIED = [{"name": "Certified Peer Recovery Specialist", "issuer": "State board", "expires_on": "2031-01-01"}]
CHICAGO = ZoneInfo("America/Chicago")
WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
LINK = re.compile(r"https?://[^\s\"'<>]+/sign-in/callback\?code=[^\s\"'<>]+")


def ask_for_link(page, email: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your email", level=1)).to_be_visible()


def link_from_mail(platform, email: str) -> str:
    """The sign-in link from the leader's mail (they also get other mail, such as a new proposal)."""
    def arrived():
        links = [found.group(0) for m in platform.mail(to=email) if (found := LINK.search(m.get("text") or ""))]
        assert links, f"no sign-in email for {email} yet"
        return links[-1]

    return eventually(arrived, timeout=30, interval=0.3)


def _leader(intake, site_id, first, tag):
    return intake.post("/v1/leaders", json={
        "first_name": first, "last_name": f"Leader{tag}", "email": f"{first.lower()}.{tag}@example.org",
        "site_ids": [site_id], "languages": ["en"], "availability": ALL_DAYS, "capacity": 3,
        "time_zone": "America/Chicago", "certifications": CERTIFIED}).expect(201)


def _created(call):
    def attempt():
        answer = call()
        if answer.status_code == 422 and "not-yet-known" in answer.text:
            return None
        return answer.expect(201)
    return eventually(attempt, timeout=30, interval=0.3)


def _check(page, assert_accessible, assert_fits):
    assert_accessible(page)
    page.set_viewport_size({"width": 360, "height": 812})
    assert_fits(page)
    page.set_viewport_size({"width": 375, "height": 812})


def test_a_leaders_journey_on_a_phone(new_page, platform, organization, assert_accessible, assert_fits):
    org_id, site, intake = organization
    tag = uuid.uuid4().hex[:6]
    lena = _leader(intake, site["id"], "Lena", tag)
    admin_matching = platform.client("matching", platform.token(org_id, "admin"))
    mara = intake.post("/v1/members", json={
        "first_name": "Mara", "last_name": f"Member{tag}", "email": f"mara.{tag}@example.org", "site_id": site["id"],
        "languages": ["en"], "availability": ALL_DAYS, "date_of_birth": "1988-04-17",
        "consents": [{"purpose": "matching"}, {"purpose": "notify:email"}]}).expect(201)

    def proposed_to(leader_id):
        found = admin_matching.get("/v1/matches", params={"member_id": mara["id"], "status": "proposed"}).expect(200)
        assert [m["leader_id"] for m in found["items"]] == [leader_id], found
        return True
    eventually(lambda: proposed_to(lena["id"]), timeout=60, interval=0.5, message="Mara proposed to Lena")
    lena_intake = platform.client("intake", platform.token(org_id, "leader", leader_id=lena["id"], sites=[site["id"]]))
    eventually(lambda: len(lena_intake.get("/v1/me/members").expect(200)) == 1 or None, timeout=30, interval=0.3,
               message="intake knows the proposal")

    # someone registered for Lena's meeting who is not matched with her: never named to her
    nico = intake.post("/v1/members", json={
        "first_name": "Nicodemus", "last_name": f"Other{tag}", "email": f"nico.{tag}@example.org", "site_id": site["id"],
        "languages": ["fr"], "date_of_birth": "1990-01-01", "consents": [{"purpose": "notify:email"}]}).expect(201)
    scheduling = platform.client("scheduling", platform.token(org_id, "admin"))
    began = datetime.now(CHICAGO) - timedelta(hours=1)
    meeting_name = f"Evening circle {tag}"
    meeting = _created(lambda: scheduling.post("/v1/meetings", json={
        "name": meeting_name, "site_id": site["id"], "facilitator_id": lena["id"], "capacity": 10,
        "attendance_mode": "in_person", "rrule": f"FREQ=WEEKLY;BYDAY={WEEKDAY_CODES[began.weekday()]}",
        "first_start_local": began.strftime("%Y-%m-%dT%H:%M"), "duration_minutes": 180}))
    for member in (mara, nico):
        _created(lambda m=member: scheduling.post(f"/v1/meetings/{meeting['id']}/registrations", json={"member_id": m["id"]}))

    page = new_page(width=375, height=812)
    ask_for_link(page, lena["email"])
    page.goto(link_from_mail(platform, lena["email"]))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Welcome, Lena", level=1)).to_be_visible()
    expect(page.get_by_text("Times on your pages are in your time zone: America/Chicago.")).to_be_visible()
    proposals = page.get_by_role("region", name="New proposals")
    expect(proposals.get_by_role("heading", name="Mara")).to_be_visible()
    expect(proposals.get_by_text("You both speak English.")).to_be_visible()
    expect(page.get_by_text("Nicodemus")).to_have_count(0)
    _check(page, assert_accessible, assert_fits)

    proposals.get_by_role("button", name="Accept Mara").click()
    expect(page.get_by_role("status")).to_contain_text("You accepted.")
    members = page.get_by_role("region", name="My members")
    members.get_by_role("link", name="Mara").click()

    expect(page.get_by_role("heading", name="Mara", level=1)).to_be_visible()
    expect(page.get_by_text("Not shared with you.", exact=False)).to_be_visible()
    _check(page, assert_accessible, assert_fits)
    book = page.get_by_role("region", name="Book a session")
    expect(book.get_by_role("radio").first).to_be_checked()
    chosen = book.get_by_role("radio").first.evaluate("r => r.labels[0].textContent")
    book.get_by_role("button", name="Book this session").click()
    expect(page.get_by_role("status")).to_contain_text("Booked for")
    booked = page.get_by_role("region", name="Booked sessions")
    expect(booked.get_by_text(chosen.strip())).to_be_visible()
    assert "(America/Chicago)" in chosen
    _check(page, assert_accessible, assert_fits)

    page.get_by_role("link", name="Back to home").click()
    week = page.get_by_role("region", name="My week")
    expect(week.get_by_text("Session with Mara")).to_be_visible()
    week.get_by_role("link", name=f"Take attendance: {meeting_name}").click()
    expect(page.get_by_role("heading", name=f"Attendance: {meeting_name}", level=1)).to_be_visible()
    expect(page.get_by_text("Nicodemus")).to_have_count(0)
    expect(page.get_by_role("checkbox", name="Registered person 1")).to_be_visible()
    _check(page, assert_accessible, assert_fits)
    page.get_by_role("checkbox", name="Mara").check()
    page.get_by_role("button", name="Save attendance").click()
    expect(page.get_by_role("status")).to_contain_text("Attendance saved: 1 of 2 here.")
    expect(page.get_by_role("checkbox", name="Mara")).to_be_checked()
    taken = scheduling.get(f"/v1/meetings/{meeting['id']}/occurrences/"
                           f"{page.url.rstrip('/').split('/')[-1]}/attendance").expect(200)
    assert taken["present_member_ids"] == [mara["id"]]

    # another peer leader joins; Lena goes on leave and sees Mara pass to them
    omar = _leader(intake, site["id"], "Omar", tag)
    page.get_by_role("link", name="Back to home").click()
    page.get_by_role("link", name="My details, availability and calendar link").click()
    expect(page.get_by_role("heading", name="My details", level=1)).to_be_visible()
    expect(page.get_by_text("Valid until")).to_be_visible()
    page.get_by_role("button", name="Make my calendar link").click()
    expect(page.get_by_label("Your calendar link (copy it into your calendar app)")).to_have_value(
        re.compile(rf"/v1/feeds/{org_id}/leaders/{lena['id']}/calendar\.ics\?token="))
    _check(page, assert_accessible, assert_fits)
    expect(page.get_by_role("region", name="Taking a break")).to_contain_text("passes your members to other peer leaders")
    page.get_by_role("button", name="Go on leave").click()
    expect(page.get_by_role("status")).to_contain_text("You are on leave.")
    expect(page.get_by_role("region", name="My members").get_by_text(
        "While you are on leave, your members are supported by other peer leaders.")).to_be_visible()
    expect(page.get_by_role("link", name="Mara")).to_have_count(0)
    _check(page, assert_accessible, assert_fits)
    eventually(lambda: proposed_to(omar["id"]), timeout=60, interval=0.5, message="Mara re-proposed to Omar")
    eventually(lambda: lena_intake.get("/v1/me/members").expect(200) == [] or None, timeout=30, interval=0.3,
               message="intake hears the match ended")
    page.reload()
    expect(page.get_by_role("link", name="Mara")).to_have_count(0)
