"""Journey 6 (issue 15): people sign in and each sees exactly their own world.

A coordinator, a peer leader and a member each ask for a code (POST /v1/sign-in), read it from the mail
catcher and exchange it (POST /v1/sign-in/token); then, with nothing but the token they got:
* the coordinator sees their site's members and matches, and 403/404 on the rest;
* the member accepts their proposal, books a session with their leader from the suggested times,
  registers for a public meeting at their site, and downloads their record from each service;
* the leader sees their member's preferred name but not their contact details until the member gives
  ``share:leader`` through /v1/me/consents, and nothing once the coordinator ends the match.
Also: a code is accepted once even by two racing requests; an unknown address is answered exactly as a
known one; tokens signed with the old shared secret (HS256, any secret) are refused by every service.
"""
from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import jwt
import pytest
import requests

SUBJECT = "Your Recovery Network sign-in code"
LINK = re.compile(r"/sign-in/callback\?code=([A-Za-z0-9_%\-]+)")
CODE = re.compile(r"enter this code: ([A-Z0-9]{4}-[A-Z0-9]{4})")
INVALID_CODE = "https://recoverynet.org/problems/invalid-sign-in-code"
# Headers that differ between any two answers whatever they say: the rest must be identical.
PER_REQUEST_HEADERS = {"date", "x-request-id", "traceparent", "server", "x-trace-id", "connection", "keep-alive"}


def sign_in_mail(org, address: str, *, seen: int = 0) -> dict:
    """The next sign-in message to ``address`` (after the ``seen`` ones before it)."""
    return org.wait_mail(address, lambda m: m["subject"] == SUBJECT, count=seen + 1)[seen]


def ask_code(org, address: str) -> None:
    answer = requests.post(org.platform.url("intake") + "/v1/sign-in", json={"email": address}, timeout=30)
    assert answer.status_code == 202, answer.text


def exchange(org, code: str) -> requests.Response:
    return requests.post(org.platform.url("intake") + "/v1/sign-in/token", json={"code": code}, timeout=30)


def sign_in(org, address: str, *, by: str = "link") -> dict:
    """Sign in as the person at ``address`` by the link (its code parameter) or by the typed code."""
    seen = len([m for m in org.mail(address) if m["subject"] == SUBJECT])
    ask_code(org, address)
    text = sign_in_mail(org, address, seen=seen)["text"]
    found = (LINK if by == "link" else CODE).search(text)
    assert found, f"no sign-in {by} in {text!r}"
    code = requests.utils.unquote(found.group(1))
    answer = exchange(org, code)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0 and body["access_token"]
    return body


def clients(org, token: str):
    return {s: org.platform.client(s, token) for s in ("intake", "matching", "scheduling", "notifications")}


def problem(response, *statuses):
    assert response.status_code in statuses, (response.raw.request.method, response.raw.request.url,
                                              response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("application/problem+json"), response.headers
    return response.json


@pytest.mark.timeout(240)
def test_journey_6_each_person_signs_in_by_link_and_sees_their_own_world(new_org, helpers):
    org = new_org("journey 6 sign-in")
    harbor = org.site("Harbor", "America/New_York")
    ridge = org.site("Ridge", "America/Denver")
    cleo = org.coordinator("Cleo", [harbor["id"]])
    lior = org.leader("Lior", [harbor["id"]], capacity=2, bio="Ten years in recovery; I like long walks.")
    org.leader("Rory", [ridge["id"]], capacity=2)
    mia = org.member("Mia", harbor["id"], preferred_name="Mimi", phone="+16175550123")
    bea = org.member("Bea", ridge["id"])
    org.remember("Mimi", mia["phone"])

    def open_match(member_id):
        items = org.matching.get("/v1/matches", params={"member_id": member_id}).expect(200)["items"]
        return items[0] if items else None
    bea_match = helpers.eventually(lambda: open_match(bea["id"]), timeout=60, message="Bea's proposal")

    # --- the member signs in by link --------------------------------------------------------------
    signed = sign_in(org, mia["email"])
    assert (signed["role"], signed["person_id"], signed["organization_id"]) == ("member", mia["id"], org.id)
    member = clients(org, signed["access_token"])
    me = member["intake"].get("/v1/me").expect(200)
    assert me["role"] == "member" and me["member"]["id"] == mia["id"] and me["member"]["preferred_name"] == "Mimi"
    assert "flags" not in me["member"] and "substances" not in me["member"]
    # ... their proposal, with reasons, and their leader's first name and bio
    state = helpers.eventually(lambda: member["matching"].get("/v1/me/match").expect(200)["match"], timeout=60,
                               message="Mia's proposal")
    assert state["status"] == "proposed" and state["leader_id"] == lior["id"] and state["reasons"]
    my_leader = member["intake"].get("/v1/me/leader").expect(200)
    assert my_leader["leader"]["first_name"] == "Lior" and my_leader["leader"]["bio"].startswith("Ten years")
    assert lior["last_name"] not in str(my_leader) and lior["email"] not in str(my_leader)
    # ... and nothing that is not theirs
    problem(member["intake"].get("/v1/members"), 403)
    problem(member["intake"].get(f"/v1/members/{bea['id']}"), 403, 404)
    problem(member["intake"].get("/v1/me/members"), 403)
    problem(member["matching"].get(f"/v1/matches/{bea_match['id']}"), 404)
    assert [m["id"] for m in member["matching"].get("/v1/matches").expect(200)["items"]] == [state["id"]]
    problem(member["matching"].get("/v1/waitlist"), 403)
    problem(member["notifications"].get(f"/v1/people/{bea['id']}/inbox"), 404)
    member["notifications"].get(f"/v1/people/{mia['id']}/inbox").expect(200)
    problem(member["notifications"].get("/v1/deliveries"), 403)

    # --- the member accepts, books a session from the suggested times, registers for a meeting ----
    accepted = member["matching"].post(f"/v1/matches/{state['id']}/accept").expect(200)
    assert accepted["status"] == "active"

    def suggested():
        answer = member["scheduling"].get("/v1/me/suggestions")
        return answer.status_code == 200 and answer.json["suggestions"]
    slots = helpers.eventually(suggested, timeout=60, message="times suggested with Mia's leader")
    session = member["scheduling"].post("/v1/sessions", json={"match_id": state["id"],
                                                               "start": slots[0]["start"]}).expect(201)
    assert session["booked_by_role"] == "member"
    first = (datetime.now(timezone.utc) + timedelta(days=3)).strftime("%Y-%m-%dT10:00")
    meeting = org.meeting({"site_id": harbor["id"], "facilitator_id": lior["id"], "name": "Harbor circle",
                           "capacity": 10, "attendance_mode": "in_person", "rrule": "FREQ=WEEKLY",
                           "first_start_local": first, "duration_minutes": 60, "is_public": True})
    assert meeting["id"] in [m["id"] for m in member["scheduling"].get("/v1/meetings").expect(200)["items"]]
    problem(member["scheduling"].post(f"/v1/meetings/{meeting['id']}/registrations",
                                      json={"member_id": bea["id"]}), 403)

    def register():
        answer = member["scheduling"].post(f"/v1/meetings/{meeting['id']}/registrations",
                                           json={"member_id": mia["id"]})
        if answer.status_code == 422 and "/problems/not-yet-known" in answer.text:
            return None
        return answer.expect(201)
    registration = helpers.eventually(register, timeout=30)
    mine = member["scheduling"].get("/v1/me/registrations").expect(200)["items"]
    assert [r["id"] for r in mine] == [registration["id"]]

    # --- the leader signs in (by the typed code) and sees Mimi, without contact details ----------
    led = sign_in(org, lior["email"], by="code")
    assert (led["role"], led["person_id"], led["organization_id"]) == ("leader", lior["id"], org.id)
    leader = clients(org, led["access_token"])
    assert leader["intake"].get("/v1/me").expect(200)["leader"]["id"] == lior["id"]
    mine = helpers.eventually(lambda: leader["intake"].get("/v1/me/members").expect(200), timeout=30,
                              message="Lior's members")
    assert [m["member_id"] for m in mine] == [mia["id"]]
    view = leader["intake"].get(f"/v1/me/members/{mia['id']}").expect(200)
    assert view["name"] == "Mimi" and view["contact_shared"] is False and not view.get("contact")
    for secret in (mia["email"], mia["phone"], mia["last_name"], "1988-04-17"):
        assert secret not in str(view), secret
    problem(leader["intake"].get(f"/v1/members/{mia['id']}"), 403)
    problem(leader["intake"].get(f"/v1/me/members/{bea['id']}"), 404)
    problem(leader["intake"].get(f"/v1/members/{mia['id']}/screenings"), 403, 404)
    problem(leader["matching"].get(f"/v1/matches/{bea_match['id']}"), 404)
    assert [m["id"] for m in leader["matching"].get("/v1/matches").expect(200)["items"]] == [state["id"]]
    assert session["id"] in [s["id"] for s in leader["scheduling"].get("/v1/sessions").expect(200)["items"]]

    # ... until the member shares their contact details with their leader
    given = member["intake"].post("/v1/me/consents", json={"purpose": "share:leader"}).expect(201)
    assert "share:leader" in [c["purpose"] for c in given]
    view = leader["intake"].get(f"/v1/me/members/{mia['id']}").expect(200)
    assert view["contact_shared"] is True and view["contact"]["email"] == mia["email"]
    assert view["contact"]["phone"] == mia["phone"]

    # --- the coordinator signs in by link: their site's world only ---------------------------------
    staffed = sign_in(org, cleo["email"])
    assert (staffed["role"], staffed["person_id"], staffed["organization_id"]) == ("coordinator", cleo["id"], org.id)
    assert staffed["sites"] == [harbor["id"]]
    coordinator = clients(org, staffed["access_token"])
    me = coordinator["intake"].get("/v1/me").expect(200)
    assert me["role"] == "coordinator" and me["site_ids"] == [harbor["id"]] and me["staff"]["id"] == cleo["id"]
    listed = coordinator["intake"].all_items("/v1/members")
    assert mia["id"] in [m["id"] for m in listed] and {m["site_id"] for m in listed} == {harbor["id"]}
    problem(coordinator["intake"].get(f"/v1/members/{bea['id']}"), 404)
    problem(coordinator["intake"].get("/v1/staff"), 403)
    problem(coordinator["intake"].get("/v1/me/members"), 403)
    problem(coordinator["intake"].get("/v1/me/export"), 403)
    matches = coordinator["matching"].all_items("/v1/matches")
    assert state["id"] in [m["id"] for m in matches] and {m["site_id"] for m in matches} == {harbor["id"]}
    problem(coordinator["matching"].get(f"/v1/matches/{bea_match['id']}"), 404)

    # --- the member downloads their record from every service --------------------------------------
    exports = {s: member[s].get("/v1/me/export").expect(200) for s in member}
    assert exports["intake"]["member"]["id"] == mia["id"]
    assert "share:leader" in {c["purpose"] for c in exports["intake"]["member"]["consents"]}
    assert state["id"] in str(exports["matching"]["matches"])
    assert session["id"] in str(exports["scheduling"]["sessions"])
    assert registration["id"] in str(exports["scheduling"]["registrations"])
    assert exports["notifications"]["member_id"] == mia["id"]
    for service, export in exports.items():
        text = str(export)
        assert mia["id"] in text, service
        for other in (bea["id"], bea["email"], bea_match["id"]):
            assert other not in text, (service, other)
    problem(org.platform.client("matching", led["access_token"]).get("/v1/me/export"), 403)

    # --- the coordinator ends the match (the member's choice: no new proposal follows) -------------
    coordinator["matching"].post(f"/v1/matches/{state['id']}/end",
                                 json={"reason_code": "member_choice", "reason": "journey"}).expect(200)

    def gone():
        answer = leader["intake"].get(f"/v1/me/members/{mia['id']}")
        return answer.status_code == 404
    helpers.eventually(gone, timeout=30, message="the leader's view of Mia closes with the match")
    assert leader["intake"].get("/v1/me/members").expect(200) == []
    problem(leader["intake"].get(f"/v1/members/{mia['id']}"), 403)


@pytest.mark.timeout(120)
def test_journey_6_a_code_is_accepted_once_even_by_two_racing_requests(new_org, helpers):
    org = new_org("journey 6 racing")
    site = org.site("Quay", "Europe/Lisbon")
    rui = org.member("Rui", site["id"])
    seen = len([m for m in org.mail(rui["email"]) if m["subject"] == SUBJECT])
    ask_code(org, rui["email"])
    text = sign_in_mail(org, rui["email"], seen=seen)["text"]
    link_code = requests.utils.unquote(LINK.search(text).group(1))
    typed_code = CODE.search(text).group(1)

    barrier, answers = threading.Barrier(2), []

    def race():
        barrier.wait(timeout=10)
        answers.append(exchange(org, link_code))
    threads = [threading.Thread(target=race) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(a.status_code for a in answers) == [200, 400], [(a.status_code, a.text[:200]) for a in answers]
    loser = next(a for a in answers if a.status_code == 400)
    assert loser.headers["Content-Type"].startswith("application/problem+json")
    assert loser.json()["type"] == INVALID_CODE
    winner = next(a for a in answers if a.status_code == 200).json()
    assert winner["person_id"] == rui["id"] and winner["role"] == "member"
    # the code is spent in both its forms, and again later
    for code in (link_code, typed_code, typed_code.lower().replace("-", " ")):
        again = exchange(org, code)
        assert again.status_code == 400 and again.json()["type"] == INVALID_CODE, again.text
    # the winner's token works
    org.platform.client("intake", winner["access_token"]).get("/v1/me").expect(200)


@pytest.mark.timeout(120)
def test_journey_6_an_unknown_address_is_answered_exactly_as_a_known_one(new_org, helpers):
    org = new_org("journey 6 no discovery")
    site = org.site("Dune", "Europe/Madrid")
    known = org.member("Kim", site["id"])["email"]
    unknown = f"nobody.{uuid.uuid4().hex[:8]}@example.org"
    seen = len([m for m in org.mail(known) if m["subject"] == SUBJECT])
    url = org.platform.url("intake") + "/v1/sign-in"
    answers = {}
    for name, address in (("known", known), ("unknown", unknown), ("known upper-case", known.upper())):
        started = time.monotonic()
        answers[name] = (requests.post(url, json={"email": address}, timeout=30), time.monotonic() - started)

    def shown(response):
        return {k.lower(): v for k, v in response.headers.items() if k.lower() not in PER_REQUEST_HEADERS}
    reference, _ = answers["known"]
    assert reference.status_code == 202
    for name, (answer, _) in answers.items():
        assert answer.status_code == reference.status_code, name
        assert answer.content == reference.content, (name, answer.text, reference.text)
        assert shown(answer) == shown(reference), (name, shown(answer), shown(reference))
        assert "set-cookie" not in shown(answer) and "retry-after" not in shown(answer)

    # the known address receives its codes (two: asked twice); the unknown one nothing
    sign_in_mail(org, known, seen=seen + 1)
    assert org.mail(unknown) == []
    # a phone nobody has is answered as an email nobody has
    phone = requests.post(url, json={"phone": "+16175550199"}, timeout=30)
    assert phone.status_code == 202 and phone.content == reference.content


def _old_secret_token(payload: dict, secret: str, **headers) -> str:
    return jwt.encode(payload, secret, algorithm="HS256", headers=headers or None)


@pytest.mark.filterwarnings("ignore:The HMAC key is")  # the old default secret was short: that is the point
@pytest.mark.timeout(120)
def test_journey_6_tokens_signed_with_the_old_shared_secret_are_refused_by_every_service(new_org, platform):
    org = new_org("journey 6 old tokens")
    good = platform.token(org.id, "admin")
    claims = jwt.decode(good, options={"verify_signature": False})
    kid = jwt.get_unverified_header(good)["kid"]
    jwks = requests.get(platform.url("intake") + "/.well-known/jwks.json", timeout=10).json()
    assert kid in [k["kid"] for k in jwks["keys"]] and all(k["kty"] == "OKP" for k in jwks["keys"])
    forged = [_old_secret_token(claims, "change-me"),                       # the old default AUTH_SECRET
              _old_secret_token(claims, "a-long-random-shared-secret-" + uuid.uuid4().hex),
              _old_secret_token(claims, "change-me", kid=kid),            # naming intake's key id
              _old_secret_token({**claims, "role": "operator", "org": None}, "change-me")]
    routes = {"intake": "/v1/members", "matching": "/v1/matches", "scheduling": "/v1/meetings",
              "notifications": "/v1/deliveries", "reporting": "/v1/reports/outcomes"}
    for service, path in routes.items():
        platform.client(service, good).get(path).expect(200)
        for token in forged:
            answer = platform.client(service, token).get(path)
            assert answer.status_code == 401, (service, answer.status_code, answer.text[:300])
            assert answer.headers["Content-Type"].startswith("application/problem+json"), service
    operator = platform.client("intake", forged[3]).post("/v1/organizations", json={"name": "forged"})
    assert operator.status_code == 401, operator.text
