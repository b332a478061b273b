"""The HTTP edge every service shares (issue 13): bodies of the wrong media type, response headers
on every answer, and API docs that load nothing from another host.

* Every route whose view takes a JSON body answers 415 problem+json to a text/plain body (which
  webargs would otherwise take for an empty one, validating nothing) and changes nothing.
* Every answer of every service says ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy:
  no-referrer``; API answers say ``Cache-Control: no-store`` unless the view chose its own caching.
* ``/docs`` references only its own server's assets, each of which answers 200.
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from shared.testing import eventually
from shared.web.app import takes_json_body

from tests.security.conftest import SERVICES, member_body
from tests.security.test_security_routes import MATCH_ANY, fill, routes

pytestmark = pytest.mark.timeout(300)

BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# What every test here sends as text/plain: what would, as JSON, be refused (a wrong type, an unknown field).
WRONG_BODY = json.dumps({"reason": 12345, "bogus": True})

# Collections written by the platform's own background work (the worker's inbox, the outbox relay and
# its lease, periodic jobs), which may change while the walk runs whatever the requests do.
BACKGROUND = re.compile(r"inbox|outbox|lease|lock|job|relay|offset|heartbeat|worker_status", re.IGNORECASE)


def json_body_routes(app):
    """(rule, method) of every route whose view declares a JSON body."""
    found = []
    for endpoint, rule, method in routes(app):
        if method in BODY_METHODS and takes_json_body(app.view_functions[endpoint], method):
            found.append((rule, method))
    return found


def digest(db) -> dict:
    """A fingerprint of each collection of a service's database (background collections aside)."""
    out = {}
    for name in sorted(db.list_collection_names()):
        if BACKGROUND.search(name):
            continue
        h = hashlib.sha256()
        for doc in db[name].find({}).sort("_id", 1):
            h.update(json.dumps(doc, sort_keys=True, default=str).encode())
        out[name] = h.hexdigest()
    return out


def no_delivery_due_soon(db, horizon=timedelta(seconds=10)) -> None:
    """Wait until the delivery job has nothing to do for ``horizon``. It changes deliveries on its own
    timers (a recipient not known yet is looked at again after 5, 10, 20 ... s; a failing webhook after
    30 s, 2 min ...; a held one when quiet hours end), so a database quiet for a moment can still change under the walk."""
    def quiet():
        soon = datetime.now(timezone.utc) + horizon
        return db.deliveries.find_one({"$or": [{"status": {"$in": ["pending", "held"]}, "next_attempt_at": {"$lt": soon}},
                                               {"status": "sending"}]}) is None
    eventually(quiet, timeout=150, interval=1, message="deliveries kept falling due")


def stable_digest(db) -> dict:
    """The database's fingerprint once the events still travelling from earlier tests have settled."""
    seen = {"last": None}

    def settled():
        now = digest(db)
        same, seen["last"] = now == seen["last"], now
        return now if same else None
    return eventually(settled, timeout=60, interval=0.5, message="the database kept changing")


def test_the_walk_finds_the_json_body_routes(stack):
    """The detection of JSON routes sees the ~25 write routes (so the walk below walks something), and
    not the CSV import, which takes its own media types."""
    found = {service: json_body_routes(stack.apps[service]) for service in SERVICES}
    assert sum(len(v) for v in found.values()) >= 25, found
    assert ("/v1/members/<member_id>/erasure", "POST") in found["intake"]
    assert not [r for r in found["intake"] if r[0].endswith("/imports")]
    assert ("/v1/matches/<match_id>/accept", "POST") not in found["matching"]  # an action without a body


@pytest.mark.parametrize("service", [s for s in SERVICES if s != "reporting"])  # reporting: GET only, no body
def test_every_json_route_refuses_another_media_type_with_415_and_changes_nothing(stack, world, problem, service):
    app, client, db = stack.apps[service], stack.client(service), stack.dbs[service]
    if service == "notifications":
        no_delivery_due_soon(db)
    before = stable_digest(db)
    walked, failures = 0, []
    for rule, method in json_body_routes(app):
        path = fill(service, rule, world.ids)
        who = "operator" if rule.startswith("/v1/organizations") and "<" not in rule else "admin"
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            response = client.open(path, method=method, data=WRONG_BODY, content_type=content_type,
                                   headers={**world.h(who), **MATCH_ANY})
            walked += 1
            try:
                body = problem(response, 415)
                assert "application/json" in body["detail"], body
            except AssertionError as exc:
                failures.append(f"{method} {rule} ({content_type}): {exc}")
    assert not failures, "\n".join(failures)
    assert walked >= 3
    after = digest(db)
    changed = sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))
    assert not changed, f"{service}: refused requests changed {changed}"


def test_a_text_plain_erasure_is_refused_and_the_member_stays(stack, world, problem):
    intake = stack.client("intake")
    created = intake.post("/v1/members", json=member_body(world.ids["site"]), headers=world.h())
    assert created.status_code == 201, created.get_data(as_text=True)
    member = created.get_json()
    response = intake.post(f"/v1/members/{member['id']}/erasure", data=WRONG_BODY, content_type="text/plain",
                           headers=world.h())
    body = problem(response, 415)
    assert "application/json" in body["detail"]
    assert response.headers["Accept-Post"] == "application/json"
    after = intake.get(f"/v1/members/{member['id']}", headers=world.h())
    assert after.status_code == 200, after.get_data(as_text=True)
    assert after.get_json()["first_name"] == member["first_name"]
    assert after.get_json().get("status") == member.get("status")
    # the same request as JSON is validated (the number is not a reason; the unknown field is refused)
    problem(intake.post(f"/v1/members/{member['id']}/erasure", json=json.loads(WRONG_BODY), headers=world.h()), 422)
    assert intake.get(f"/v1/members/{member['id']}", headers=world.h()).status_code == 200


def test_a_body_less_action_and_an_empty_json_route_still_work(stack, world):
    """No body and no Content-Type is not another media type: body-less actions keep working, and so
    does a JSON route whose body may be empty."""
    notifications = stack.client("notifications")
    response = notifications.post(f"/v1/people/{world.ids['member']}/inbox/{world.ids['message']}/read",
                                  headers=world.h())
    assert response.status_code < 300, (response.status_code, response.get_data(as_text=True))
    intake = stack.client("intake")
    response = intake.post(f"/v1/organizations/{world.org}/admin-tokens", headers=world.h("operator"))
    assert response.status_code in (200, 201), (response.status_code, response.get_data(as_text=True))


# --- headers on every answer --------------------------------------------------------------------------

def _answers(stack, world, service):
    """A few answers of each kind: operational, docs, refused, not found, a list, an object."""
    client = stack.client(service)
    yield "healthz", client.get("/healthz")
    yield "metrics", client.get("/metrics")
    yield "openapi", client.get("/openapi.json")
    yield "docs", client.get("/docs")
    yield "404", client.get("/no/such/route")
    for endpoint, rule, method in routes(stack.apps[service]):
        if (method == "GET" and rule.startswith("/v1/") and "/feeds/" not in rule and "unsubscribe" not in rule
                and not rule.endswith("occurrences")):
            path = fill(service, rule, world.ids)
            yield f"GET {rule}", client.get(path, headers=world.h())
            yield f"GET {rule} (no token)", client.get(path)
            yield f"GET {rule} (another organization)", client.get(path, headers=world.h("other_admin"))


@pytest.mark.parametrize("service", SERVICES)
def test_every_answer_says_nosniff_no_referrer_and_no_store(stack, world, service):
    seen = 0
    for what, response in _answers(stack, world, service):
        assert response.headers.get("X-Content-Type-Options") == "nosniff", what
        assert response.headers.get("Referrer-Policy") == "no-referrer", what
        assert response.headers.get("Cache-Control") == "no-store", (what, response.headers.get("Cache-Control"))
        seen += 1
    assert seen >= 8


def test_public_feeds_keep_their_own_caching_and_get_the_other_headers(stack, world):
    scheduling = stack.client("scheduling")
    for path in (f"/v1/feeds/{world.org}/meeting-guide.json", f"/v1/feeds/{world.org}/sites/{world.ids['site']}/meetings.ics"):
        response = scheduling.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "public, max-age=300", path
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"


# --- API docs offline -----------------------------------------------------------------------------------

class _References(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


@pytest.mark.parametrize("service", SERVICES)
def test_the_api_docs_load_only_their_own_assets(stack, service):
    client = stack.client(service)
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    parser = _References()
    parser.feed(html)
    assert len(parser.urls) >= 3, parser.urls  # the stylesheet and the two scripts
    for url in parser.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} is on another host"
        asset = client.get(parts.path if parts.path.startswith("/") else f"/{parts.path}")
        assert asset.status_code == 200, (url, asset.status_code)
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
        assert len(asset.get_data()) > 1000, url
    assert not re.search(r"https?://", html), "the docs page names another host"
    assert client.get("/redoc").status_code == 404  # dropped: no pinned Redoc on PyPI without a framework
