"""Reports in a real browser (issue 18, "In the console"): an organization of 15 members onboarded through
intake's API (13 at one site speaking English, 2 at another speaking Spanish), reporting left to hear of them
from the events (polled over its own API, never a fixed wait), then the page: a figure, a "fewer than 11"
cell with its explanation, a chart with its table, the CSV download through the console (same suppression),
Spanish, 360 px, axe; a coordinator chooses only among their own sites. The new_page fixture fails the test
if any page asks another host for anything (the charts are the console's own SVG)."""
from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime, timedelta, timezone

from playwright.sync_api import expect

from shared.testing import eventually

HIDDEN = "fewer than 11"
SITE_A_MEMBERS, SITE_B_MEMBERS = 13, 2


def _members(intake, site_id: str, count: int, language: str) -> None:
    for i in range(count):
        first = f"Rep{uuid.uuid4().hex[:6]}"
        intake.post("/v1/members", json={"site_id": site_id, "first_name": first, "last_name": "Tester",
                                         "email": f"{first.lower()}@example.org", "languages": [language],
                                         "consents": [{"purpose": "matching"}]}).expect(201)


def _seeded(platform, organization):
    """(org_id, site A, site B) once reporting counts all 15 members onboarded."""
    org_id, site_a, intake = organization
    site_b = intake.post("/v1/sites", json={"name": "Lakeside", "time_zone": "America/Chicago",
                                            "address": {"city": "Chicago"}}).expect(201)
    _members(intake, site_a["id"], SITE_A_MEMBERS, "en")
    _members(intake, site_b["id"], SITE_B_MEMBERS, "es")
    reporting = platform.client("reporting", platform.token(org_id, "admin"))

    def caught_up():
        report = reporting.get("/v1/reports/outcomes").expect(200)
        assert report["reach"]["onboarded"] == SITE_A_MEMBERS + SITE_B_MEMBERS, report["reach"]
        return report

    eventually(caught_up, timeout=60, message="reporting never counted the 15 members")
    return org_id, site_a, site_b


def _figure(section, label: str):
    """The value (<dd>) next to a figure's label (<dt>) in a section."""
    return section.locator("dt", has_text=label).locator("xpath=following-sibling::dd[1]")


def _first_of_month_11_months_ago(today):
    first = today.replace(day=1)
    for _ in range(11):
        first = (first - timedelta(days=1)).replace(day=1)
    return first


def test_an_admin_reads_the_report_with_a_small_cell_a_chart_and_its_table_and_downloads_the_csv(
        new_page, platform, organization, sign_in_as, assert_accessible, assert_fits, tmp_path):
    org_id, _site_a, _site_b = _seeded(platform, organization)
    page = new_page(width=1280, height=900)
    sign_in_as(page, platform.token(org_id, "admin"), "admin", org_id)
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Reports", level=1)).to_be_visible()

    today = datetime.now(timezone.utc).date()
    expect(page.get_by_label("First day")).to_have_value(_first_of_month_11_months_ago(today).isoformat())
    expect(page.get_by_label("Last day")).to_have_value(today.isoformat())
    expect(page.get_by_role("heading", name="The whole organization", level=2)).to_be_visible()

    reach = page.get_by_role("region", name="Reach")
    expect(_figure(reach, "Members onboarded")).to_have_text("15")
    # 2 Spanish speakers: hidden; and English (13) too, since 15 - 13 would give the 2 back
    languages = reach.get_by_role("table", name="Members onboarded, by first language")
    expect(languages.get_by_role("row", name="Spanish")).to_contain_text(HIDDEN)
    expect(languages.get_by_role("row", name="English")).to_contain_text(HIDDEN)
    expect(page.locator("#suppression-note")).to_contain_text("means 1 to 10 people")
    for name in ("Access", "Engagement", "Recovery capital", "Safety", "Communication"):
        expect(page.get_by_role("heading", name=name, level=2)).to_be_visible()

    chart = page.get_by_role("img", name="Members onboarded each month")
    expect(chart).to_be_visible()
    assert chart.locator("desc").text_content().startswith("A bar for each month")
    table = page.get_by_role("table", name="Members onboarded each month, as a table")
    expect(table.get_by_role("row")).to_have_count(13)  # the heading row and 12 months
    this_month = today.strftime("%B %Y")
    expect(table.get_by_role("row", name=this_month)).to_contain_text("15")
    assert_accessible(page)

    with page.expect_download() as downloaded:
        page.get_by_role("link", name="Download as CSV").click()
    path = tmp_path / "outcomes.csv"
    downloaded.value.save_as(path)
    assert downloaded.value.suggested_filename.startswith("outcomes-")
    rows = {(r["section"], r["figure"], r["detail"]): r["value"] for r in csv.DictReader(io.StringIO(path.read_text()))}
    assert rows[("reach", "onboarded", "")] == "15"
    assert rows[("reach", "by_language", "es")] == HIDDEN
    assert rows[("reach", "by_language", "en")] == HIDDEN

    page.set_viewport_size({"width": 360, "height": 740})
    expect(chart).to_be_visible()
    assert chart.bounding_box()["width"] <= 360
    assert_fits(page)


def test_the_report_in_spanish(new_page, platform, organization, sign_in_as, assert_accessible):
    org_id, _site_a, _site_b = _seeded(platform, organization)
    page = new_page(locale="es-ES")
    sign_in_as(page, platform.token(org_id, "admin"), "admin", org_id)
    page.goto("/reports")
    expect(page.get_by_role("heading", name="Informes", level=1)).to_be_visible()
    languages = page.get_by_role("table", name="Miembros incorporados, por primer idioma")
    expect(languages).to_contain_text("menos de 11")
    expect(page.get_by_role("link", name="Descargar como CSV")).to_be_visible()
    assert_accessible(page)


def test_a_coordinator_chooses_only_among_their_sites(new_page, platform, organization, sign_in_as, assert_accessible,
                                                      assert_fits):
    org_id, site_a, site_b = _seeded(platform, organization)
    page = new_page(width=360, height=740)
    sign_in_as(page, platform.token(org_id, "coordinator", sites=[site_a["id"]]), "coordinator", org_id)
    page.goto("/reports")
    choice = page.get_by_label("Site", exact=True)
    expect(choice.locator("option")).to_have_text(["All my sites", "Harbor House"])
    choice.select_option(label="Harbor House")
    page.get_by_role("button", name="Show the report").click()
    expect(page.get_by_role("heading", name="Harbor House", exact=False, level=2)).to_be_visible()
    expect(_figure(page.get_by_role("region", name="Reach"), "Members onboarded")).to_have_text("13")
    expect(page.get_by_role("table", name="Members onboarded, by first language")
           .get_by_role("row", name="Spanish")).to_have_count(0)
    assert_accessible(page)
    assert_fits(page)

    # another site's address: refused in words, and the report stays the coordinator's own sites
    page.goto(f"/reports?site_id={site_b['id']}")
    expect(page.locator("#site_id-error")).to_have_text("Choose one of your sites.")
    expect(page.get_by_role("heading", name="All my sites", exact=False, level=2)).to_be_visible()
    expect(page.get_by_text("Lakeside")).to_have_count(0)
    assert_accessible(page)
