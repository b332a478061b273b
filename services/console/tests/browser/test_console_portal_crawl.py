"""Issue 17's crawls and support groups for peer leaders, in a real browser on a phone.

A staff member marks a meeting "A support group for peer leaders" on the meeting form; a peer leader finds it
under "Support for peer leaders" on their home, joins it and leaves it; a member never sees it.

The crawls: signed in by the emailed link as a peer leader and as a member (360 px wide), follow every
same-origin link from their home, breadth first (GETs only: forms are never submitted, so nothing changes;
skipped: /static/, downloads, anything about signing out). Every page reached answers 200, asks no other host
for anything, has nothing serious or critical for axe, does not scroll sideways at 360 px (nor at 640 px: a
1280 px screen zoomed to 200 %), weighs under 100 KB of HTML + CSS + JS (decoded, as a first visit would fetch
it, whatever the cache holds), and never shows the name of a member of the same organization and site who is not matched with this person. Bounded: the
same kind of page (the path with ids and dates blanked, and the query's names) at most ``PER_KIND`` times,
``MOST_PAGES`` in all.
"""
from __future__ import annotations

import re
import uuid
from collections import deque
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urldefrag, urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from shared.testing import eventually

ALL_DAYS = [{"day": d, "start": "08:00", "end": "22:00"} for d in range(7)]
CHICAGO = ZoneInfo("America/Chicago")
WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
LINK = re.compile(r"https?://[^\s\"'<>]+/sign-in/callback\?code=[^\s\"'<>]+")
ID_LIKE = re.compile(r"^(?=.*\d)\S{8,}$|^\d+$")
PER_KIND = 2
MOST_PAGES = 40


def _sign_in_by_link(page, platform, email: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your email", level=1)).to_be_visible()

    def arrived():
        links = [found.group(0) for m in platform.mail(to=email) if (found := LINK.search(m.get("text") or ""))]
        assert links, f"no sign-in email for {email} yet"
        return links[-1]

    page.goto(eventually(arrived, timeout=30, interval=0.3))
    page.get_by_role("button", name="Continue").click()


def _created(call):
    """Scheduling hears of people intake just registered through events: "not yet known" until then."""
    def attempt():
        answer = call()
        if answer.status_code == 422 and "not-yet-known" in answer.text:
            return None
        return answer.expect(201)
    return eventually(attempt, timeout=60, interval=0.5)


def _member(intake, site_id: str, first: str, last: str, **extra) -> dict:
    return intake.post("/v1/members", json={
        "first_name": first, "last_name": last, "email": f"{first.lower()}.{uuid.uuid4().hex[:6]}@example.org",
        "site_id": site_id, "languages": ["en"], "availability": ALL_DAYS, "date_of_birth": "1988-04-17",
        "consents": [{"purpose": "matching"}, {"purpose": "notify:email"}], **extra}).expect(201)


@pytest.fixture
def seeded(platform, organization):
    """A peer leader (Lena) with a member matched with her (Mara, accepted), a member of the same site nobody
    is matched with (Quentin: only French, which no peer leader speaks), a weekly meeting Lena facilitates that
    began an hour ago with Mara and Quentin registered, and a public meeting members may join."""
    org_id, site, intake = organization
    tag = uuid.uuid4().hex[:6]
    lena = intake.post("/v1/leaders", json={
        "first_name": "Lena", "last_name": f"Portal{tag}", "email": f"lena.{tag}@example.org", "site_ids": [site["id"]],
        "languages": ["en"], "availability": ALL_DAYS, "capacity": 3, "time_zone": "America/Chicago",
        "certifications": [{"name": "Peer Recovery Specialist", "expires_on": "2031-01-01"}]}).expect(201)
    mara = _member(intake, site["id"], "Mara", f"Portal{tag}")
    quentin = _member(intake, site["id"], "Quentin", f"Unmatched{tag}", languages=["fr"])
    matching = platform.client("matching", platform.token(org_id, "admin"))
    match = eventually(lambda: (matching.get("/v1/matches", params={"member_id": mara["id"], "status": "proposed"})
                                .expect(200)["items"] or [None])[0], timeout=60, interval=0.5, message="Mara proposed")
    assert match["leader_id"] == lena["id"]
    platform.client("matching", platform.token(org_id, "leader", leader_id=lena["id"], sites=[site["id"]])).post(
        f"/v1/matches/{match['id']}/accept", json={}).expect(200)
    scheduling = platform.client("scheduling", platform.token(org_id, "admin"))
    began = datetime.now(CHICAGO) - timedelta(hours=1)
    circle = _created(lambda: scheduling.post("/v1/meetings", json={
        "name": f"Evening circle {tag}", "site_id": site["id"], "facilitator_id": lena["id"], "capacity": 10,
        "attendance_mode": "in_person", "is_public": True, "rrule": f"FREQ=WEEKLY;BYDAY={WEEKDAY_CODES[began.weekday()]}",
        "first_start_local": began.strftime("%Y-%m-%dT%H:%M"), "duration_minutes": 180}))
    for member in (mara, quentin):
        _created(lambda m=member: scheduling.post(f"/v1/meetings/{circle['id']}/registrations", json={"member_id": m["id"]}))
    return {"org_id": org_id, "site": site, "tag": tag, "lena": lena, "mara": mara, "quentin": quentin,
            "circle": circle, "never": [f"Quentin Unmatched{tag}", "Quentin", f"Unmatched{tag}"]}


def _kind(url: str) -> tuple:
    parts = urlsplit(url)
    path = tuple("*" if ID_LIKE.match(segment) else segment for segment in parts.path.split("/"))
    return path, tuple(sorted({name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}))


PAGE_BUDGET = 100 * 1024  # issue 17: "each page under 100 KB of HTML+CSS+JS" on a slow phone


def _page_weight(page) -> int:
    """Decoded bytes of the document and every stylesheet and script it loaded (cache hits count in full)."""
    return page.evaluate("""() => {
        const own = performance.getEntriesByType('navigation').map(e => e.decodedBodySize);
        const assets = performance.getEntriesByType('resource')
            .filter(e => ['link', 'script', 'css'].includes(e.initiatorType) || /\\.(css|js)(\\?|$)/.test(e.name))
            .map(e => e.decodedBodySize);
        return own.concat(assets).reduce((a, b) => a + b, 0);
    }""")


def _zoomed_to_200_percent(assert_fits):
    """A desktop window of 1280 CSS px zoomed to 200 % lays the page out 640 px wide: it must not scroll sideways."""
    def check(page):
        narrow = page.viewport_size
        page.set_viewport_size({"width": 640, "height": 400})
        try:
            assert_fits(page)
        finally:
            page.set_viewport_size(narrow)
    return check


def crawl(page, console_url: str, assert_accessible, assert_fits, *, never_shown: list[str]) -> dict[str, int]:
    """Breadth first from the home page at 360 px; {url: status} of every page opened. Fails listing every problem."""
    origin = f"{urlsplit(console_url).scheme}://{urlsplit(console_url).netloc}"
    elsewhere: list[str] = []
    page.on("request", lambda request: urlsplit(request.url).scheme in ("http", "https", "ws", "wss")
            and f"{urlsplit(request.url).scheme}://{urlsplit(request.url).netloc}" != origin
            and elsewhere.append(request.url))
    page.set_viewport_size({"width": 360, "height": 780})
    queue, seen, kinds, opened, problems = deque([origin + "/"]), {origin + "/"}, {}, {}, []
    while queue and len(opened) < MOST_PAGES:
        url = queue.popleft()
        kind = _kind(url)
        if kinds.get(kind, 0) >= PER_KIND:
            continue
        kinds[kind] = kinds.get(kind, 0) + 1
        answer = page.goto(url)
        page.wait_for_load_state("load")
        opened[url] = answer.status if answer else 0
        if urlsplit(page.url).path == "/sign-in":
            problems.append(f"{url}: sent to sign in (the session ended)")
            break
        if opened[url] != 200:
            problems.append(f"{url}: status {opened[url]}")
        text = page.content()
        problems += [f"{url}: shows {name!r}" for name in never_shown if name in text]
        for check in (assert_accessible, assert_fits, _zoomed_to_200_percent(assert_fits)):
            try:
                check(page)
            except AssertionError as problem:
                problems.append(str(problem))
        weight = _page_weight(page)
        if weight >= PAGE_BUDGET:
            problems.append(f"{url}: {weight:,} bytes of HTML, CSS and JS (the budget is {PAGE_BUDGET:,})")
        problems += [f"{url}: asked another host for {other}" for other in elsewhere]
        elsewhere.clear()
        hrefs = page.eval_on_selector_all("a[href]", "as => as.filter(a => !a.hasAttribute('download')).map(a => a.href)")
        for href in hrefs:
            link = urldefrag(href)[0]
            parts = urlsplit(link)
            if (f"{parts.scheme}://{parts.netloc}" != origin or parts.path.startswith("/static/")
                    or "sign-out" in parts.path or "sign_out" in parts.path or link in seen):
                continue
            seen.add(link)
            queue.append(link)
    assert not problems, f"{len(problems)} problem(s) in {len(opened)} pages:\n" + "\n".join(problems)
    return opened


@pytest.mark.timeout(900)
def test_a_support_group_for_peer_leaders_is_made_joined_and_left_and_members_never_see_it(
        new_page, platform, seeded, sign_in_as, assert_accessible, assert_fits):
    org_id, site, tag = seeded["org_id"], seeded["site"], seeded["tag"]
    group_name = f"Circle for peer leaders {tag}"
    staff = new_page()
    sign_in_as(staff, platform.token(org_id, "coordinator", sites=[site["id"]]), "coordinator", org_id)
    staff.goto("/meetings/new")
    staff.get_by_label("Name").fill(group_name)
    staff.get_by_label("Peer leader who leads it").select_option(label=f"Lena Portal{tag}")
    staff.get_by_label("Start time").fill("12:30")
    staff.get_by_label("Day of the week").select_option(WEEKDAY_CODES[(datetime.now(CHICAGO).weekday() + 2) % 7])
    staff.get_by_label("A support group for peer leaders").check()
    assert_accessible(staff)
    staff.get_by_role("button", name="Create the meeting").click()
    expect(staff.get_by_role("status")).to_contain_text(f"{group_name} is on the calendar")
    scheduling = platform.client("scheduling", platform.token(org_id, "admin"))
    made = scheduling.get("/v1/meetings", params={"for_peer_providers": "true"}).expect(200)["items"]
    assert [m["name"] for m in made] == [group_name]

    page = new_page(width=375, height=812)
    _sign_in_by_link(page, platform, seeded["lena"]["email"])
    expect(page.get_by_role("heading", name="Welcome, Lena", level=1)).to_be_visible()
    support = page.get_by_role("region", name="Support for peer leaders")
    expect(support.get_by_text(group_name)).to_be_visible()
    support.get_by_role("button", name=f"Join {group_name}").click()
    expect(page.get_by_role("status")).to_contain_text("You joined.")
    expect(support.get_by_text("You have joined.")).to_be_visible()
    assert_accessible(page)
    page.set_viewport_size({"width": 360, "height": 812})
    assert_fits(page)
    seats = scheduling.get(f"/v1/meetings/{made[0]['id']}/registrations").expect(200)["items"]
    assert [(s["member_id"], s["registrant_kind"]) for s in seats] == [(seeded["lena"]["id"], "leader")]
    support.get_by_role("button", name=f"Leave {group_name}").click()
    expect(page.get_by_role("status")).to_contain_text("You left the group.")
    expect(support.get_by_role("button", name=f"Join {group_name}")).to_be_visible()
    assert scheduling.get(f"/v1/meetings/{made[0]['id']}/registrations").expect(200)["items"] == []

    member = new_page(width=375, height=812)
    _sign_in_by_link(member, platform, seeded["mara"]["email"])
    member.goto("/my/meetings")
    expect(member.get_by_text(seeded["circle"]["name"]).first).to_be_visible()
    expect(member.get_by_text(group_name)).to_have_count(0)


@pytest.mark.timeout(900)
def test_the_leader_crawl_and_the_member_crawl_are_clean_and_never_name_an_unmatched_member(
        new_page, platform, seeded, console_url, assert_accessible, assert_fits):
    leader = new_page(width=375, height=812)
    _sign_in_by_link(leader, platform, seeded["lena"]["email"])
    expect(leader.get_by_role("heading", name="Welcome, Lena", level=1)).to_be_visible()
    opened = crawl(leader, console_url, assert_accessible, assert_fits, never_shown=seeded["never"])
    paths = {urlsplit(u).path for u in opened}
    assert "/leader/me" in paths and f"/leader/members/{seeded['mara']['id']}" in paths, paths
    assert any(p.startswith(f"/leader/attendance/{seeded['circle']['id']}/") for p in paths), paths

    member = new_page(width=375, height=812)
    _sign_in_by_link(member, platform, seeded["mara"]["email"])
    opened = crawl(member, console_url, assert_accessible, assert_fits, never_shown=seeded["never"])
    paths = {urlsplit(u).path for u in opened}
    assert {"/my/sessions", "/my/meetings", "/my/messages", "/my/consents", "/my/information"} <= paths, paths
