"""Sign in by the emailed link (issue 15's sign-in API, issue 16's pages): the whole flow through the
browser and the mail catcher only — ask for a link, open it from the email, continue, land on Today; a used
link is refused; a person in two organizations chooses one; sign out everywhere."""
from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from shared.testing import eventually

LINK = re.compile(r"https?://[^\s\"'<>]+/sign-in/callback\?code=[^\s\"'<>]+")


def staff(intake, site_id: str, email: str) -> dict:
    return intake.post("/v1/staff", json={"first_name": "Marta", "last_name": "Coordinator", "email": email,
                                         "site_ids": [site_id]}).expect(201)


def link_from_mail(platform, email: str, *, already: int = 0) -> str:
    def arrived():
        messages = platform.mail(to=email)
        assert len(messages) > already, f"no new sign-in email for {email} yet"
        return messages[-1]

    message = eventually(arrived, timeout=30, interval=0.3)
    found = LINK.search(message.get("text") or "")
    assert found, f"no sign-in link in: {message.get('text')}"
    return found.group(0)


def ask_for_link(page, email: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your email", level=1)).to_be_visible()


def test_a_coordinator_signs_in_by_link_lands_on_today_and_the_link_works_once(
        page, platform, organization, console_url, assert_accessible):
    org_id, site, intake = organization
    email = f"marta.{uuid.uuid4().hex[:6]}@example.org"
    staff(intake, site["id"], email)

    ask_for_link(page, email)
    assert_accessible(page)
    link = link_from_mail(platform, email)
    assert link.startswith(console_url + "/sign-in/callback?code=")

    page.goto(link)
    expect(page.get_by_role("heading", name="Finish signing in", level=1)).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Today", level=1)).to_be_visible()
    expect(page.get_by_role("region", name="People waiting for a peer leader")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    page.goto(link)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("This sign-in link or code has been used or has expired.")).to_be_visible()
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()


def test_a_person_in_two_organizations_chooses_one_and_can_sign_out_everywhere(
        page, platform, organization, assert_accessible):
    first_org, first_site, first_intake = organization
    operator = platform.client("intake", platform.token(None, "operator"))
    second_name = f"Second House {uuid.uuid4().hex[:6]}"
    second_org = operator.post("/v1/organizations", json={"name": second_name, "default_language": "en"}).expect(201)
    second_intake = platform.client("intake", platform.token(second_org["id"], "admin"))
    second_site = second_intake.post("/v1/sites", json={"name": "River Site", "time_zone": "America/New_York",
                                                        "address": {"city": "Albany"}}).expect(201)
    email = f"sam.{uuid.uuid4().hex[:6]}@example.org"
    staff(first_intake, first_site["id"], email)
    staff(second_intake, second_site["id"], email)

    ask_for_link(page, email)
    page.goto(link_from_mail(platform, email))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Choose an organization", level=1)).to_be_visible()
    assert_accessible(page)
    page.get_by_role("radio", name=re.compile(re.escape(second_name))).check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Today", level=1)).to_be_visible()

    page.get_by_role("button", name="Sign out on every device").click()
    expect(page.get_by_role("status")).to_contain_text("You are signed out on every device.")
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
