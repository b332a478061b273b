"""The console in a real browser (issue 16, "Tests"): what a person sees, found by roles and labels.
Every page opened here is also checked (conftest) for requests to any other host."""
from __future__ import annotations

import uuid

from playwright.sync_api import expect

from shared.testing import eventually

ALL_DAYS = [{"day": d, "start": "08:00", "end": "22:00"} for d in range(7)]


def test_the_sign_in_page_speaks_english_and_spanish(page):
    page.goto("/sign-in")
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    expect(page.get_by_label("Email address")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")

    page.get_by_label("Language").select_option("es")
    page.get_by_role("button", name="Change language").click()
    expect(page.get_by_role("heading", name="Iniciar sesión", level=1)).to_be_visible()
    expect(page.get_by_label("Correo electrónico")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "es")


def test_a_spanish_browser_gets_spanish_before_anyone_chooses(new_page):
    page = new_page(locale="es-ES")
    page.goto("/sign-in")
    expect(page.get_by_role("button", name="Enviarme un enlace para iniciar sesión")).to_be_visible()


def test_the_keyboard_alone_reaches_the_skip_link_and_the_form(page):
    page.goto("/sign-in")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    email = page.get_by_label("Email address")
    for _ in range(5):
        page.keyboard.press("Tab")
        if email.evaluate("element => element === document.activeElement"):
            break
    expect(email).to_be_focused()
    page.keyboard.type("someone@example.org")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Email me a sign-in link")).to_be_focused()


def test_a_malformed_email_is_named_next_to_the_field(page, assert_accessible):
    page.goto("/sign-in")
    page.get_by_label("Email address").fill("not an address")
    page.get_by_role("button", name="Email me a sign-in link").click()
    email = page.get_by_label("Email address")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_accessible_description(
        "The address your organization has for you. Enter your email address, like name@example.org.")
    assert_accessible(page)


def test_every_page_built_so_far_passes_axe_and_fits_a_360px_phone(new_page, platform, organization, sign_in_as,
                                                                   assert_accessible, assert_fits):
    org_id, site, _intake = organization
    for width in (360, 1280):
        for language in ("en-US", "es-ES"):
            page = new_page(width=width, height=740, locale=language)
            for path in ("/sign-in", "/sign-in/sent", "/sign-in/callback?code=abc", "/sign-in/callback",
                         "/no-such-page"):
                page.goto(path)
                assert_accessible(page)
                assert_fits(page)
            sign_in_as(page, platform.token(org_id, "coordinator", sites=[site["id"]]), "coordinator", org_id)
            page.goto("/")
            expect(page.get_by_role("heading", level=1)).to_have_text("Today" if language == "en-US" else "Hoy")
            assert_accessible(page)
            assert_fits(page)
            leader = new_page(width=width, height=740, locale=language)
            sign_in_as(leader, platform.token(org_id, "leader", leader_id="l-" + uuid.uuid4().hex[:8]), "leader", org_id)
            leader.goto("/")
            assert_accessible(leader)
            assert_fits(leader)


def test_a_coordinator_sees_who_is_waiting_for_a_peer_leader_and_why(page, platform, organization, sign_in_as):
    org_id, site, intake = organization
    tag = uuid.uuid4().hex[:6]
    intake.post("/v1/members", json={
        "first_name": "Rosa", "last_name": f"Waiting{tag}", "email": f"rosa.{tag}@example.org", "site_id": site["id"],
        "languages": ["en"], "availability": ALL_DAYS, "date_of_birth": "1988-04-17",
        "consents": [{"purpose": "matching"}, {"purpose": "notify:email"}]}).expect(201)
    sign_in_as(page, platform.token(org_id, "coordinator", sites=[site["id"]]), "coordinator", org_id)

    def rosa_is_listed():
        page.goto("/")
        waiting = page.get_by_role("region", name="People waiting for a peer leader")
        return waiting.get_by_role("listitem").filter(has_text=f"Rosa Waiting{tag}").count() == 1

    eventually(rosa_is_listed, timeout=30, interval=0.5, message="Rosa on the Today page")
    card = page.get_by_role("listitem").filter(has_text=f"Rosa Waiting{tag}")
    expect(card).to_contain_text("Waiting since")
    assert len(card.inner_text().splitlines()) >= 2  # the reason, in words, under the name
    expect(page.get_by_role("region", name="Today's meetings")).to_contain_text("No meetings today at your sites.")


def test_a_post_without_the_csrf_token_is_refused(page, platform, organization, sign_in_as):
    org_id, site, _ = organization
    sign_in_as(page, platform.token(org_id, "coordinator", sites=[site["id"]]), "coordinator", org_id)
    page.goto("/")
    for path, form in (("/language", {"lang": "es", "next": "/"}), ("/sign-out", {}), ("/sign-in", {"email": "a@example.org"})):
        answer = page.request.post(path, form=form, max_redirects=0)
        assert answer.status == 400, (path, answer.status)
        assert "This form has expired" in answer.text()
    page.goto("/")
    expect(page.get_by_role("heading", name="Today", level=1)).to_be_visible()  # still signed in, still English


def test_after_sign_out_the_old_cookie_does_nothing(new_page, platform, organization, sign_in_as, console_url):
    org_id, site, _ = organization
    page = new_page()
    sign_in_as(page, platform.token(org_id, "coordinator", sites=[site["id"]]), "coordinator", org_id)
    page.goto("/")
    expect(page.get_by_role("heading", name="Today", level=1)).to_be_visible()
    old = next(c for c in page.context.cookies() if c["name"] == "console_session")
    assert old["httpOnly"] and old["sameSite"] == "Lax"

    page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("You are signed out.")

    replay = new_page()
    replay.context.add_cookies([{"name": "console_session", "value": old["value"], "url": console_url}])
    replay.goto("/")
    expect(replay.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    assert replay.url.endswith("/sign-in")
