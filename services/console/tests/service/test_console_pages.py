"""What the console does on its own: pages render in both languages, CSRF refuses a POST without the token,
sessions end on sign-out, after 30 idle minutes and after 12 hours, errors keep the layout."""
from __future__ import annotations

import re
import time

from console import sessions


def csrf(page_html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page_html).group(1)


def sign_in_as(app, client, role="coordinator", *, started=None, seen=None, expires_in=3600):
    """Put a signed-in person in this client's session, as the sign-in callback does after intake answers."""
    with client.session_transaction() as session_:
        now = time.time()
        session_[sessions.PERSON] = {"token": "t", "role": role, "person_id": "p1", "organization_id": "o1",
                                     "organization_name": None, "token_expires": now + expires_in}
        session_["started"] = started if started is not None else now
        session_["seen"] = seen if seen is not None else now
        session_.permanent = True


def test_the_sign_in_page_renders_in_english_and_in_spanish(client):
    english = client.get("/sign-in", headers={"Accept-Language": "en"})
    assert english.status_code == 200
    assert "Email address" in english.text and '<html lang="en">' in english.text
    page = client.get("/sign-in", headers={"Accept-Language": "es"}).text
    assert "Correo electrónico" in page and '<html lang="es">' in page


def test_the_language_chosen_is_kept_in_the_session_over_the_browser_s(client):
    token = csrf(client.get("/sign-in").text)
    answer = client.post("/language", data={"lang": "es", "next": "/sign-in", "csrf_token": token})
    assert answer.status_code == 303 and answer.headers["Location"] == "/sign-in"
    assert "Iniciar sesión" in client.get("/sign-in", headers={"Accept-Language": "en"}).text


def test_the_language_switch_never_redirects_to_another_host(client):
    token = csrf(client.get("/sign-in").text)
    for target in ("https://evil.example/x", "//evil.example/x", "/\\evil.example"):
        answer = client.post("/language", data={"lang": "en", "next": target, "csrf_token": token})
        assert answer.headers["Location"] == "/"


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(client):
    client.get("/sign-in")
    answer = client.post("/language", data={"lang": "es", "next": "/sign-in"})
    assert answer.status_code == 400
    assert "This form has expired" in answer.text
    assert "Email address" in client.get("/sign-in", headers={"Accept-Language": "en"}).text


def test_every_page_answer_is_not_cached_and_loads_nothing_from_another_host(client):
    answer = client.get("/sign-in")
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'self'" in answer.headers["Content-Security-Policy"]
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_an_unknown_page_is_a_404_in_the_layout(client):
    answer = client.get("/no-such-page")
    assert answer.status_code == 404
    assert "Page not found" in answer.text and 'href="#main"' in answer.text


def test_home_sends_a_stranger_to_sign_in(client):
    answer = client.get("/")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/sign-in")


def test_a_leader_s_and_a_member_s_home_is_their_portal(app, client):
    """Their portal's home asks the services (none answers here): the layout says so, signed in; no
    placeholder page any more."""
    for role in ("leader", "member"):
        sign_in_as(app, client, role=role)
        answer = client.get("/")
        assert answer.status_code == 503, role
        assert "Part of the platform is not answering" in answer.text and "Sign out" in answer.text
        assert "Your pages are being built" not in answer.text


def test_the_operator_sees_plainly_that_there_are_no_pages_for_them_yet(app, client):
    sign_in_as(app, client, role="operator")
    page = client.get("/").text
    assert "There are no pages for this role in the console yet." in page and "platform operator" in page


def test_a_staff_page_whose_service_is_away_says_so_in_the_layout(app, client):
    sign_in_as(app, client, role="coordinator")
    answer = client.get("/")
    assert answer.status_code == 503
    assert "Part of the platform is not answering" in answer.text and "Sign out" in answer.text


def test_after_sign_out_the_old_cookie_does_nothing(app, client):
    sign_in_as(app, client, role="leader")
    assert "Sign out" in client.get("/").text
    old = client.get_cookie("console_session").value
    token = csrf(client.get("/").text)
    assert client.post("/sign-out", data={"csrf_token": token}).status_code == 303
    other = app.test_client()
    other.set_cookie("console_session", old)
    assert other.get("/").status_code == 302
    stored = app.extensions["console.db"]["sessions"].find_one({"id": "session:" + old})
    assert stored is None


def test_a_session_ends_after_30_idle_minutes(app, client):
    sign_in_as(app, client, role="leader", seen=time.time() - 31 * 60)
    answer = client.get("/")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/sign-in")
    assert "without activity" in client.get("/sign-in").text


def test_an_idle_member_s_session_ends_before_their_portal_asks_anything(app, client):
    for path in ("/", "/my/sessions"):
        sign_in_as(app, client, role="member", seen=time.time() - 31 * 60)
        answer = client.get(path)
        assert answer.status_code == 302 and answer.headers["Location"].endswith("/sign-in"), path
        assert "without activity" in client.get("/sign-in").text


def test_a_session_ends_after_12_hours_however_busy(app, client):
    sign_in_as(app, client, role="leader", started=time.time() - 12 * 3600 - 60)
    assert client.get("/").status_code == 302


def test_a_session_ends_when_its_token_expires(app, client):
    sign_in_as(app, client, role="leader", expires_in=-1)
    assert client.get("/").status_code == 302


def test_readiness_says_whether_the_database_answers(client):
    assert client.get("/readyz").json == {"status": "ready", "service": "console"}
