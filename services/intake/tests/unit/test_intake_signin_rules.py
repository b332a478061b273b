"""Sign-in rules (issue 15 part B): the code's shape and hashing, who may sign in, the identity a code
signs in as, choosing among several, the rate-limit windows."""
from datetime import datetime, timedelta, timezone

import pytest

from shared.errors import Invalid

from intake import model


def test_a_code_is_8_unambiguous_characters_and_a_long_link_token():
    code, link = model.new_signin_code()
    assert len(code) == 8 and set(code) <= set(model.SIGNIN_CODE_ALPHABET) and not set(code) & set("01OIL")
    assert len(link) >= 43
    # typed loosely, it hashes like the stored code; the link token as sent
    assert model.code_hash(code) in model.code_hashes(f" {model.display_code(code).lower()} ")
    assert model.code_hash(code) in model.code_hashes(" ".join([code[:4], code[4:]]))
    assert model.code_hash(link) in model.code_hashes(link)


@pytest.mark.parametrize("kind,person,may", [
    ("member", {"status": "active"}, True), ("member", {"status": "pending_consent"}, True),
    ("member", {"status": "discharged"}, False), ("member", {"status": "erased", "erased": True}, False),
    ("leader", {"status": "on_leave"}, True), ("leader", {"status": "retired"}, False),
    ("staff", {}, True), ("staff", {"status": "invited"}, True), ("staff", {"status": "inactive"}, False),
    ("operator", {"status": "active"}, True), ("operator", {"status": "inactive"}, False), ("member", None, False),
])
def test_who_may_sign_in(kind, person, may):
    assert model.may_sign_in(kind, person) is may


def test_the_identity_a_code_signs_in_as():
    assert model.sign_in_identity("staff", {"_id": "st1", "organization_id": "o", "site_ids": ["s1"]}) == {
        "person_kind": "staff", "person_id": "st1", "organization_id": "o", "subject": "staff:st1",
        "role": "coordinator", "sites": ["s1"]}
    assert model.sign_in_identity("staff", {"_id": "st2", "organization_id": "o", "role": "admin",
                                            "site_ids": ["s1"]})["sites"] == []
    member = model.sign_in_identity("member", {"_id": "mb1", "organization_id": "o", "site_id": "s1"})
    assert (member["role"], member["member_id"], member["sites"], member["subject"]) == ("member", "mb1", ["s1"], "member:mb1")
    operator = model.sign_in_identity("operator", {"_id": "op1"})
    assert (operator["role"], operator["organization_id"], operator["subject"]) == ("operator", None, "operator:op1")


def test_choosing_among_the_identities_of_a_code():
    ids = [{"organization_id": "a", "role": "leader"}, {"organization_id": "b", "role": "coordinator"},
           {"organization_id": "b", "role": "member"}]
    assert len(model.choose_identity(ids, None, None)) == 3
    assert model.choose_identity(ids, "a", None) == [ids[0]]
    assert len(model.choose_identity(ids, "b", None)) == 2 and model.choose_identity(ids, "b", "member") == [ids[2]]
    with pytest.raises(Invalid):
        model.choose_identity(ids, "c", None)


def test_the_address_is_an_email_or_a_phone():
    assert model.sign_in_address({"email": "Ann@Example.org"}) == ("email", "ann@example.org", "email")
    assert model.sign_in_address({"phone": "+1 617 253 1234"}) == ("phone", "+16172531234", "sms")
    for bad in ({}, {"email": "a@b.org", "phone": "+16172531234"}, {"email": "nope"}):
        with pytest.raises(Invalid):
            model.sign_in_address(bad)


def test_rate_windows_and_retry_after():
    now = datetime(2026, 1, 1, 10, 7, 30, tzinfo=timezone.utc)
    start, end = model.rate_window(now, 900)
    assert (start, end) == (datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc), datetime(2026, 1, 1, 10, 15, tzinfo=timezone.utc))
    assert model.rate_limited(5, 5, end, now) is None
    assert model.rate_limited(6, 5, end, now) == 450
    assert model.rate_limited(6, 5, end, end - timedelta(milliseconds=10)) == 1
