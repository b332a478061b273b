"""A coordinator's morning, end to end in one browser (issue 16's journey test): every step through the
console's own pages, found by roles and labels, on the whole platform started as ./deploy/up starts it.

1. sign in by the link emailed to them (read from the mail catcher), Continue, land on Today;
2. see a new member waiting for a peer leader on Today, with the reason (the page refreshes itself);
3. onboard another member from the form (their weekly times, consents given on paper);
4. see the proposal for them appear on Matching, and accept it on the member's behalf;
5. create a weekly meeting (today, starting in a few minutes, so attendance is open);
6. register the member on the meeting's day page, take attendance;
7. find the emails sent in Messages (the delivery log: to the member, proposed, confirmed, registered; and to
   the peer leader), and in the mail catcher. The sign-in email itself is not in a coordinator's log (it is
   staff's, not a site's); it is read from the mail catcher in step 1.

Set up through the APIs, not the console (they are not steps of the morning): the organization, its site and
the coordinator (intake's staff API: an admin's earlier invitation), one peer leader, and the member who was
already waiting (created by intake's API as a self-referral would be).

Matching proposes only a peer leader with weekly time in common (a hard rule): the onboarding form asks when
the member is free each week, and the coordinator says so there. Everything is the console's pages; the APIs
are only read at the end to confirm what the pages said.
"""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from shared.testing import eventually

LINK = re.compile(r"https?://[^\s\"'<>]+/sign-in/callback\?code=[^\s\"'<>]+")
ALL_DAYS = [{"day": d, "start": "00:00", "end": "23:59"} for d in range(7)]
CHICAGO = ZoneInfo("America/Chicago")  # the organization fixture's site
WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def _link_from_mail(platform, email: str) -> str:
    def arrived():
        messages = platform.mail(to=email)
        assert messages, f"no sign-in email for {email} yet"
        return messages[-1]

    found = LINK.search(eventually(arrived, timeout=30, interval=0.3).get("text") or "")
    assert found, "no sign-in link in the email"
    return found.group(0)


@pytest.mark.timeout(900)   # the platform's start on a loaded machine, then a dozen event-driven steps
def test_a_coordinators_morning(page, platform, organization, console_url, assert_accessible):
    org_id, site, intake = organization
    tag = uuid.uuid4().hex[:6]
    coordinator_email = f"marta.{tag}@example.org"
    intake.post("/v1/staff", json={"first_name": "Marta", "last_name": "Morning", "email": coordinator_email,
                                  "site_ids": [site["id"]]}).expect(201)
    leader = intake.post("/v1/leaders", json={
        "first_name": "Lena", "last_name": f"Leader{tag}", "email": f"lena.{tag}@example.org", "site_ids": [site["id"]],
        "languages": ["en"], "availability": ALL_DAYS, "capacity": 3,
        "certifications": [{"name": "Peer Recovery Specialist", "expires_on": "2031-01-01"}]}).expect(201)
    leader_name = f"Lena Leader{tag}"
    waiting_name = f"Claude Attend{tag}"   # nobody at the site speaks French: Claude waits
    intake.post("/v1/members", json={
        "first_name": "Claude", "last_name": f"Attend{tag}", "email": f"claude.{tag}@example.org", "site_id": site["id"],
        "languages": ["fr"], "availability": ALL_DAYS, "consents": [{"purpose": "matching"}]}).expect(201)

    # 1. sign in by the emailed link
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(coordinator_email)
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your email", level=1)).to_be_visible()
    link = _link_from_mail(platform, coordinator_email)
    assert link.startswith(console_url + "/sign-in/callback?code=")
    page.goto(link)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Today", level=1)).to_be_visible()

    # 2. the member who is waiting, on Today (the sections refresh themselves every few seconds)
    waiting = page.get_by_role("region", name="People waiting for a peer leader")
    expect(waiting.get_by_role("link", name=waiting_name)).to_be_visible(timeout=60_000)
    expect(waiting.get_by_role("listitem").filter(has_text=waiting_name)).to_contain_text("Waiting since")
    assert_accessible(page)

    # 3. onboard another member from the form
    first, last = "Rosa", f"Morning{tag}"
    member_name, member_email = f"{first} {last}", f"rosa.{tag}@example.org"
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Members").click()
    page.get_by_role("link", name="Onboard a member").click()
    expect(page.get_by_role("heading", name="Onboard a member", level=1)).to_be_visible()
    page.get_by_label("First name").fill(first)
    page.get_by_label("Last name (optional)").fill(last)
    page.get_by_label("Email address").fill(member_email)
    free = page.get_by_role("group", name="When they are free each week")
    for day in ("Monday", "Thursday"):
        free.get_by_role("group", name="Evenings (17:00–21:00)").get_by_label(day).check()
    page.get_by_label("being matched with a peer leader").check()
    page.get_by_label("messages by email").check()
    page.get_by_label("On a paper form").check()
    page.get_by_role("button", name="Onboard the member").click()
    expect(page.get_by_role("heading", name=member_name, level=1)).to_be_visible()
    expect(page.get_by_text(f"{member_name} is now a member.")).to_be_visible()
    expect(page.get_by_role("region", name="Profile")).to_contain_text("Monday evening, Thursday evening")
    member_id = page.url.rstrip("/").split("/members/")[1].split("?")[0]

    # 4. the proposal appears on Matching (matching hears of Rosa by event); accept it on her behalf
    proposals = page.get_by_role("region", name="Proposals waiting for an answer")

    def proposed():
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Matching").click()
        return proposals.get_by_role("listitem").filter(has_text=member_name).count() > 0

    eventually(proposed, timeout=60, interval=1, message=f"a proposal for {member_name} on Matching")
    card = proposals.get_by_role("listitem").filter(has_text=member_name).first
    expect(card).to_contain_text(f"{leader_name} for {member_name}")
    assert_accessible(page)
    card.get_by_role("button", name=f"Accept for {member_name}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Accepted for {member_name}: {leader_name} is now their peer leader.")
    expect(proposals.get_by_role("listitem").filter(has_text=member_name)).to_have_count(0)

    # 5. a weekly meeting, today, starting a few minutes from now (attendance opens 30 minutes before)
    starts = (datetime.now(CHICAGO) + timedelta(minutes=10)).replace(second=0, microsecond=0)
    meeting_name = f"Morning circle {tag}"
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Meetings").click()
    page.get_by_role("link", name="Create a meeting").click()
    expect(page.get_by_role("heading", name="Create a meeting", level=1)).to_be_visible()
    page.get_by_label("Name").fill(meeting_name)
    page.get_by_label("Peer leader who leads it").select_option(label=leader_name)
    page.get_by_label("Day of the week").select_option(WEEKDAY_CODES[starts.weekday()])
    page.get_by_label("Start time").fill(starts.strftime("%H:%M"))
    page.get_by_label("Starting from (optional)").fill(starts.date().isoformat())
    page.get_by_label("Length in minutes").fill("60")
    page.get_by_label("Seats").fill("12")
    page.get_by_label("In person", exact=True).check()

    def created():  # scheduling hears of the leader by event: "not yet known" until then
        page.get_by_role("button", name="Create the meeting").click()
        return page.get_by_role("heading", name="Meetings", level=1).is_visible()

    eventually(created, timeout=60, interval=1, message="the meeting created")
    expect(page.get_by_role("status")).to_contain_text(f"{meeting_name} is on the calendar")

    # 6. register Rosa on the day's page, then take attendance
    page.get_by_role("link", name=meeting_name).first.click()
    expect(page.get_by_role("heading", name=meeting_name, level=1)).to_be_visible()

    def registered():
        page.get_by_label("Member", exact=True).select_option(label=member_name)
        page.get_by_role("button", name="Register", exact=True).click()
        return page.get_by_role("region", name="Registered").get_by_text(member_name).count() > 0

    eventually(registered, timeout=60, interval=1, message=f"{member_name} registered")
    expect(page.get_by_role("status")).to_contain_text(f"{member_name} is registered.")
    assert_accessible(page)

    page.get_by_role("link", name="Take attendance").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Attendance: {meeting_name}")
    page.get_by_role("checkbox", name=member_name).check()
    page.get_by_role("button", name="Save attendance").click()
    expect(page.get_by_role("status")).to_contain_text("Attendance saved: 1 of 1 here.")
    expect(page.get_by_role("checkbox", name=member_name)).to_be_checked()
    assert_accessible(page)

    # 7. the emails sent, in the delivery log (notifications hears of each step by event)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Messages").click()
    expect(page.get_by_role("heading", name="Sent messages")).to_be_visible()
    sent = page.get_by_role("list", name="Sent messages").get_by_role("listitem")
    kinds = ("A peer leader was proposed", "A match was confirmed", "Registered for a meeting")

    def rosas_emails_logged():
        page.get_by_label("Member's name").fill(last)
        page.get_by_role("button", name="Show messages").click()
        texts = sent.filter(has_text=member_name).all_inner_texts()
        return all(any(kind in text and "Delivered" in text for text in texts) for kind in kinds)

    eventually(rosas_emails_logged, timeout=60, interval=1, message=f"the emails to {member_name}, delivered")
    # by email (a text message for the same step, cancelled, may be listed before it: same time, either order)
    for kind in kinds:
        expect(sent.filter(has_text=member_name).filter(has_text=kind).filter(has_text="Email").first).to_be_visible()
    # the peer leader was told too (the coordinator's log names staff and leaders without their names)
    page.get_by_role("link", name="Clear the filters").click()
    expect(sent.filter(has_text="To a peer leader").filter(has_text="A match was confirmed").filter(has_text="Email")
           .first).to_be_visible()
    assert_accessible(page)

    # ... and they did leave: the mail catcher has them
    eventually(lambda: len(platform.mail(to=member_email)) >= len(kinds), timeout=30, interval=0.5,
               message=f"emails to {member_email} in the mail catcher")

    # what the pages said is what the services hold
    admin = platform.token(org_id, "admin")
    match = platform.client("matching", admin).get("/v1/matches", params={"member_id": member_id}).expect(200)["items"][0]
    assert match["status"] == "active" and match["leader_id"] == leader["id"] and match["accepted_by_role"] == "coordinator"
