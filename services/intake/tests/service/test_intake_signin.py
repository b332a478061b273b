"""Signing in (issue 15, part B): POST /v1/sign-in answers alike for every address and is rate-limited;
a code reaches the contacts topic only; POST /v1/sign-in/token accepts a code once (even racing), refuses
used, expired and unknown codes, lets a person in two organizations choose; staff invitations and
deactivation; operator accounts."""
from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import jwt
import pytest

from shared.clock import utcnow
from shared.events.intake import CONTACTS, SignInCodeIssued

from intake import operators

pytestmark = pytest.mark.timeout(180)


def client_address() -> str:
    """Each test signs in from its own client address: the per-client limit counts across tests."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


class SignIn:
    def __init__(self, intake, db, tap):
        self.http, self.db, self.tap = intake.http, db, tap
        self.env = {"REMOTE_ADDR": client_address()}

    def ask(self, **body):
        return self.http.post("/v1/sign-in", json=body, environ_base=self.env)

    def exchange(self, code, env=None, **extra):
        return self.http.post("/v1/sign-in/token", json={"code": code, **extra}, environ_base=env or self.env)

    def code_for(self, *person_ids, purpose="sign_in"):
        evt = self.tap.wait_for(lambda e: e.type == SignInCodeIssued.type and e.key in person_ids
                                and e.data.get("purpose", "sign_in") == purpose, timeout=60)[-1]
        return evt

    def issued_for(self, person_id) -> int:
        """Code events in intake's outbox for the person (sent or waiting): deterministic, no waiting."""
        return self.db.outbox.count_documents({"topic": CONTACTS, "key": person_id, "type": SignInCodeIssued.type})


@pytest.fixture
def signin(intake, intake_db, intake_worker, tap):
    return SignIn(intake, intake_db, tap)


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def test_known_and_unknown_addresses_answer_alike_and_only_a_known_one_gets_a_code(intake, signin, bodies):
    site = intake.site()
    email = bodies.email("leader")
    leader = intake.leader([site["id"]], email=email).json
    codes_before = signin.db.signin_codes.count_documents({})

    known = signin.ask(email=email.upper())          # addresses compare case-insensitively
    unknown = signin.ask(email=bodies.email("nobody"))
    assert (known.status_code, known.get_json()) == (unknown.status_code, unknown.get_json())
    assert known.status_code == 202
    assert dict(known.headers).keys() == dict(unknown.headers).keys()
    # The same work in both cases: a stored code (hash only) each time.
    assert signin.db.signin_codes.count_documents({}) == codes_before + 2

    evt = signin.code_for(leader["id"])
    assert evt.topic == CONTACTS and evt.data["channel"] == "email" and evt.data["address"] == email
    assert evt.data["link"].startswith("http://127.0.0.1:8005/sign-in/callback?code=")
    stored = signin.db.signin_codes.find_one({"identities.person_id": leader["id"]})
    code = evt.data["code"]
    link_token = evt.data["link"].split("code=", 1)[1]
    assert code not in str(stored) and link_token not in str(stored)

    r = signin.exchange(code.lower().replace("-", " "))   # typed loosely
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["token_type"] == "Bearer" and body["role"] == "leader" and body["person_id"] == leader["id"]
    assert body["organization_id"] == intake.org and body["expires_in"] == 12 * 3600
    claims = claims_of(body["access_token"])
    assert claims["sub"] == f"leader:{leader['id']}" and claims["leader_id"] == leader["id"]
    assert claims["role"] == "leader" and claims["org"] == intake.org and isinstance(claims["ver"], int)
    # The token works: the leader reads their own profile.
    assert intake.call("get", f"/v1/leaders/{leader['id']}", body["access_token"]).status_code == 200
    # Used: neither the code nor the link token is accepted again.
    for again in (code, link_token):
        r = signin.exchange(again)
        assert r.status_code == 400 and r.mimetype == "application/problem+json"


def test_a_code_by_its_link_token_and_by_sms(intake, signin, bodies):
    site = intake.site()
    phone = bodies.phone()
    member = intake.member(site["id"], email=None, phone=phone, contact_channels=["sms"]).json
    assert signin.ask(phone=phone).status_code == 202
    evt = signin.code_for(member["id"])
    assert evt.data["channel"] == "sms" and evt.data["address"] == phone
    r = signin.exchange(evt.data["link"].split("code=", 1)[1])
    assert r.status_code == 200, r.get_json()
    claims = claims_of(r.get_json()["access_token"])
    assert claims["role"] == "member" and claims["member_id"] == member["id"] and claims["sub"] == f"member:{member['id']}"
    assert claims["sites"] == [site["id"]]


def test_rate_limits_answer_429_with_retry_after(intake, signin, bodies):
    email = bodies.email("limited")
    for _ in range(5):
        assert signin.ask(email=email).status_code == 202
    r = signin.ask(email=email)
    assert r.status_code == 429 and r.mimetype == "application/problem+json"
    assert 1 <= int(r.headers["Retry-After"]) <= 900 and r.get_json()["retry_after"] == int(r.headers["Retry-After"])
    # Per client address: 20 requests a window, whatever the addresses.
    other = SignIn(intake, signin.db, signin.tap)
    answers = [other.ask(email=bodies.email("many")).status_code for _ in range(21)]
    assert answers[:20] == [202] * 20 and answers[20] == 429
    # Malformed addresses are a 422, counted all the same.
    assert SignIn(intake, signin.db, signin.tap).ask(email="not an email").status_code == 422


def test_a_code_is_accepted_once_under_two_racing_requests(intake, signin, bodies):
    site = intake.site()
    email = bodies.email("racer")
    leader = intake.leader([site["id"]], email=email).json
    signin.ask(email=email)
    code = signin.code_for(leader["id"]).data["code"]
    barrier, answers = threading.Barrier(2), []

    def race():
        client = intake.http.application.test_client()
        barrier.wait()
        answers.append(client.post("/v1/sign-in/token", json={"code": code}, environ_base=signin.env).status_code)

    threads = [threading.Thread(target=race) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(answers) == [200, 400]


def test_expired_and_unknown_codes_answer_400(intake, signin, bodies):
    site = intake.site()
    email = bodies.email("late")
    leader = intake.leader([site["id"]], email=email).json
    signin.ask(email=email)
    code = signin.code_for(leader["id"]).data["code"]
    signin.db.signin_codes.update_many({"identities.person_id": leader["id"]},
                                       {"$set": {"expires_at": utcnow() - timedelta(seconds=1)}})
    for attempt in (code, "ABCD-EFGH", "x" * 43):
        r = signin.exchange(attempt)
        assert r.status_code == 400, r.get_json()
        assert r.get_json()["type"] == "https://recoverynet.org/problems/invalid-sign-in-code"
    assert signin.exchange("").status_code == 422


def test_a_person_in_two_organizations_chooses_one_and_the_code_waits(intake_factory, signin, bodies):
    email = bodies.email("both")
    first, second = intake_factory(), intake_factory()
    leader = first.leader([first.site()["id"]], email=email).json
    site2 = second.site()
    staff = second.call("post", "/v1/staff/invitations", json={"email": email, "role": "coordinator",
                                                               "site_ids": [site2["id"]]}, expect=201).json
    signin.ask(email=email)
    code = signin.code_for(leader["id"], staff["id"]).data["code"]   # keyed by the first of them
    r = signin.exchange(code)
    assert r.status_code == 409 and r.mimetype == "application/problem+json"
    problem = r.get_json()
    assert problem["type"] == "https://recoverynet.org/problems/choose-organization"
    assert sorted((c["organization_id"], c["organization_name"], c["role"]) for c in problem["choices"]) == sorted([
        (first.org, f"Org {first.org}", "leader"), (second.org, f"Org {second.org}", "coordinator")])
    r = signin.exchange(code, organization_id=second.org)        # not used up by the 409
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["role"], body["person_id"], body["organization_id"]) == ("coordinator", staff["id"], second.org)
    assert claims_of(body["access_token"])["sites"] == [site2["id"]] and body["expires_in"] == 8 * 3600
    assert second.call("get", f"/v1/staff/{staff['id']}").json["status"] == "active"   # invitation accepted
    assert signin.exchange(code, organization_id=first.org).status_code == 400


def test_discharged_and_erased_members_get_no_code(intake, signin, bodies):
    site = intake.site()
    discharged_email, erased_email = bodies.email("gone"), bodies.email("erased")
    discharged = intake.member(site["id"], email=discharged_email).json
    intake.call("post", f"/v1/members/{discharged['id']}/status", json={"to_status": "discharged", "reason": "done"},
                expect=200)
    erased = intake.member(site["id"], email=erased_email).json
    intake.call("post", f"/v1/members/{erased['id']}/erasure", json={"reason": "asked"}, expect=200)
    for email in (discharged_email, erased_email):
        r = signin.ask(email=email)
        assert r.status_code == 202
    assert signin.issued_for(discharged["id"]) == 0 and signin.issued_for(erased["id"]) == 0
    on_leave_email = bodies.email("leave")
    leader = intake.leader([site["id"]], email=on_leave_email).json
    intake.call("post", f"/v1/leaders/{leader['id']}/status", json={"to_status": "on_leave", "reason": "rest"},
                expect=200)
    signin.ask(email=on_leave_email)
    assert signin.exchange(signin.code_for(leader["id"]).data["code"]).status_code == 200


def test_invited_staff_sign_in_and_deactivated_staff_cannot(intake, signin, bodies):
    site = intake.site()
    email = bodies.email("coord")
    r = intake.call("post", "/v1/staff/invitations", json={"email": email, "role": "coordinator",
                                                           "site_ids": [site["id"]], "first_name": "Casey"})
    assert r.status_code == 201, r.get_json()
    staff = r.get_json()
    assert (staff["status"], staff["role"], staff["site_ids"]) == ("invited", "coordinator", [site["id"]])
    invitation = signin.code_for(staff["id"], purpose="invitation")
    assert invitation.data["role"] == "coordinator" and invitation.data["address"] == email
    r = signin.exchange(invitation.data["code"])
    assert r.status_code == 200, r.get_json()
    token = r.get_json()["access_token"]
    assert claims_of(token)["sub"] == f"staff:{staff['id']}"
    assert intake.call("get", f"/v1/sites/{site['id']}", token).status_code == 200
    # An admin invited by email; a coordinator without sites is refused.
    admin = intake.call("post", "/v1/staff/invitations", json={"email": bodies.email("adm"), "role": "admin"},
                        expect=201).json
    assert (admin["role"], admin["site_ids"], admin["status"]) == ("admin", [], "invited")
    intake.call("post", "/v1/staff/invitations", json={"email": bodies.email("x"), "role": "coordinator"}, expect=422)
    # Only admins invite and deactivate.
    intake.call("post", "/v1/staff/invitations", intake.coordinator(site["id"]),
                json={"email": bodies.email("y"), "role": "admin"}, expect=403)
    intake.call("post", f"/v1/staff/{staff['id']}/deactivate", intake.coordinator(site["id"]), expect=403)

    out = intake.call("post", f"/v1/staff/{staff['id']}/deactivate", expect=200).json
    assert out["status"] == "inactive"
    before = signin.issued_for(staff["id"])
    assert signin.ask(email=email).status_code == 202
    assert signin.issued_for(staff["id"]) == before       # no code for a deactivated person
    assert intake.call("get", f"/v1/sites/{site['id']}", token).status_code == 401   # their token is revoked


def test_an_operator_made_by_the_command_signs_in(intake_settings, signin, bodies, monkeypatch, capsys):
    email = bodies.email("ops")
    monkeypatch.setenv("MONGO_URI", intake_settings.platform.mongo_uri)
    monkeypatch.setenv("MONGO_DATABASE", intake_settings.platform.mongo_database)
    assert operators.main(["create", "--email", email, "--name", "Ops"]) == 0
    operator_id = __import__("json").loads(capsys.readouterr().out)["id"]
    assert operators.main(["create", "--email", email]) == 1            # one account per email
    signin.ask(email=email)
    r = signin.exchange(signin.code_for(operator_id).data["code"])
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["role"], body["organization_id"], body["person_id"]) == ("operator", None, operator_id)
    assert claims_of(body["access_token"])["sub"] == f"operator:{operator_id}"
    r = signin.http.post("/v1/organizations", json={"name": "Made by the operator"},
                         headers={"Authorization": f"Bearer {body['access_token']}"})
    assert r.status_code == 201, r.get_json()
