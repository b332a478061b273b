"""Bad input of every kind answers a 4xx problem+json naming the field, never a 500."""
import pytest

pytestmark = pytest.mark.timeout(180)


def test_bad_requests_are_4xx_problems(intake, bodies):
    site = intake.site()
    mid = intake.member(site["id"], consents=[{"purpose": "matching"}]).json["id"]
    lid = intake.leader([site["id"]]).json["id"]
    etag = intake.call("get", f"/v1/members/{mid}").headers["ETag"]
    letag = intake.call("get", f"/v1/leaders/{lid}").headers["ETag"]
    cases = [
        ("post", "/v1/members", {"data": "not json", "headers": {"Content-Type": "application/json"}}),
        ("post", "/v1/members", {"json": ["a", "list"]}),
        ("post", "/v1/members", {"json": bodies.member(site["id"], first_name=123)}),
        ("post", "/v1/members", {"json": bodies.member(site["id"], date_of_birth="1990-13-45")}),
        ("post", "/v1/members", {"json": bodies.member(site["id"], availability=[{"day": 9}])}),
        ("post", "/v1/members", {"json": bodies.member(site["id"], availability=[{"day": 1, "start": "9am",
                                                                                   "end": "10am"}])}),
        ("post", "/v1/members", {"json": bodies.member(site["id"], consents=[{"purpose": "spam"}])}),
        ("post", "/v1/members", {"json": bodies.member(site["id"], consents=[{"purpose": "matching",
                                                                              "expires_at": "soon"}])}),
        ("post", "/v1/members", {"json": bodies.member(site["id"], languages=[])}),
        ("post", "/v1/members", {"json": bodies.member(site["id"], email="x" * 400 + "@example.org")}),
        ("post", "/v1/members", {"json": bodies.member(site["id"], phone="+999123")}),
        ("patch", f"/v1/members/{mid}", {"json": {"email": None, "phone": None}, "headers": {"If-Match": etag}}),
        ("patch", f"/v1/members/{mid}", {"json": {"time_zone": None}, "headers": {"If-Match": etag}}),
        ("patch", f"/v1/members/{mid}", {"json": {"site_id": "x"}, "headers": {"If-Match": etag}}),
        ("patch", f"/v1/members/{mid}", {"json": {"status": "active"}, "headers": {"If-Match": etag}}),
        ("post", f"/v1/members/{mid}/transfer", {"json": {"to_site_id": site["id"]}}),
        ("post", f"/v1/members/{mid}/transfer", {"json": {}}),
        ("post", f"/v1/members/{mid}/status", {"json": {"to_status": 5}}),
        ("post", f"/v1/members/{mid}/screenings", {"json": {"instrument": "PHQ-2", "answers": "3,3"}}),
        ("post", f"/v1/members/{mid}/screenings", {"json": {"instrument": "PHQ-2", "answers": [1.5, 2]}}),
        ("post", f"/v1/members/{mid}/screenings", {"json": {"instrument": "PHQ-2", "answers": [None, 2]}}),
        ("delete", f"/v1/members/{mid}/consents/notify:fax", {}),
        ("delete", f"/v1/members/{mid}/flags/risk", {}),
        ("put", f"/v1/members/{mid}/plan", {"json": {"goal": "x", "next_steps": "walk"}}),
        ("get", "/v1/members?limit=abc", {}),
        ("get", "/v1/members?flagged=maybe", {}),
        ("get", "/v1/members/mem_nope", {}),
        ("post", "/v1/sites", {"json": {"name": "", "time_zone": "UTC", "virtual_only": True}}),
        ("post", "/v1/sites", {"json": {"name": "x", "time_zone": "../../etc/passwd", "virtual_only": True}}),
        ("post", "/v1/sites", {"json": {"name": "x", "time_zone": "UTC", "virtual_only": "sometimes"}}),
        ("patch", f"/v1/sites/{site['id']}", {"json": {"virtual_only": False, "address": None},
                                              "headers": {"If-Match": "*"}}),
        ("post", "/v1/leaders", {"json": bodies.leader([site["id"]], certifications=[{"expires_on": "2030-01-01"}])}),
        ("post", "/v1/leaders", {"json": bodies.leader([])}),
        ("patch", f"/v1/leaders/{lid}", {"json": {"capacity": "lots"}, "headers": {"If-Match": letag}}),
        ("post", f"/v1/leaders/{lid}/status", {"json": {"to_status": "fired"}}),
        ("get", "/v1/imports/imp_nope", {}),
        ("post", "/v1/organizations", {"json": {"name": "x"}}),
        ("get", "/v1/organizations/other-org", {}),
        ("get", "/v1/audit-log?limit=1000", {}),
    ]
    for method, path, kwargs in cases:
        r = intake.call(method, path, **kwargs)
        assert 400 <= r.status_code < 500, (method, path, kwargs, r.status_code, r.get_json(silent=True))
        assert r.headers["Content-Type"] == "application/problem+json", (path, r.headers["Content-Type"])
        if r.status_code == 422:
            assert r.json.get("errors"), (path, r.json)


def test_webhook_is_not_a_persons_channel_nor_a_consent_purpose(intake):
    """Webhooks go to an organization's endpoints (notifications), never to a person: a member or leader
    choosing the channel ``webhook``, or consenting to ``notify:webhook``, answers 422 naming the field
    (issue 13), and nothing is stored."""
    site = intake.site()
    mid = intake.member(site["id"], consents=[{"purpose": "matching"}]).json["id"]
    etag = intake.call("get", f"/v1/members/{mid}").headers["ETag"]
    lid = intake.leader([site["id"]]).json["id"]
    letag = intake.call("get", f"/v1/leaders/{lid}").headers["ETag"]

    def refused(r, *path):
        assert r.status_code == 422, (r.status_code, r.get_json(silent=True))
        assert r.headers["Content-Type"] == "application/problem+json"
        errors = r.get_json()["errors"]
        for step in path:
            assert step in errors, (path, errors)
            errors = errors[step]
        assert "webhook" in str(errors) and "organization" in str(errors), errors

    def refused_in_item(r, field, item_field):
        """A field of a list item: the schema names it as field -> index -> item field."""
        refused(r, field)
        errors = r.get_json()["errors"][field]
        assert any(item_field in item for item in errors.values()), errors

    refused(intake.member(site["id"], expect=None, contact_channels=["email", "webhook"]), "contact_channels")
    refused_in_item(intake.member(site["id"], expect=None, consents=[{"purpose": "notify:webhook"}]), "consents", "purpose")
    refused(intake.call("post", f"/v1/members/{mid}/consents", json={"purpose": "notify:webhook"}), "purpose")
    refused(intake.call("patch", f"/v1/members/{mid}", json={"contact_channels": ["webhook"]},
                        headers={"If-Match": etag}), "contact_channels")
    refused(intake.leader([site["id"]], expect=None, contact_channels=["webhook"]), "contact_channels")
    refused(intake.call("patch", f"/v1/leaders/{lid}", json={"contact_channels": ["webhook"]},
                        headers={"If-Match": letag}), "contact_channels")
    member = intake.call("get", f"/v1/members/{mid}", expect=200).json
    assert "webhook" not in member["contact_channels"]
    assert [c["purpose"] for c in member.get("consents", [])] in ([], ["matching"])
    # The channels a person can choose are the contract's, which notifications delivers to people on.
    from intake import model
    from shared.events.intake import CHANNELS
    assert model.CHANNELS == CHANNELS
