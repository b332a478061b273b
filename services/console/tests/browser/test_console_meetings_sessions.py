"""Meetings and Sessions in the console (issue 16, area 3), in a real browser: what a coordinator sees,
found by roles and labels. The site is in America/Chicago; every time on these pages is the site's."""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from shared.testing import eventually

ALL_DAYS = [{"day": d, "start": "08:00", "end": "22:00"} for d in range(7)]
CERTIFIED = [{"name": "Certified Peer Recovery Specialist", "issuer": "State board", "expires_on": "2031-01-01"}]
CHICAGO = ZoneInfo("America/Chicago")
WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@pytest.fixture
def people(platform, organization):
    """A peer leader and two members at the organization's site, and a coordinator's token for it."""
    org_id, site, intake = organization
    tag = uuid.uuid4().hex[:6]
    leader = intake.post("/v1/leaders", json={
        "first_name": "Lena", "last_name": f"Leader{tag}", "email": f"lena.{tag}@example.org", "site_ids": [site["id"]],
        "languages": ["en"], "availability": ALL_DAYS, "capacity": 3, "certifications": CERTIFIED}).expect(201)
    members = [intake.post("/v1/members", json={
        "first_name": first, "last_name": f"Member{tag}", "email": f"{first.lower()}.{tag}@example.org",
        "site_id": site["id"], "languages": ["en"], "availability": ALL_DAYS, "date_of_birth": "1988-04-17",
        "consents": [{"purpose": "matching"}, {"purpose": "notify:email"}]}).expect(201) for first in ("Mara", "Nico")]
    token = platform.token(org_id, "coordinator", sites=[site["id"]])
    return {"org_id": org_id, "site": site, "leader": leader, "members": members, "tag": tag, "token": token,
            "scheduling": platform.client("scheduling", platform.token(org_id, "admin"))}


def _eventually_created(call):
    """Scheduling hears of people intake just registered through events: "not yet known" until then."""
    def attempt():
        answer = call()
        if answer.status_code == 422 and "not-yet-known" in answer.text:
            return None
        return answer.expect(201)
    return eventually(attempt, timeout=30, interval=0.3)


def _meeting_started_an_hour_ago(people, registered: list[dict]) -> dict:
    now = datetime.now(CHICAGO) - timedelta(hours=1)
    meeting = _eventually_created(lambda: people["scheduling"].post("/v1/meetings", json={
        "name": f"Evening circle {people['tag']}", "site_id": people["site"]["id"], "facilitator_id": people["leader"]["id"],
        "capacity": 10, "attendance_mode": "in_person", "rrule": f"FREQ=WEEKLY;BYDAY={WEEKDAY_CODES[now.weekday()]}",
        "first_start_local": now.strftime("%Y-%m-%dT%H:%M"), "duration_minutes": 120}))
    for member in registered:
        _eventually_created(lambda m=member: people["scheduling"].post(
            f"/v1/meetings/{meeting['id']}/registrations", json={"member_id": m["id"]}))
    return meeting


def test_a_coordinator_creates_a_weekly_meeting_and_sees_it_in_the_week_in_the_sites_zone(
        page, people, sign_in_as, assert_accessible, assert_fits):
    sign_in_as(page, people["token"], "coordinator", people["org_id"])
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Meetings").click()
    expect(page.get_by_role("heading", name="Meetings", level=1)).to_be_visible()
    expect(page.get_by_text("Times are in the site's time zone: America/Chicago.")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="Create a meeting").click()
    expect(page.get_by_role("heading", name="Create a meeting", level=1)).to_be_visible()
    assert_accessible(page)

    # a missing name is named next to its field
    page.get_by_label("Name").fill("")
    page.get_by_role("button", name="Create the meeting").click()
    expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Name")).to_have_accessible_description("Give the meeting a name.")
    assert_accessible(page)

    name = f"Thursday circle {people['tag']}"
    page.get_by_label("Name").fill(name)
    page.get_by_label("Peer leader who leads it").select_option(label=f"Lena Leader{people['tag']}")
    page.get_by_label("Day of the week").select_option(label="Thursday")
    page.get_by_label("Start time").fill("19:30")
    page.get_by_label("Length in minutes").fill("90")
    page.get_by_label("Seats").fill("12")
    page.get_by_label("Discussion").check()
    page.get_by_label("In person", exact=True).check()

    def created():
        page.get_by_role("button", name="Create the meeting").click()
        return page.get_by_role("heading", name="Meetings", level=1).is_visible()

    eventually(created, timeout=30, interval=0.5, message="the meeting created (scheduling hears of the leader)")
    expect(page.get_by_role("status")).to_contain_text(f"{name} is on the calendar")
    thursday = page.get_by_role("listitem").filter(has=page.get_by_role("heading", name=re.compile("^Thursday")))
    card = thursday.get_by_role("listitem").filter(has_text=name)
    expect(card).to_contain_text("19:30–21:00")
    expect(card).to_contain_text("America/Chicago")
    assert_accessible(page)
    assert_fits(page)

    page.get_by_role("link", name="Next week").click()
    expect(page.get_by_role("listitem").filter(has_text=name).last).to_contain_text("19:30–21:00")


def test_a_coordinator_registers_a_member_by_name(page, people, sign_in_as, assert_accessible):
    meeting = _meeting_started_an_hour_ago(people, [])
    mara = people["members"][0]
    sign_in_as(page, people["token"], "coordinator", people["org_id"])
    page.goto("/meetings")
    page.get_by_role("link", name=meeting["name"]).first.click()
    expect(page.get_by_role("heading", name=meeting["name"], level=1)).to_be_visible()
    expect(page.get_by_text("Nobody is registered yet. Register a member below.")).to_be_visible()
    assert_accessible(page)

    page.get_by_label("Member", exact=True).select_option(label=f"Mara Member{people['tag']}")
    page.get_by_role("button", name="Register", exact=True).click()

    def registered():
        if page.get_by_text("still taking in").count():   # scheduling has not heard of Mara yet: again
            page.get_by_label("Member", exact=True).select_option(label=f"Mara Member{people['tag']}")
            page.get_by_role("button", name="Register", exact=True).click()
            return False
        return page.get_by_role("region", name="Registered").get_by_text(f"Mara Member{people['tag']}").is_visible()

    eventually(registered, timeout=30, interval=0.5, message="Mara registered")
    expect(page.get_by_role("status")).to_contain_text(f"Mara Member{people['tag']} is registered.")
    assert mara["id"] not in page.content()  # names, never ids
    assert_accessible(page)


def test_attendance_on_a_phone_in_a_few_taps(new_page, people, sign_in_as, assert_accessible, assert_fits):
    mara, nico = people["members"]
    meeting = _meeting_started_an_hour_ago(people, [mara, nico])
    page = new_page(width=360, height=740)
    sign_in_as(page, people["token"], "coordinator", people["org_id"])
    page.goto("/meetings")
    page.get_by_role("link", name=meeting["name"]).first.click()
    page.get_by_role("link", name="Take attendance").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Attendance: {meeting['name']}")
    assert_accessible(page)
    assert_fits(page)

    mara_box = page.get_by_role("checkbox", name=f"Mara Member{people['tag']}")
    box = mara_box.bounding_box()
    assert box and box["height"] >= 24 and box["width"] >= 24, box   # a big tap target
    mara_box.check()
    page.get_by_role("button", name="Save attendance").click()

    expect(page.get_by_role("status")).to_contain_text("Attendance saved: 1 of 2 here.")
    page.reload()
    expect(page.get_by_role("checkbox", name=f"Mara Member{people['tag']}")).to_be_checked()
    expect(page.get_by_role("checkbox", name=f"Nico Member{people['tag']}")).not_to_be_checked()
    saved = people["scheduling"].get(f"/v1/meetings/{meeting['id']}/occurrences/"
                                     f"{page.url.split('/occurrences/')[1].split('/')[0]}/attendance").expect(200)
    assert saved["present_member_ids"] == [mara["id"]] and saved["absent_member_ids"] == [nico["id"]]
    assert_accessible(page)
    assert_fits(page)


def test_a_coordinator_books_a_suggested_session_time_and_one_outside_their_usual_times(
        page, platform, people, sign_in_as, assert_accessible, assert_fits):
    org_id, leader = people["org_id"], people["leader"]
    matching = platform.client("matching", platform.token(org_id, "admin"))
    member = people["members"][0]
    match = eventually(lambda: (matching.get("/v1/matches", params={"member_id": member["id"]}).expect(200)["items"] or [None])[0],
                       timeout=60, interval=0.5, message="a proposal for Mara")
    if match["leader_id"] != leader["id"] or match["status"] != "proposed":
        pytest.fail(f"expected Mara proposed to Lena: {match}")
    platform.client("matching", platform.token(org_id, "leader", leader_id=leader["id"])).post(
        f"/v1/matches/{match['id']}/accept").expect(200)
    scheduling = people["scheduling"]
    eventually(lambda: scheduling.get(f"/v1/matches/{match['id']}/suggestions").status_code == 200
               and scheduling.get(f"/v1/matches/{match['id']}/suggestions").expect(200)["suggestions"], timeout=30, interval=0.5)

    sign_in_as(page, people["token"], "coordinator", org_id)
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sessions").click()
    assert_accessible(page)
    page.get_by_role("link", name=f"Mara Member{people['tag']}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Sessions of Mara Member{people['tag']}")
    expect(page.get_by_text("Times are in America/Chicago.")).to_be_visible()
    assert_accessible(page)
    assert_fits(page)

    suggested = page.get_by_role("group", name=re.compile("Suggested times")).get_by_role("radio")
    first = suggested.first
    label = page.locator(f"label[for='{first.get_attribute('id')}']").inner_text()
    first.check()
    page.get_by_role("button", name="Book this session").click()
    expect(page.get_by_role("status")).to_contain_text("The session is booked for")
    booked = page.get_by_role("region", name="Booked sessions")
    expect(booked).to_contain_text(label)

    # another time, at 03:00 (outside both people's 08:00-22:00): offered "Book anyway" only after the refusal
    expect(page.get_by_label("Book anyway, outside their usual times")).to_have_count(0)
    day = (datetime.now(CHICAGO) + timedelta(days=3)).date().isoformat()
    page.get_by_label("Another time", exact=True).check()
    page.get_by_label("Date (for another time)").fill(day)
    page.get_by_label("Start time (America/Chicago)", exact=True).fill("03:00")
    page.get_by_role("button", name="Book this session").click()
    expect(page.get_by_text("This time is outside the usual times of the member or the peer leader.")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Book anyway, outside their usual times").check()
    page.get_by_role("button", name="Book this session").click()
    expect(page.get_by_role("status")).to_contain_text("03:00")
    expect(booked.get_by_text("Outside their usual times")).to_be_visible()
    assert_accessible(page)
