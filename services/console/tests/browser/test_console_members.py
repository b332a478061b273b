"""Members and CSV import in a real browser (issue 16 "Members", "CSV import"): what a coordinator or an
admin sees, found by roles and labels; axe on every page of the area; the phone pages at 360 px."""
from __future__ import annotations

import uuid

from playwright.sync_api import expect

from shared.testing import eventually


def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def _member(intake, site_id: str, first: str, last: str = "Tester", **extra) -> dict:
    body = {"site_id": site_id, "first_name": first, "last_name": last,
            "email": f"{first.lower()}.{uuid.uuid4().hex[:8]}@example.org", **extra}
    return intake.post("/v1/members", json=body).expect(201)


def _signed_in(new_page, sign_in_as, platform, org_id, role, sites=None, width=1280):
    page = new_page(width=width, height=740)
    token = platform.token(org_id, role, sites=sites) if sites else platform.token(org_id, role)
    sign_in_as(page, token, role, org_id)
    return page


def test_a_coordinator_onboards_a_member_on_a_phone_and_finds_them_in_the_list(
        new_page, platform, organization, sign_in_as, assert_accessible, assert_fits):
    org_id, site, _intake = organization
    page = _signed_in(new_page, sign_in_as, platform, org_id, "coordinator", sites=[site["id"]], width=360)
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", name="Members", level=1)).to_be_visible()
    expect(page.get_by_text("No members yet. Onboard a member, or import members from a CSV file.")).to_be_visible()
    assert_accessible(page)
    assert_fits(page)

    page.get_by_role("link", name="Onboard a member").click()
    expect(page.get_by_role("heading", name="Onboard a member", level=1)).to_be_visible()
    assert_accessible(page)
    assert_fits(page)
    first = _unique("Rosa")
    page.get_by_label("First name").fill(first)
    page.get_by_label("Last name (optional)").fill("Delgado")
    page.get_by_label("Email address").fill(f"{first.lower()}@example.org")
    page.get_by_label("being matched with a peer leader").check()
    page.get_by_label("messages by email").check()
    page.get_by_label("On a paper form").check()
    page.get_by_role("button", name="Onboard the member").click()

    expect(page.get_by_role("heading", name=f"{first} Delgado", level=1)).to_be_visible()
    expect(page.get_by_text(f"{first} Delgado is now a member.")).to_be_visible()
    consents = page.get_by_role("region", name="Consents")
    expect(consents.get_by_text("being matched with a peer leader", exact=True)).to_be_visible()
    expect(consents.get_by_text("given on paper").first).to_be_visible()
    expect(consents.get_by_role("listitem").filter(has_text="being matched with a peer leader · given")).to_have_count(1)
    assert_accessible(page)
    assert_fits(page)

    page.get_by_role("link", name="All members").click()
    page.get_by_label("Name starts with").fill(first[:6].lower())
    page.get_by_role("button", name="Find").click()
    found = page.get_by_role("region", name="Found")
    expect(found.get_by_role("link", name=f"{first} Delgado")).to_be_visible()
    expect(found.get_by_text("active · Harbor House")).to_be_visible()
    assert_accessible(page)
    assert_fits(page)


def test_a_member_onboarded_with_their_weekly_times_is_proposed_a_leader_and_the_times_can_be_changed(
        new_page, platform, organization, sign_in_as, assert_accessible, assert_fits):
    """Matching proposes only a peer leader with weekly time in common: the onboarding form asks for it."""
    org_id, site, intake = organization
    tag = uuid.uuid4().hex[:6]
    leader = intake.post("/v1/leaders", json={
        "first_name": "Iris", "last_name": f"Evening{tag}", "email": f"iris.{tag}@example.org", "site_ids": [site["id"]],
        "languages": ["en"], "availability": [{"day": 1, "start": "17:00", "end": "21:00"}], "capacity": 3,
        "certifications": [{"name": "Peer Recovery Specialist", "expires_on": "2031-01-01"}]}).expect(201)
    page = _signed_in(new_page, sign_in_as, platform, org_id, "coordinator", sites=[site["id"]], width=360)
    page.goto("/members/new")
    times = page.get_by_role("group", name="When they are free each week")
    expect(times).to_contain_text("America/Chicago")
    assert_accessible(page)
    assert_fits(page)
    first = _unique("Tess")
    page.get_by_label("First name").fill(first)
    page.get_by_label("Last name (optional)").fill("Weekly")
    page.get_by_label("Email address").fill(f"{first.lower()}@example.org")
    times.get_by_role("group", name="Evenings (17:00–21:00)").get_by_label("Tuesday").check()
    page.get_by_label("being matched with a peer leader").check()
    page.get_by_label("On a paper form").check()
    page.get_by_role("button", name="Onboard the member").click()

    expect(page.get_by_role("heading", name=f"{first} Weekly", level=1)).to_be_visible()
    expect(page.get_by_role("region", name="Profile")).to_contain_text("Tuesday evening")
    member_id = page.url.rstrip("/").split("/members/")[1].split("?")[0]
    assert intake.get(f"/v1/members/{member_id}").expect(200)["availability"] == [
        {"day": 1, "start": "17:00", "end": "21:00"}]
    matching = platform.client("matching", platform.token(org_id, "admin"))
    proposal = eventually(lambda: (matching.get("/v1/matches", params={"member_id": member_id, "status": "proposed"})
                                   .expect(200)["items"] or [None])[0], timeout=60, interval=0.5,
                          message=f"{first} proposed a peer leader")
    assert proposal["leader_id"] == leader["id"]

    # the edit page shows the times saved and changes them
    page.get_by_role("link", name="Edit the details").click()
    times = page.get_by_role("group", name="When they are free each week")
    expect(times.get_by_role("group", name="Evenings (17:00–21:00)").get_by_label("Tuesday")).to_be_checked()
    assert_accessible(page)
    assert_fits(page)
    times.get_by_role("group", name="Mornings (8:00–12:00)").get_by_label("Saturday").check()
    page.get_by_role("button", name="Save the details").click()
    expect(page.get_by_role("region", name="Profile")).to_contain_text("Tuesday evening, Saturday morning")
    assert intake.get(f"/v1/members/{member_id}").expect(200)["availability"] == [
        {"day": 1, "start": "17:00", "end": "21:00"}, {"day": 5, "start": "08:00", "end": "12:00"}]


def test_a_refused_field_is_named_next_to_it_and_the_form_keeps_what_was_typed(
        new_page, platform, organization, sign_in_as, assert_accessible):
    org_id, site, _intake = organization
    page = _signed_in(new_page, sign_in_as, platform, org_id, "admin")
    page.goto("/members/new")
    page.get_by_label("First name").fill("Tomas")
    page.get_by_label("Email address").fill("tomas@example.org")
    page.get_by_label("Date of birth (optional)").fill("2999-01-01")
    page.get_by_label("being matched with a peer leader").check()
    page.get_by_role("button", name="Onboard the member").click()

    # consents checked without saying how they were given: named next to that question, by the console
    expect(page.locator("#consent_how-error")).to_have_text("Say how the member gave these consents: on paper or in person.")
    expect(page.get_by_label("First name")).to_have_value("Tomas")
    expect(page.get_by_label("being matched with a peer leader")).to_be_checked()
    assert_accessible(page)
    page.get_by_label("In person, out loud").check()
    page.get_by_role("button", name="Onboard the member").click()
    # intake refuses a birth date in the future: its problem names the field, shown next to it
    born = page.get_by_label("Date of birth (optional)")
    expect(born).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#date_of_birth-error")).to_be_visible()
    expect(page.locator("#consent_how-error")).to_have_count(0)
    assert_accessible(page)


def test_two_barc10_screenings_draw_a_chart_with_its_table(new_page, platform, organization, sign_in_as,
                                                           assert_accessible, assert_fits):
    org_id, site, intake = organization
    member = _member(intake, site["id"], _unique("Lena"))
    page = _signed_in(new_page, sign_in_as, platform, org_id, "coordinator", sites=[site["id"]], width=360)
    page.goto(f"/members/{member['id']}")
    expect(page.get_by_text("No screening yet. Record one to see how the member is doing over time.")).to_be_visible()
    for answers in ("3,3,3,3,3,3,3,3,3,3", "5,5,5,5,5,5,5,5,5,5"):
        page.get_by_role("link", name="Record a screening").click()
        assert_accessible(page)
        assert_fits(page)
        page.get_by_label("Screening", exact=True).select_option("BARC-10")
        page.get_by_label("Answers, in order").fill(answers)
        page.get_by_role("button", name="Record the screening").click()
    expect(page.get_by_text("The BARC-10 screening was recorded: 50, strong.")).to_be_visible()
    chart = page.get_by_role("img", name="BARC-10 recovery capital over time")
    expect(chart).to_be_visible()
    table = page.get_by_role("table", name="Screenings, newest first")
    expect(table.get_by_role("row")).to_have_count(3)
    expect(table.get_by_role("row").nth(1)).to_contain_text("50")
    expect(table.get_by_role("row").nth(2)).to_contain_text("30")
    assert_accessible(page)
    assert_fits(page)

    page.get_by_role("link", name="Record a screening").click()
    page.get_by_label("Screening", exact=True).select_option("BARC-10")
    page.get_by_label("Answers, in order").fill("1,2,3")
    page.get_by_role("button", name="Record the screening").click()
    expect(page.get_by_label("Answers, in order")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#answers-error")).to_contain_text("10")


def test_a_csv_import_reports_each_row_and_why_one_was_rejected(new_page, platform, organization, sign_in_as,
                                                                 assert_accessible, assert_fits):
    org_id, site, _intake = organization
    page = _signed_in(new_page, sign_in_as, platform, org_id, "coordinator", sites=[site["id"]])
    page.goto("/members")
    page.get_by_role("link", name="Import members from a CSV file").click()
    expect(page.get_by_role("heading", name="Import members from a CSV file", level=1)).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#file-error")).to_have_text("Choose a CSV file to upload.")
    assert_accessible(page)

    tag = uuid.uuid4().hex[:6]
    csv_text = ("external_id,first_name,last_name,email\n"
                f"a-{tag},Ana,Ruiz,ana.{tag}@example.org\n"
                f"b-{tag},Ben,Ode,not-an-email\n"
                f"c-{tag},Cy,Park,cy.{tag}@example.org\n")
    page.get_by_label("Site the members belong to").select_option(site["id"])
    page.get_by_label("CSV file").set_input_files({"name": "members.csv", "mimeType": "text/csv",
                                                   "buffer": csv_text.encode()})
    page.get_by_role("button", name="Import").click()

    expect(page.get_by_role("heading", name="Import report", level=1)).to_be_visible()
    expect(page.get_by_role("progressbar", name="Progress")).to_be_visible()
    rows = page.get_by_role("table", name="Each row of the file").get_by_role("row")
    expect(rows).to_have_count(4)
    expect(rows.nth(1)).to_contain_text("created")
    expect(rows.nth(2)).to_contain_text("rejected")
    expect(rows.nth(2)).to_contain_text("email")
    expect(rows.nth(3)).to_contain_text("created")
    assert_accessible(page)
    assert_fits(page)

    with page.expect_download() as download:
        page.get_by_role("link", name="Download this report as a CSV file").click()
    text = open(download.value.path(), encoding="utf-8").read()
    assert text.splitlines()[0] == "row,external_id,outcome,member_id,reasons"
    assert f"2,b-{tag},rejected,," in text and "email" in text.splitlines()[2]


def test_a_coordinator_never_sees_another_sites_member(new_page, platform, organization, sign_in_as,
                                                       assert_accessible):
    org_id, site, intake = organization
    other = intake.post("/v1/sites", json={"name": "Lakeside", "time_zone": "America/Chicago",
                                                "address": {"city": "Chicago"}}).expect(201)
    mine = _member(intake, site["id"], _unique("Mine"))
    theirs = _member(intake, other["id"], _unique("Theirs"))
    page = _signed_in(new_page, sign_in_as, platform, org_id, "coordinator", sites=[site["id"]])
    page.goto("/members")
    found = page.get_by_role("region", name="Found")
    expect(found.get_by_role("link", name=f"{mine['first_name']} Tester")).to_be_visible()
    expect(found.get_by_role("link", name=f"{theirs['first_name']} Tester")).to_have_count(0)
    expect(page.get_by_label("Site")).not_to_contain_text("Lakeside")
    page.goto(f"/members?name={theirs['first_name']}&site_id={other['id']}")
    expect(page.get_by_text("No member matches.", exact=False)).to_be_visible()

    for path in (f"/members/{theirs['id']}", f"/members/{theirs['id']}/edit", f"/members/{theirs['id']}/plan",
                 f"/members/{theirs['id']}/screenings"):
        answer = page.goto(path)
        assert answer.status == 404, path
        expect(page.get_by_role("heading", name="Page not found", level=1)).to_be_visible()
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        expect(page.get_by_text(theirs["first_name"])).to_have_count(0)
    assert_accessible(page)
    # erasing is for administrators: a coordinator is never offered it
    page.goto(f"/members/{mine['id']}")
    expect(page.get_by_role("link", name="Erase this member's data")).to_have_count(0)
    assert page.goto(f"/members/{mine['id']}/erase").status == 404


def test_an_admin_edits_moves_plans_follows_up_a_flag_and_erases_a_member(
        new_page, platform, organization, sign_in_as, assert_accessible, assert_fits):
    org_id, site, intake = organization
    other = intake.post("/v1/sites", json={"name": "Riverside", "time_zone": "America/New_York",
                                                "address": {"city": "Albany"}}).expect(201)
    first = _unique("Omar")
    member = _member(intake, site["id"], first, consents=[{"purpose": "matching"}])
    page = _signed_in(new_page, sign_in_as, platform, org_id, "admin", width=360)
    page.goto(f"/members/{member['id']}")

    page.get_by_role("link", name="Edit the details").click()
    assert_accessible(page)
    assert_fits(page)
    page.get_by_label("Pronouns (optional)").fill("he/him")
    page.get_by_label("Phone number").fill("+1 12")
    page.get_by_role("button", name="Save the details").click()
    expect(page.get_by_label("Phone number")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Phone number").fill("")
    page.get_by_role("button", name="Save the details").click()
    expect(page.get_by_text("The member's details were saved.")).to_be_visible()
    expect(page.get_by_role("region", name="Profile").get_by_text("he/him")).to_be_visible()

    page.get_by_role("link", name="Move to another site").click()
    assert_accessible(page)
    page.get_by_label("New site").select_option(label="Riverside")
    page.get_by_role("button", name="Move the member").click()
    expect(page.get_by_text("The member now belongs to Riverside.")).to_be_visible()

    page.get_by_role("link", name="Edit the plan").click()
    assert_accessible(page)
    page.get_by_label("Goal").fill("Find steady work")
    page.get_by_label("Next steps (optional)").fill("Update my CV\nCall the job center")
    page.get_by_role("button", name="Save the plan").click()
    plan = page.get_by_role("region", name="Plan")
    expect(plan.get_by_text("Find steady work")).to_be_visible()
    expect(plan.get_by_role("listitem")).to_have_count(2)

    page.get_by_role("link", name="Record a screening").click()
    page.get_by_label("Screening", exact=True).select_option("PHQ-2")
    page.get_by_label("Answers, in order").fill("2,2")
    page.get_by_role("button", name="Record the screening").click()
    follow_up = page.get_by_role("region", name="To follow up")
    expect(follow_up.get_by_text("risk to follow up")).to_be_visible()
    assert_accessible(page)
    follow_up.get_by_role("button", name="Mark as followed up").click()
    expect(page.get_by_text("The flag was resolved.")).to_be_visible()
    expect(page.get_by_role("region", name="To follow up")).to_have_count(0)

    page.get_by_role("link", name="Erase this member's data").click()
    assert_accessible(page)
    assert_fits(page)
    page.get_by_label("Why the data is erased").fill("The member asked")
    page.get_by_label(f"Type the member's name to confirm: {first} Tester").fill("someone else")
    page.get_by_role("button", name="Erase for good").click()
    expect(page.locator("#confirm_name-error")).to_contain_text(f"{first} Tester")
    page.get_by_label(f"Type the member's name to confirm: {first} Tester").fill(f"{first.lower()} tester")
    page.get_by_role("button", name="Erase for good").click()
    expect(page.get_by_text("The member's data was erased.")).to_be_visible()
    assert page.goto(f"/members/{member['id']}").status == 410
    expect(page.get_by_role("heading", name="This member's data was erased", level=1)).to_be_visible()


def test_the_members_pages_speak_spanish(new_page, platform, organization, sign_in_as, assert_accessible):
    org_id, site, intake = organization
    member = _member(intake, site["id"], _unique("Eva"))
    page = new_page(locale="es-ES")
    sign_in_as(page, platform.token(org_id, "admin"), "admin", org_id)
    page.goto("/members")
    expect(page.get_by_role("heading", name="Miembros", level=1)).to_be_visible()
    expect(page.get_by_label("El nombre empieza por")).to_be_visible()
    assert_accessible(page)
    page.goto(f"/members/{member['id']}")
    expect(page.get_by_role("heading", name="Consentimientos")).to_be_visible()
    page.goto("/members/new")
    expect(page.get_by_role("heading", name="Dar de alta a un miembro", level=1)).to_be_visible()
    assert_accessible(page)
