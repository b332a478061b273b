"""Peer leaders and Matching in a real browser (issue 16, area 2): what a coordinator and an admin see, found
by roles and labels; axe on every page of the area; the phone tasks at 360 px."""
from __future__ import annotations

import re
import uuid
from datetime import date, timedelta

from playwright.sync_api import expect

from shared.testing import eventually

ALL_DAYS = [{"day": d, "start": "08:00", "end": "22:00"} for d in range(7)]
EVENINGS = [{"day": d, "start": "17:00", "end": "21:00"} for d in range(7)]


def _leader(intake, site, first: str, **extra) -> dict:
    tag = uuid.uuid4().hex[:6]
    return intake.post("/v1/leaders", json={
        "first_name": first, "last_name": f"Leader{tag}", "email": f"{first.lower()}.{tag}@example.org",
        "site_ids": [site["id"]], "languages": ["es", "en"], "availability": EVENINGS, "capacity": 3,
        "pathways": ["twelve_step"], "certifications": [{"name": "Peer Recovery Specialist", "expires_on": "2031-01-01"}],
        **extra}).expect(201)


def _member(intake, site, first: str, **extra) -> dict:
    tag = uuid.uuid4().hex[:6]
    return intake.post("/v1/members", json={
        "first_name": first, "last_name": f"Member{tag}", "email": f"{first.lower()}.{tag}@example.org",
        "site_id": site["id"], "languages": ["es"], "availability": EVENINGS, "date_of_birth": "1990-02-03",
        "pathways": ["twelve_step"], "consents": [{"purpose": "matching"}, {"purpose": "notify:email"}], **extra}).expect(201)


def _coordinator(page, platform, org_id, site, sign_in_as):
    sign_in_as(page, platform.token(org_id, "coordinator", sites=[site["id"]]), "coordinator", org_id)


def _proposal(page, member_name: str):
    """Reload Matching until the member's proposal is listed (matching hears of the member by event)."""
    def listed():
        page.goto("/matching")
        return page.get_by_role("region", name="Proposals waiting for an answer").get_by_role(
            "listitem").filter(has_text=member_name).count() > 0
    eventually(listed, timeout=30, interval=0.5, message=f"a proposal for {member_name}")
    return page.get_by_role("region", name="Proposals waiting for an answer").get_by_role("listitem").filter(
        has_text=member_name).first


def test_a_coordinator_accepts_a_proposal_on_the_members_behalf_on_a_phone(new_page, platform, organization, sign_in_as,
                                                                           assert_accessible, assert_fits):
    org_id, site, intake = organization
    leader = _leader(intake, site, "Luis")
    ana = _member(intake, site, "Ana")
    ana_name = f"Ana {ana['last_name']}"
    page = new_page(width=360, height=740)
    _coordinator(page, platform, org_id, site, sign_in_as)

    card = _proposal(page, ana_name)
    expect(card).to_contain_text(f"Luis {leader['last_name']} for {ana_name}")
    expect(card.get_by_role("listitem").filter(has_text="Speaks Spanish, like Ana.")).to_be_visible()
    expect(card).to_contain_text("Both are free in the evenings.")
    expect(card).to_contain_text("Both follow a twelve-step pathway.")
    expect(card).to_contain_text("(America/Chicago)")
    assert_accessible(page)
    assert_fits(page)

    card.get_by_role("button", name=f"Accept for {ana_name}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Accepted for {ana_name}: Luis {leader['last_name']} is now their peer leader.")
    expect(page.get_by_role("region", name="Proposals waiting for an answer").get_by_role("listitem").filter(
        has_text=ana_name)).to_have_count(0)
    match = platform.client("matching", platform.token(org_id, "admin")).get(
        "/v1/matches", params={"member_id": ana["id"]}).expect(200)["items"][0]
    assert match["status"] == "active" and match["accepted_by_role"] == "coordinator"

    page.goto(f"/matching/members/{ana['id']}")
    expect(page.get_by_role("heading", name=f"Matching for {ana_name}", level=1)).to_be_visible()
    expect(page.get_by_role("region", name="Their peer leader now")).to_contain_text(
        f"Matched: Luis {leader['last_name']} is {ana_name}'s peer leader.")
    assert_accessible(page)
    assert_fits(page)


def test_blocking_a_leader_ends_the_proposal_a_contradicting_pin_is_named_and_the_block_is_lifted(
        page, platform, organization, sign_in_as, assert_accessible):
    org_id, site, intake = organization
    leader = _leader(intake, site, "Marta")
    leader_name = f"Marta {leader['last_name']}"
    bea = _member(intake, site, "Bea")
    bea_name = f"Bea {bea['last_name']}"
    _coordinator(page, platform, org_id, site, sign_in_as)
    _proposal(page, bea_name).get_by_role("link", name=f"Pin or block a peer leader for {bea_name}").click()
    expect(page.get_by_role("heading", name=f"Matching for {bea_name}", level=1)).to_be_visible()
    expect(page.get_by_role("region", name="Pinned and blocked peer leaders")).to_contain_text(
        f"No peer leader is pinned or blocked for {bea_name}.")
    assert_accessible(page)

    page.get_by_role("button", name="Save").click()  # nothing chosen: each field says what it needs
    expect(page.get_by_label("Reason for the pin or block")).to_have_accessible_description("Say why, so the next coordinator knows.")
    expect(page.get_by_label("Peer leader", exact=True)).to_have_attribute("aria-invalid", "true")

    page.get_by_label("Block: never propose this peer leader").check()
    page.get_by_label("Peer leader", exact=True).select_option(label=leader_name)
    page.get_by_label("Reason for the pin or block").fill("They know each other from work")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text(f"{leader_name} is blocked for {bea_name}.")
    overrides = page.get_by_role("region", name="Pinned and blocked peer leaders")
    expect(overrides).to_contain_text(f"{leader_name} is blocked")
    expect(overrides).to_contain_text("Why: They know each other from work")
    expect(page.get_by_role("region", name="Their peer leader now")).to_contain_text(
        f"{bea_name} has no peer leader or proposal now.")

    page.get_by_label("Pin: propose this peer leader now").check()
    page.get_by_label("Peer leader", exact=True).select_option(label=leader_name)
    page.get_by_label("Reason for the pin or block").fill("Changed my mind")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_label("Peer leader", exact=True)).to_have_accessible_description(
        f"{bea_name} has {leader_name} blocked. Lift that block first, then pin them.")
    assert_accessible(page)

    page.get_by_role("button", name=f"Lift the block on {leader_name}").click()
    expect(page.get_by_role("status")).to_contain_text("Lifted.")
    expect(page.get_by_role("region", name="Pinned and blocked peer leaders")).to_contain_text(
        f"No peer leader is pinned or blocked for {bea_name}.")
    # a lifted block makes the leader eligible again: Bea is proposed Marta at once
    expect(page.get_by_role("region", name="Their peer leader now")).to_contain_text(f"{leader_name} for {bea_name}")


def test_a_batch_run_shows_who_was_matched_and_who_still_waits_and_why(page, platform, organization, sign_in_as,
                                                                       assert_accessible, assert_fits):
    org_id, site, intake = organization
    _leader(intake, site, "Nora")
    probe = _member(intake, site, "Dora")  # once Dora is proposed Nora, matching knows Nora
    matching = platform.client("matching", platform.token(org_id, "admin"))
    eventually(lambda: matching.get("/v1/matches", params={"member_id": probe["id"]}).expect(200)["total"] == 1,
               timeout=30, interval=0.5, message="matching knows Nora")
    carl = _member(intake, site, "Carl", languages=["fr"])  # nobody speaks French here
    carl_name = f"Carl {carl['last_name']}"
    _coordinator(page, platform, org_id, site, sign_in_as)

    def carl_waits_for_a_french_speaker():  # matching hears of Nora by event, then names the language
        page.goto("/matching")
        cards = page.get_by_role("region", name="People waiting for a peer leader").get_by_role(
            "listitem").filter(has_text=carl_name)
        return cards.count() == 1 and "speaks this member's language" in cards.inner_text()
    eventually(carl_waits_for_a_french_speaker, timeout=30, interval=0.5, message="Carl on the waitlist, and why")
    waiting = page.get_by_role("region", name="People waiting for a peer leader").get_by_role("listitem").filter(has_text=carl_name)
    expect(waiting).to_contain_text("No available peer leader speaks this member's language.")

    page.get_by_label("Site").select_option(label="Harbor House")
    page.get_by_role("button", name="Run the batch assignment").click()
    expect(page.get_by_role("heading", name="Batch assignment: Harbor House", level=1)).to_be_visible()
    for _ in range(20):  # the page waits a few seconds for the run; a slow run says so and offers "Check again"
        if page.get_by_role("link", name="Check again").count() == 0:
            break
        page.get_by_role("link", name="Check again").click()
    still = page.get_by_role("region", name=re.compile("still waiting"))
    expect(still.get_by_role("listitem").filter(has_text=carl_name)).to_contain_text(
        "No available peer leader speaks this member's language.")
    expect(page.get_by_role("heading", name="0 people matched", level=2)).to_be_visible()
    assert_accessible(page)
    assert_fits(page)

    page.get_by_role("link", name="Back to matching").click()
    expect(page.get_by_role("region", name="Match everyone waiting at once").get_by_role(
        "link", name=re.compile("Harbor House"))).to_have_count(1)


def test_the_weights_are_an_admins_a_coordinator_neither_sees_nor_reaches_them(new_page, platform, organization,
                                                                                sign_in_as, assert_accessible):
    org_id, site, _intake = organization
    coordinator = new_page()
    _coordinator(coordinator, platform, org_id, site, sign_in_as)
    coordinator.goto("/matching")
    expect(coordinator.get_by_role("heading", name="Matching", level=1)).to_be_visible()
    expect(coordinator.get_by_role("link", name="Matching weights for the organization")).to_have_count(0)
    expect(coordinator.get_by_label("Site").locator("option")).to_have_text(["Harbor House"])  # no "All sites"
    assert_accessible(coordinator)
    coordinator.goto("/matching/settings")
    expect(coordinator.get_by_role("heading", name="Page not found", level=1)).to_be_visible()

    admin = new_page(width=360, height=740)
    sign_in_as(admin, platform.token(org_id, "admin"), "admin", org_id)
    admin.goto("/matching")
    admin.get_by_role("link", name="Matching weights for the organization").click()
    expect(admin.get_by_role("heading", name="Matching weights", level=1)).to_be_visible()
    assert_accessible(admin)
    admin.get_by_label("Weekly time in common").fill("-5")
    admin.get_by_role("button", name="Save the weights").click()
    expect(admin.get_by_label("Weekly time in common")).to_have_attribute("aria-invalid", "true")
    admin.get_by_label("Weekly time in common").fill("40")
    admin.get_by_role("button", name="Save the weights").click()
    expect(admin.get_by_role("status")).to_contain_text("The matching weights are saved.")
    expect(admin.get_by_label("Weekly time in common")).to_have_value("40")


def test_a_coordinator_onboards_a_leader_sees_load_and_warnings_and_puts_them_on_leave(
        new_page, platform, organization, sign_in_as, assert_accessible, assert_fits):
    org_id, site, intake = organization
    _leader(intake, site, "Olga", certifications=[{"name": "Old Certificate", "expires_on": "2020-01-01"}])
    page = new_page(width=360, height=740)
    _coordinator(page, platform, org_id, site, sign_in_as)
    page.goto("/leaders")
    olga = page.get_by_role("listitem").filter(has_text="Olga")
    expect(olga).to_contain_text("Old Certificate expired on January 1, 2020.")
    assert_accessible(page)
    assert_fits(page)

    page.get_by_role("link", name="Onboard a peer leader").click()
    expect(page.get_by_role("heading", name="Onboard a peer leader", level=1)).to_be_visible()
    assert_accessible(page)
    assert_fits(page)
    page.get_by_role("button", name="Onboard this peer leader").click()
    expect(page.get_by_label("First name")).to_have_accessible_description("Enter the leader's first name.")
    tag = uuid.uuid4().hex[:6]
    page.get_by_label("First name").fill("Pilar")
    page.get_by_label("Last name (optional)").fill(f"Nueva{tag}")
    page.get_by_label("Email address (optional)").fill("not an email")
    page.get_by_label("Harbor House").check()
    page.get_by_label("Spanish").check()
    page.get_by_label("Certification name").fill("Peer Recovery Specialist")
    soon = date.today() + timedelta(days=10)
    page.get_by_label("Expires on (optional)").fill(soon.isoformat())
    page.get_by_role("group", name=re.compile("Evenings")).get_by_label("Monday").check()
    page.get_by_role("button", name="Onboard this peer leader").click()
    expect(page.get_by_label("Email address (optional)")).to_have_attribute("aria-invalid", "true")  # intake's own words
    page.get_by_label("Email address (optional)").fill(f"pilar.{tag}@example.org")
    page.get_by_role("button", name="Onboard this peer leader").click()
    expect(page.get_by_role("status")).to_contain_text(f"Pilar Nueva{tag} is onboarded as a peer leader.")
    pilar = page.get_by_role("listitem").filter(has_text=f"Pilar Nueva{tag}")
    expect(pilar).to_contain_text("0 of 3 places taken")
    expect(pilar).to_contain_text("Peer Recovery Specialist expires in 10 days")

    pilar.get_by_role("link", name=f"Edit Pilar Nueva{tag}").click()
    expect(page.get_by_label("Spanish")).to_be_checked()
    page.get_by_label("How many members they can support at once").fill("5")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("details are saved")
    pilar = page.get_by_role("listitem").filter(has_text=f"Pilar Nueva{tag}")
    expect(pilar).to_contain_text("0 of 5 places taken")

    pilar.get_by_role("button", name=f"Put Pilar Nueva{tag} on leave").click()
    expect(page.get_by_role("status")).to_contain_text(f"Pilar Nueva{tag} is on leave")
    pilar = page.get_by_role("listitem").filter(has_text=f"Pilar Nueva{tag}")
    expect(pilar).to_contain_text("On leave")
    pilar.get_by_role("button", name=f"Bring Pilar Nueva{tag} back from leave").click()
    expect(page.get_by_role("status")).to_contain_text(f"Pilar Nueva{tag} is back from leave.")


def test_the_area_speaks_spanish(new_page, platform, organization, sign_in_as, assert_accessible):
    org_id, site, _ = organization
    page = new_page(locale="es-ES")
    sign_in_as(page, platform.token(org_id, "admin"), "admin", org_id)
    for path, heading in (("/leaders", "Líderes de pares"), ("/leaders/new", "Incorporar a un líder de pares"),
                          ("/matching", "Emparejamiento"), ("/matching/settings", "Pesos del emparejamiento")):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        assert_accessible(page)
