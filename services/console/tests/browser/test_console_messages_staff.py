"""Area 4 of the console in a real browser (issue 16): Today's sections refreshed without a reload, Messages
(the delivery log and its filters, wording with a preview, webhooks), the audit log and staff (invite,
sites, deactivate); what a coordinator is not offered; axe and a 360 px phone on every page."""
from __future__ import annotations

import re
import time
import uuid

from playwright.sync_api import expect

from shared.testing import eventually

ALL_DAYS = [{"day": d, "start": "08:00", "end": "22:00"} for d in range(7)]
AREA_PAGES = ("/", "/messages", "/messages?status=failed&from=2020-01-01&to=2020-01-02", "/messages?from=soon",
              "/messages/wording", "/messages/wording?kind=reminder&channel=sms&language=es", "/messages/webhooks",
              "/audit", "/staff")


def add_member(intake, site_id: str, first: str, last: str) -> dict:
    return intake.post("/v1/members", json={
        "first_name": first, "last_name": last, "email": f"{first.lower()}.{uuid.uuid4().hex[:6]}@example.org",
        "site_id": site_id, "languages": ["en"], "availability": ALL_DAYS, "date_of_birth": "1988-04-17",
        "consents": [{"purpose": "matching"}, {"purpose": "notify:email"}]}).expect(201)


def test_today_shows_a_new_member_waiting_without_a_reload(page, platform, organization, sign_in_as):
    org_id, site, intake = organization
    sign_in_as(page, platform.token(org_id, "coordinator", sites=[site["id"]]), "coordinator", org_id)
    page.goto("/")
    expect(page.get_by_role("region", name="Risk flags to follow up")).to_contain_text("No risk flag is open.")
    expect(page.get_by_role("region", name="Proposals waiting for an answer")).to_be_visible()
    expect(page.get_by_role("region", name="Messages that could not be sent")).to_be_visible()
    page.evaluate("() => { window.notReloaded = true; }")
    tag = uuid.uuid4().hex[:6]
    member = add_member(intake, site["id"], "Nadia", f"Fresh{tag}")

    waiting = page.get_by_role("region", name="People waiting for a peer leader")
    link = waiting.get_by_role("link", name=f"Nadia Fresh{tag}")
    expect(link).to_be_visible(timeout=40_000)  # the page's script swaps the sections in every few seconds
    assert page.evaluate("() => window.notReloaded === true"), "the page was reloaded"
    assert link.get_attribute("href") == f"/members/{member['id']}"


def test_today_asks_nothing_while_its_tab_is_hidden_and_at_once_when_shown(page, platform, organization, sign_in_as):
    """A coordinator's Today left open in a background tab does not keep asking the services every few seconds;
    shown again, it catches up at once."""
    org_id, site, intake = organization
    sign_in_as(page, platform.token(org_id, "coordinator", sites=[site["id"]]), "coordinator", org_id)
    asked = []
    page.on("request", lambda r: asked.append(time.monotonic()) if r.url.endswith("/today/sections") else None)
    page.goto("/")
    expect(page.get_by_role("region", name="People waiting for a peer leader")).to_be_visible()
    with page.expect_request(lambda r: r.url.endswith("/today/sections"), timeout=15_000):
        pass   # it refreshes while shown

    def visibility(hidden: bool):
        page.evaluate("""hidden => {
            Object.defineProperty(document, "hidden", {configurable: true, get: () => hidden});
            Object.defineProperty(document, "visibilityState", {configurable: true,
                                                                get: () => hidden ? "hidden" : "visible"});
            document.dispatchEvent(new Event("visibilitychange"));
        }""", hidden)

    visibility(True)
    hidden_at = time.monotonic()
    page.wait_for_timeout(12_000)   # more than two refresh intervals (5 s): nothing may be asked meanwhile
    assert [t for t in asked if t > hidden_at + 1] == [], "a hidden Today kept asking"
    tag = uuid.uuid4().hex[:6]
    add_member(intake, site["id"], "Omar", f"Back{tag}")
    with page.expect_request(lambda r: r.url.endswith("/today/sections"), timeout=2_000):
        visibility(False)
    waiting = page.get_by_role("region", name="People waiting for a peer leader")
    expect(waiting.get_by_role("link", name=f"Omar Back{tag}")).to_be_visible(timeout=40_000)


def test_an_admin_invites_a_coordinator_finds_the_email_in_the_log_and_the_audit_log(
        page, platform, organization, sign_in_as, assert_accessible):
    org_id, site, intake = organization
    sign_in_as(page, platform.token(org_id, "admin"), "admin", org_id)
    page.goto("/staff")
    expect(page.get_by_role("heading", name="Staff", level=1)).to_be_visible()

    invite = page.get_by_role("form", name="Invite someone")
    email = f"dana.{uuid.uuid4().hex[:6]}@example.org"
    invite.get_by_label("Their email address").fill(email)
    invite.get_by_label("Site coordinator").check()
    invite.get_by_role("button", name="Send the invitation").click()
    expect(page.get_by_role("group", name="Sites they coordinate")).to_contain_text("Choose at least one site they coordinate.")
    assert_accessible(page)

    invite.get_by_label("Their email address").fill(email)
    invite.get_by_label("First name (optional)").fill("Dana")
    invite.get_by_label("Last name (optional)").fill("Reyes")
    invite.get_by_label("Site coordinator").check()
    invite.get_by_label("Harbor House").check()
    invite.get_by_role("button", name="Send the invitation").click()
    expect(page.get_by_role("status")).to_contain_text(f"{email} was invited")
    card = page.get_by_role("list", name="Staff").get_by_role("listitem").filter(has_text="Dana Reyes")
    expect(card).to_contain_text("Site coordinator · Harbor House")
    expect(card).to_contain_text("Invited (has not signed in yet)")

    # the invitation email, in the delivery log
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Messages").click()
    expect(page.get_by_role("heading", name="Sent messages")).to_be_visible()
    sent = page.get_by_role("list", name="Sent messages").get_by_role("listitem").filter(has_text="Sign-in link")

    def invitation_logged() -> bool:
        # the email is sent asynchronously (intake's event -> notifications); the log is read when the page loads
        if sent.count():
            return True
        page.reload()
        return False
    eventually(invitation_logged, timeout=60, interval=1, message="the invitation in the delivery log")
    expect(sent.first).to_contain_text("Email")
    page.get_by_label("Sent by").select_option("sms")
    page.get_by_role("button", name="Show messages").click()
    expect(page.get_by_text("No message matches these filters.")).to_be_visible()
    page.get_by_label("From (date)").fill("2020-01-01")
    page.get_by_label("To (date)").fill("2020-01-02")
    page.get_by_label("Sent by").select_option("email")
    page.get_by_role("button", name="Show messages").click()
    expect(page.get_by_text("No message matches these filters.")).to_be_visible()
    page.get_by_role("link", name="Clear the filters").click()
    expect(sent.first).to_be_visible()

    # the audit log names who invited whom
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    entries = page.get_by_role("list", name="Audit entries").get_by_role("listitem")
    expect(entries.filter(has_text="Invited · Staff").first).to_contain_text("An organization administrator")
    page.get_by_label("What was done").select_option(label="Invited")
    page.get_by_role("button", name="Show entries").click()
    expect(page.get_by_text("1 entry.")).to_be_visible(timeout=15_000)
    expect(entries).to_have_count(1)

    # their sites, then deactivate
    page.goto("/staff")
    page.get_by_role("link", name="Dana Reyes").click()
    expect(page.get_by_role("heading", name="Dana Reyes", level=1)).to_be_visible()
    page.get_by_label("Harbor House").uncheck()
    page.get_by_role("button", name="Save their sites").click()
    expect(page.get_by_role("group", name="Sites they coordinate")).to_contain_text("Choose at least one site")
    page.get_by_role("button", name="Deactivate Dana Reyes").click()
    expect(page.get_by_role("status")).to_contain_text("Dana Reyes was deactivated")
    expect(page.get_by_role("list", name="Staff").get_by_role("listitem").filter(has_text="Dana Reyes")).to_contain_text("Deactivated")


def test_a_lookup_of_several_members_is_one_audit_entry_naming_them(page, platform, organization, sign_in_as):
    org_id, site, intake = organization
    tag = uuid.uuid4().hex[:6]
    people = [add_member(intake, site["id"], first, f"Seen{tag}") for first in ("Ada", "Ben", "Cleo", "Dev", "Eve", "Fay", "Gus")]
    coordinator = platform.client("intake", platform.token(org_id, "coordinator", sites=[site["id"]]))
    assert coordinator.get("/v1/members", params=[("ids", p["id"]) for p in people]).expect(200)["total"] == 7

    sign_in_as(page, platform.token(org_id, "admin"), "admin", org_id)
    page.goto(f"/audit?action=read&resource_id={people[-1]['id']}")
    entry = page.get_by_role("list", name="Audit entries").get_by_role("listitem").filter(has_text=f"Seen{tag}")
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text("Looked at · Member: ")
    expect(entry).to_contain_text("and 2 more")
    names = entry.get_by_role("link", name=re.compile(f"Seen{tag}$"))
    expect(names).to_have_count(5)
    assert {names.nth(i).get_attribute("href") for i in range(5)} <= {f"/members/{p['id']}" for p in people}


def test_an_admin_changes_wording_with_a_live_preview_and_manages_webhooks(page, platform, organization, sign_in_as):
    org_id, _site, _intake = organization
    sign_in_as(page, platform.token(org_id, "admin"), "admin", org_id)
    page.goto("/messages/wording")
    page.get_by_label("Kind of message").select_option(label="Reminder")
    page.get_by_label("Sent by").select_option(label="Text message")
    page.get_by_label("Language of the message").select_option("es")
    page.get_by_role("button", name="Open this wording").click()
    expect(page.get_by_text("The standard wording is in use.")).to_be_visible()
    preview = page.get_by_role("region", name="Preview")
    expect(preview).to_contain_text("Recordatorio: Tuesday Circle")

    page.get_by_label("Text", exact=True).fill("Hola {{ name }}, te esperamos en {{ data.title }}.")
    expect(preview).to_contain_text("Hola Alex, te esperamos en Tuesday Circle.")  # as typed (the page's script)
    page.get_by_label("Text", exact=True).fill("{% if %}")
    page.get_by_role("button", name="Show the preview").click()  # the form without the script
    expect(page.get_by_label("Text", exact=True)).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Text", exact=True).fill("Hola {{ name }}: {{ data.title }}")
    page.get_by_role("button", name="Save the wording").click()
    expect(page.get_by_role("status")).to_contain_text("Saved. New messages use this wording.")
    expect(page.get_by_text("Your organization's own wording is in use.")).to_be_visible()
    expect(preview).to_contain_text("Hola Alex: Tuesday Circle")

    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_text("No webhooks yet.")).to_be_visible()
    page.get_by_label("Address (URL)").fill("not a url")
    page.get_by_role("button", name="Add the webhook").click()
    expect(page.get_by_label("Address (URL)")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Address (URL)").fill("https://records.example.org/hook")
    page.get_by_label("What it is for (optional)").fill("Case records")
    page.get_by_role("button", name="Add the webhook").click()
    expect(page.get_by_role("status")).to_contain_text("signing secret is shown only this once")
    hook = page.get_by_role("list", name="Webhooks").get_by_role("listitem")
    expect(hook).to_contain_text("Case records")
    page.get_by_role("button", name="Remove the webhook https://records.example.org/hook").click()
    expect(page.get_by_text("No webhooks yet.")).to_be_visible()


def test_a_coordinator_is_not_offered_the_admin_pages(page, platform, organization, sign_in_as):
    org_id, site, _intake = organization
    sign_in_as(page, platform.token(org_id, "coordinator", sites=[site["id"]]), "coordinator", org_id)
    page.goto("/messages")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Messages")).to_be_visible()
    expect(nav.get_by_role("link", name="Audit log")).to_have_count(0)
    expect(nav.get_by_role("link", name="Staff")).to_have_count(0)
    expect(page.get_by_role("link", name="Wording")).to_have_count(0)
    expect(page.get_by_role("button", name="Send again")).to_have_count(0)
    for path in ("/audit", "/staff", "/messages/wording", "/messages/webhooks"):
        page.goto(path)
        expect(page.get_by_role("heading", name="Page not found", level=1)).to_be_visible()


def test_every_area_4_page_passes_axe_and_fits_a_360px_phone_in_both_languages(
        new_page, platform, organization, sign_in_as, assert_accessible, assert_fits):
    org_id, site, intake = organization
    add_member(intake, site["id"], "Iris", f"Phone{uuid.uuid4().hex[:6]}")
    for language in ("en-US", "es-ES"):
        page = new_page(width=360, height=740, locale=language)
        sign_in_as(page, platform.token(org_id, "admin"), "admin", org_id)
        for path in AREA_PAGES:
            answer = page.goto(path)
            assert answer.status == 200, (path, answer.status)
            assert_accessible(page)
            assert_fits(page)
        if language == "es-ES":
            page.goto("/messages")
            expect(page.get_by_role("heading", name="Mensajes enviados")).to_be_visible()
            page.goto("/audit")
            expect(page.get_by_role("heading", name="Registro de auditoría", level=1)).to_be_visible()
        staff_page = re.search(r'href="(/staff/[^"]+)"', page.goto("/staff").text() or "")
        if staff_page:
            page.goto(staff_page.group(1))
            assert_accessible(page)
            assert_fits(page)
