"""Browser tests of the console: the whole platform started as ./deploy/up starts it (deploy/platform_under_test.py,
console included), and Chromium driven by Playwright. Never skipped: without Chromium they fail and say why
(./deploy/test installs Debian's package when it can).

Every page a test opens is watched: a request to any host but the console's fails the test at teardown.
"""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import sync_playwright

from console import sessions
from console.app import create_app
from console.config import Settings
from deploy.platform_under_test import PlatformUnderTest

CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="package")
def platform(tmp_path_factory):
    running = PlatformUnderTest.start(tmp_path_factory.mktemp("console-platform"))
    yield running
    running.stop()


@pytest.fixture(scope="package")
def console_url(platform) -> str:
    return platform.url("console")


@pytest.fixture(scope="package")
def browser():
    path = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(path).exists():
        pytest.fail(f"Chromium is not at {path}: the console's browser tests need it (./deploy/test installs "
                    "Debian's chromium package when it runs as root; or set CHROMIUM_PATH)", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


class Watched:
    """A page and every URL it asked for."""

    def __init__(self, page, console_url: str):
        self.page, self.console_url, self.requested = page, console_url, []
        page.on("request", lambda request: self.requested.append(request.url))

    def other_hosts(self) -> list[str]:
        own = urlsplit(self.console_url).netloc
        return [url for url in self.requested
                if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).netloc != own]


@pytest.fixture
def new_page(browser, console_url):
    """``new_page(width=1280, locale="en-US")`` -> a Playwright page in a fresh browser context."""
    opened: list[Watched] = []

    def make(*, width: int = 1280, height: int = 800, locale: str = "en-US"):
        context = browser.new_context(viewport={"width": width, "height": height}, locale=locale,
                                      base_url=console_url)
        watched = Watched(context.new_page(), console_url)
        opened.append(watched)
        return watched.page

    yield make
    for watched in opened:
        elsewhere = watched.other_hosts()
        watched.page.context.close()
        assert not elsewhere, f"the page asked another host for: {elsewhere}"


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture(scope="package")
def console_store(platform):
    """The console's own app code on the platform's console database, in this process: it writes a
    signed-in session exactly as the sign-in callback does (for pages that need a person before the
    sign-in API of issue 15 is in the tree), through Flask-Session's own store."""
    settings = Settings(mongo_uri=platform.mongo_uri("console"), secret_key=platform.platform.console_secret(),
                        log_level="WARNING")
    return create_app(settings, configure_logs=False)


@pytest.fixture
def sign_in_as(console_store, console_url):
    """``sign_in_as(page, token, role, organization_id)``: give the page's browser a console session holding
    ``token`` (a token the test minted), as if the person had signed in by link."""

    def sign_in(page, token: str, role: str, organization_id: str | None, *, person_id: str | None = None) -> str:
        client = console_store.test_client()
        with client.session_transaction() as session:
            now = time.time()
            session[sessions.PERSON] = {"token": token, "role": role, "person_id": person_id or uuid.uuid4().hex,
                                        "organization_id": organization_id, "organization_name": None,
                                        "token_expires": now + 3600}
            session["started"] = session["seen"] = now
            session.permanent = True
        sid = client.get_cookie("console_session").value
        page.context.add_cookies([{"name": "console_session", "value": sid, "url": console_url}])
        return sid

    return sign_in


AXE = Axe()


def serious_accessibility_problems(page) -> list[str]:
    """axe-core's violations of impact serious or critical on the page as it is now."""
    results = AXE.run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:5]}"
            for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]


def horizontal_overflow(page) -> int:
    """How many CSS pixels the page is wider than its viewport (0: no horizontal scroll)."""
    return page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


@pytest.fixture
def assert_accessible():
    """``assert_accessible(page)``: axe finds nothing serious or critical on the page as it is now."""

    def check(page):
        problems = serious_accessibility_problems(page)
        assert not problems, f"{page.url}: " + "\n".join(problems)

    return check


@pytest.fixture
def assert_fits():
    """``assert_fits(page)``: no horizontal scroll at the page's viewport width."""

    def check(page):
        overflow = horizontal_overflow(page)
        assert overflow <= 0, f"{page.url} is {overflow}px wider than its {page.viewport_size['width']}px viewport"

    return check


@pytest.fixture
def organization(platform):
    """A fresh organization with one site, and admin clients for it: ``(org_id, site, intake_admin)``."""
    operator = platform.client("intake", platform.token(None, "operator"))
    org = operator.post("/v1/organizations", json={"name": f"Console {uuid.uuid4().hex[:6]}",
                                                   "default_language": "en"}).expect(201)
    intake = platform.client("intake", platform.token(org["id"], "admin"))
    site = intake.post("/v1/sites", json={"name": "Harbor House", "time_zone": "America/Chicago",
                                          "address": {"city": "Chicago"}}).expect(201)
    return org["id"], site, intake
