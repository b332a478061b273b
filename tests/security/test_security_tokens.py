"""Tokens that other services cannot forge (issue 15, part A), on the four services in-process:

* intake publishes its public key at /.well-known/jwks.json (no token, cached five minutes), and a token
  intake signs verifies with exactly that key set;
* a token signed with the old shared secret (HS256), or by another key naming intake's kid, answers 401
  on every service;
* sign-out-everywhere: the caller's token is refused by every service within a minute (intake at once,
  the others once TokensRevoked reaches them and their cache expires), while a token carrying the new
  version works everywhere.
"""
from __future__ import annotations

import uuid

import pytest

from shared.auth import KeySet, keys_from_jwks, verify_token
from shared.events.intake import TokensRevoked
from shared.testing import eventually
from shared.testing.fixtures import auth_header, forged_token, old_secret_token, test_keys

from tests.security.conftest import SERVICES

pytestmark = pytest.mark.timeout(300)

# A plain list route of each service an organization admin may read.
LISTS = {"intake": "/v1/sites", "matching": "/v1/matches", "scheduling": "/v1/meetings",
         "notifications": "/v1/deliveries", "reporting": "/v1/reports/outcomes"}


def test_intake_publishes_its_public_key_and_its_tokens_verify_with_it(stack, world):
    response = stack.client("intake").get("/.well-known/jwks.json")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "public, max-age=300"
    document = response.get_json()
    assert [key["kid"] for key in document["keys"]] == [test_keys().signing_key.kid]
    assert all("d" not in key for key in document["keys"]), "a private part was published"
    assert {(k["kty"], k["crv"], k["alg"]) for k in document["keys"]} == {("OKP", "Ed25519", "EdDSA")}
    # a token intake issued itself (an organization's admin token) verifies with the published keys alone
    operator = stack.client("intake").post(f"/v1/organizations/{world.org}/admin-tokens", json={},
                                           headers=auth_header(_operator()))
    assert operator.status_code == 201, operator.get_data(as_text=True)
    principal = verify_token(operator.get_json()["token"], KeySet(keys_from_jwks(document)))
    assert principal.organization_id == world.org and principal.role == "admin"


def _operator():
    from shared.auth import issue_token

    return issue_token(test_keys().signing_key, organization_id=None, role="operator")


@pytest.mark.parametrize("service", SERVICES)
def test_tokens_of_the_old_shared_secret_or_another_key_answer_401(stack, world, make_token, problem, service):
    client, path = stack.client(service), LISTS[service]
    assert client.get(path, headers=auth_header(make_token(world.org, "admin"))).status_code == 200
    for token in (old_secret_token(world.org, "admin"), forged_token(world.org, "admin")):
        problem(client.get(path, headers=auth_header(token)), 401)


def test_sign_out_everywhere_refuses_the_old_token_on_every_service_within_a_minute(stack, world, make_token,
                                                                                    problem):
    subject = f"staff:{uuid.uuid4().hex[:12]}"
    old = auth_header(make_token(world.org, "admin", subject=subject, version=0))
    for service in SERVICES:  # it works everywhere (and each service has now cached "not revoked")
        assert stack.client(service).get(LISTS[service], headers=old).status_code == 200, service

    response = stack.client("intake").post("/v1/sign-out-everywhere", headers=old)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"subject": subject, "min_version": 1}
    announced = stack.tap.wait_for(lambda e: e.type == TokensRevoked.type and e.data["subject"] == subject)[0]
    assert announced.key == world.org and announced.data == {"organization_id": world.org, "subject": subject,
                                                             "min_version": 1}
    # intake refuses it at once; every service within a minute
    problem(stack.client("intake").get(LISTS["intake"], headers=old), 401)
    for service in SERVICES:
        eventually(lambda: stack.client(service).get(LISTS[service], headers=old).status_code == 401,
                   timeout=60, interval=0.5, message=f"{service} still accepts the revoked token")
        body = problem(stack.client(service).get(LISTS[service], headers=old), 401)
        assert "revoked" in body["detail"]

    new = auth_header(make_token(world.org, "admin", subject=subject, version=1))
    for service in SERVICES:
        assert stack.client(service).get(LISTS[service], headers=new).status_code == 200, service
    # a second sign-out raises the bar again: the version-1 token goes too
    again = stack.client("intake").post("/v1/sign-out-everywhere", headers=new)
    assert again.get_json()["min_version"] == 2
    problem(stack.client("intake").get(LISTS["intake"], headers=new), 401)


def test_sign_out_everywhere_needs_a_valid_token(stack, problem):
    problem(stack.client("intake").post("/v1/sign-out-everywhere"), 401)
