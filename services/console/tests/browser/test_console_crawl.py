"""The crawl (issue 16's tests): signed in as an organization's admin and as one site's coordinator, follow every
same-origin link from Today, breadth first, and check every page reached: it answers 200, logs no console error
and throws no page error, asks no other host for anything, and axe finds nothing serious or critical on it.

Only links are followed (GETs); forms are never submitted, so the crawl changes nothing. Skipped: links that
download a file (``download``), anything under /static/, and anything to do with signing out (sign-out is a
POST form anyway). The crawl is bounded: the same kind of page (the path with its ids and dates blanked, and the
query's names) is opened at most ``PER_KIND`` times, and at most ``MOST_PAGES`` pages in all, so "next week"
and "next page" links cannot lead it on for ever.

What must not be seen, seeded on purpose: a member at the organization's other site (the coordinator's crawl
never shows their name, and their pages answer the 404 page), and another organization with a member, a peer
leader and a meeting (neither crawl ever shows them, and their addresses answer the 404 page with the first
organization's session cookie). The admin pages a coordinator is not offered answer the 404 page too.
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
CERTIFIED = [{"name": "Peer Recovery Specialist", "expires_on": "2031-01-01"}]
WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
PER_KIND = 2
MOST_PAGES = 90
ID_LIKE = re.compile(r"^(?=.*\d)\S{8,}$|^\d+$")   # ids, occurrence ids, dates: a digit, and long or all digits


def _member(intake, site_id: str, first: str, last: str, **extra) -> dict:
    return intake.post("/v1/members", json={
        "first_name": first, "last_name": last, "email": f"{first.lower()}.{uuid.uuid4().hex[:6]}@example.org",
        "site_id": site_id, "languages": ["en"], "availability": ALL_DAYS, "date_of_birth": "1988-04-17",
        "consents": [{"purpose": "matching"}, {"purpose": "notify:email"}], **extra}).expect(201)


def _leader(intake, site_id: str, first: str, last: str) -> dict:
    return intake.post("/v1/leaders", json={
        "first_name": first, "last_name": last, "email": f"{first.lower()}.{uuid.uuid4().hex[:6]}@example.org",
        "site_ids": [site_id], "languages": ["en"], "availability": ALL_DAYS, "capacity": 3,
        "certifications": CERTIFIED}).expect(201)


def _meeting(platform, org_id: str, site_id: str, leader_id: str, name: str) -> dict:
    """A weekly meeting that began an hour ago (scheduling hears of the leader by event: retried until it has)."""
    scheduling = platform.client("scheduling", platform.token(org_id, "admin"))
    start = datetime.now(ZoneInfo("America/Chicago")) - timedelta(hours=1)

    def created():
        answer = scheduling.post("/v1/meetings", json={
            "name": name, "site_id": site_id, "facilitator_id": leader_id, "capacity": 10, "attendance_mode": "in_person",
            "rrule": f"FREQ=WEEKLY;BYDAY={WEEKDAY_CODES[start.weekday()]}", "first_start_local": start.strftime("%Y-%m-%dT%H:%M"),
            "duration_minutes": 120})
        if answer.status_code == 422 and "not-yet-known" in answer.text:
            return None
        return answer.expect(201)

    return eventually(created, timeout=60, interval=0.5, message=f"meeting {name} created")


@pytest.fixture
def seeded(platform, organization):
    """Organization A (the fixture's, site Harbor House) with a second site, Lakeside; a peer leader, a member
    proposed to them, a member waiting, a meeting at Harbor House; a member at Lakeside the Harbor House
    coordinator must never see. Organization B with a member, a leader and a meeting nobody in A may see."""
    org_id, site, intake = organization
    tag = uuid.uuid4().hex[:6]
    lakeside = intake.post("/v1/sites", json={"name": "Lakeside", "time_zone": "America/Chicago",
                                              "address": {"city": "Chicago"}}).expect(201)
    leader = _leader(intake, site["id"], "Lena", f"Crawl{tag}")
    proposed = _member(intake, site["id"], "Mara", f"Crawl{tag}")
    _member(intake, site["id"], "Claude", f"Crawl{tag}", languages=["fr"])           # waits: nobody speaks French
    elsewhere = _member(intake, lakeside["id"], "Otto", f"Elsewhere{tag}")             # the other site's member
    meeting = _meeting(platform, org_id, site["id"], leader["id"], f"Crawl circle {tag}")
    matching = platform.client("matching", platform.token(org_id, "admin"))
    eventually(lambda: matching.get("/v1/matches", params={"member_id": proposed["id"]}).expect(200)["items"],
               timeout=60, interval=0.5, message="a proposal for Mara")

    operator = platform.client("intake", platform.token(None, "operator"))
    other_org = operator.post("/v1/organizations", json={"name": f"Other House {tag}", "default_language": "en"}).expect(201)
    other_intake = platform.client("intake", platform.token(other_org["id"], "admin"))
    other_site = other_intake.post("/v1/sites", json={"name": f"Far Site {tag}", "time_zone": "America/New_York",
                                                      "address": {"city": "Albany"}}).expect(201)
    other_member = _member(other_intake, other_site["id"], "Zelda", f"Otherorg{tag}")
    other_leader = _leader(other_intake, other_site["id"], "Yusuf", f"Otherorg{tag}")
    other_meeting = _meeting(platform, other_org["id"], other_site["id"], other_leader["id"], f"Other circle {tag}")
    other_scheduling = platform.client("scheduling", platform.token(other_org["id"], "admin"))
    today = datetime.now(ZoneInfo("America/New_York")).date()
    other_occurrence = other_scheduling.get(f"/v1/meetings/{other_meeting['id']}/occurrences", params={
        "from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=8)).isoformat()}).expect(200)[0]
    return {"org_id": org_id, "site": site, "lakeside": lakeside, "tag": tag, "elsewhere": elsewhere,
            "meeting": meeting, "other_org": other_org, "other_member": other_member,
            "other_leader": other_leader, "other_meeting": other_meeting,
            "other_occurrence": other_occurrence}


def _kind(url: str) -> tuple:
    """The kind of page: its path with ids and dates blanked, and the names in its query."""
    parts = urlsplit(url)
    path = tuple("*" if ID_LIKE.match(segment) else segment for segment in parts.path.split("/"))
    return path, tuple(sorted({name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}))


class Watch:
    """Console errors, page errors and requests to other hosts, since the last ``take()``."""

    def __init__(self, page, own_netloc: str):
        self.errors: list[str] = []
        self.elsewhere: list[str] = []
        page.on("console", lambda message: message.type == "error" and self.errors.append(
            f"console: {message.text} ({message.location.get('url')})"))
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("request", lambda request: urlsplit(request.url).scheme in ("http", "https", "ws", "wss")
                and urlsplit(request.url).netloc != own_netloc and self.elsewhere.append(request.url))

    def take(self) -> tuple[list[str], list[str]]:
        errors, elsewhere = self.errors, self.elsewhere
        self.errors, self.elsewhere = [], []
        return errors, elsewhere


def _links(page, origin: str) -> list[str]:
    hrefs = page.eval_on_selector_all(
        "a[href]", "links => links.filter(a => !a.hasAttribute('download')).map(a => a.href)")
    found = []
    for href in hrefs:
        url = urldefrag(href)[0]
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != origin:
            continue
        if parts.path.startswith("/static/") or "sign-out" in parts.path or "sign_out" in parts.path:
            continue
        found.append(url)
    return found


def crawl(page, console_url: str, assert_accessible, *, never_shown: list[str]) -> dict[str, int]:
    """Breadth first from Today; returns {url: status} of every page opened. Fails with every problem found."""
    origin = f"{urlsplit(console_url).scheme}://{urlsplit(console_url).netloc}"
    watch = Watch(page, urlsplit(console_url).netloc)
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
        content = page.content()
        for text in never_shown:
            if text in content:
                problems.append(f"{url}: shows {text!r}, which this person must never see")
        try:
            assert_accessible(page)   # the conftest's axe check: nothing serious or critical
        except AssertionError as axe:
            problems.append(str(axe))
        errors, elsewhere = watch.take()
        problems += [f"{url}: {e}" for e in errors]
        problems += [f"{url}: asked another host for {e}" for e in elsewhere]
        for link in _links(page, origin):
            if link not in seen:
                seen.add(link)
                queue.append(link)
    assert not problems, f"{len(problems)} problem(s) in {len(opened)} pages:\n" + "\n".join(problems)
    print(f"crawled {len(opened)} pages of {len(kinds)} kinds; {len(seen) - len(opened)} links not opened (kinds seen enough)")
    return opened


def _hidden(page, paths: list[str], never_shown: list[str]) -> None:
    """Each address answers the 404 page, in the layout, naming nobody."""
    for path in paths:
        answer = page.goto(path)
        assert answer.status == 404, f"{path}: {answer.status}"
        expect(page.get_by_role("heading", name="Page not found", level=1)).to_be_visible()
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        content = page.content()
        assert not [t for t in never_shown if t in content], path


def _other_org(seeded) -> tuple[list[str], list[str]]:
    member, leader, meeting = seeded["other_member"], seeded["other_leader"], seeded["other_meeting"]
    names = [f"Zelda Otherorg{seeded['tag']}", f"Yusuf Otherorg{seeded['tag']}", f"Other circle {seeded['tag']}",
             seeded["other_org"]["name"]]
    paths = [f"/members/{member['id']}", f"/members/{member['id']}/edit", f"/matching/members/{member['id']}",
             f"/leaders/{leader['id']}/edit",
             f"/meetings/{meeting['id']}/occurrences/{seeded['other_occurrence']['occurrence_id']}"]
    return names, paths


@pytest.mark.timeout(900)   # the platform's start (on a loaded machine) and ~90 pages with axe
def test_the_admin_crawl_reaches_every_page_cleanly_and_never_another_organization(
        page, platform, seeded, sign_in_as, console_url, assert_accessible):
    names, paths = _other_org(seeded)
    sign_in_as(page, platform.token(seeded["org_id"], "admin"), "admin", seeded["org_id"])
    opened = crawl(page, console_url, assert_accessible, never_shown=names)
    # the crawl went everywhere an admin is offered, both sites included
    reached = {urlsplit(u).path.split("/")[1] for u in opened}
    assert {"members", "meetings", "sessions", "leaders", "matching", "messages", "audit", "staff"} <= reached, reached
    assert any(seeded["elsewhere"]["id"] in u for u in opened), "the admin reaches the Lakeside member"
    assert any(seeded["meeting"]["id"] in u for u in opened), "the crawl reached the meeting's day"
    # a session cookie of this organization does not open the other organization's records
    _hidden(page, paths, names)


@pytest.mark.timeout(900)
def test_the_coordinator_crawl_reaches_every_page_cleanly_and_never_another_sites_member(
        page, platform, seeded, sign_in_as, console_url, assert_accessible):
    site, elsewhere = seeded["site"], seeded["elsewhere"]
    other_names, other_paths = _other_org(seeded)
    never = other_names + [f"Otto Elsewhere{seeded['tag']}", f"Elsewhere{seeded['tag']}"]
    sign_in_as(page, platform.token(seeded["org_id"], "coordinator", sites=[site["id"]]), "coordinator", seeded["org_id"])
    opened = crawl(page, console_url, assert_accessible, never_shown=never)
    reached = {urlsplit(u).path.split("/")[1] for u in opened}
    assert {"members", "meetings", "sessions", "leaders", "matching", "messages"} <= reached, reached
    assert not reached & {"audit", "staff"}, "a coordinator is offered an admin page"
    assert not any(elsewhere["id"] in u for u in opened)
    # the other site's member and the admin pages answer the 404 page; so does the other organization
    _hidden(page, [f"/members/{elsewhere['id']}", f"/members/{elsewhere['id']}/edit",
                   f"/matching/members/{elsewhere['id']}", "/audit", "/staff", "/matching/settings",
                   "/messages/webhooks"] + other_paths, never)


@pytest.mark.timeout(600)
def test_a_session_cookie_of_one_organization_sees_only_that_organization(
        new_page, platform, seeded, sign_in_as, console_url):
    """Two signed-in admins, one per organization, each with their own cookie: each sees their own members and
    never the other's; moving A's cookie into a fresh browser still shows A, not B."""
    tag = seeded["tag"]
    a_page, b_page = new_page(), new_page()
    a_cookie = sign_in_as(a_page, platform.token(seeded["org_id"], "admin"), "admin", seeded["org_id"])
    sign_in_as(b_page, platform.token(seeded["other_org"]["id"], "admin"), "admin", seeded["other_org"]["id"])
    for page, mine, theirs in ((a_page, f"Mara Crawl{tag}", f"Zelda Otherorg{tag}"),
                               (b_page, f"Zelda Otherorg{tag}", f"Mara Crawl{tag}")):
        page.goto("/members")
        found = page.get_by_role("region", name="Found")
        expect(found.get_by_role("link", name=mine)).to_be_visible()
        expect(found.get_by_role("link", name=theirs)).to_have_count(0)
    assert b_page.goto(f"/members/{seeded['elsewhere']['id']}").status == 404  # A's member, B's cookie
    expect(b_page.get_by_role("heading", name="Page not found", level=1)).to_be_visible()

    fresh = new_page()
    fresh.context.add_cookies([{"name": "console_session", "value": a_cookie, "url": console_url}])
    fresh.goto("/members")
    expect(fresh.get_by_role("region", name="Found").get_by_role("link", name=f"Mara Crawl{tag}")).to_be_visible()
    assert fresh.goto(f"/members/{seeded['other_member']['id']}").status == 404
