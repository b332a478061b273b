"""Organizations, sites and members through the real API, database and broker."""
import pytest

from shared.events.intake import (
    ContactChanged,
    MemberConsentChanged,
    MemberRegistered,
    MemberStatusChanged,
    MemberTransferred,
    MemberUpdated,
    OrganizationCreated,
    SiteCreated,
)

pytestmark = pytest.mark.timeout(180)

IDENTIFIERS = ("first_name", "last_name", "preferred_name", "email", "phone", "date_of_birth", "display_name")


def test_operator_creates_organization_and_admin_adds_site_with_validated_time_zone(intake, intake_worker, tap):
    assert intake.call("post", "/v1/organizations", json={"name": "x"}).status_code == 403  # admins cannot
    site = intake.site("Downtown", "America/New_York")
    assert site["time_zone"] == "America/New_York" and site["virtual_only"] is False
    bad = intake.call("post", "/v1/sites", json={"name": "Nowhere", "time_zone": "Mars/Olympus"}, expect=422)
    assert bad.headers["Content-Type"] == "application/problem+json"
    assert "time_zone" in bad.json["errors"] and "address" in bad.json["errors"]
    virtual = intake.call("post", "/v1/sites", json={"name": "Online", "time_zone": "UTC", "virtual_only": True},
                          expect=201).json
    assert virtual["address"] is None
    events = tap.wait_for(lambda e: e.organization_id == intake.org and e.type in (OrganizationCreated.type,
                                                                                     SiteCreated.type), count=2)
    assert {e.data.get("site_id") for e in events if e.type == SiteCreated.type} >= {site["id"]}
    # a coordinator is not an admin: cannot add sites; sees only their own sites
    coord = intake.coordinator(site["id"])
    intake.call("post", "/v1/sites", coord, json={"name": "x", "time_zone": "UTC", "virtual_only": True}, expect=403)
    listed = intake.call("get", "/v1/sites", coord, expect=200).json
    assert [s["id"] for s in listed["items"]] == [site["id"]]
    intake.call("get", f"/v1/sites/{virtual['id']}", coord, expect=404)


def test_site_update_needs_if_match(intake):
    site = intake.site()
    r = intake.call("get", f"/v1/sites/{site['id']}", expect=200)
    etag = r.headers["ETag"]
    intake.call("patch", f"/v1/sites/{site['id']}", json={"name": "Renamed"}, expect=428)
    intake.call("patch", f"/v1/sites/{site['id']}", json={"name": "Renamed"}, headers={"If-Match": '"stale"'},
                expect=412)
    ok = intake.call("patch", f"/v1/sites/{site['id']}", json={"name": "Renamed"}, headers={"If-Match": etag},
                     expect=200)
    assert ok.json["name"] == "Renamed" and ok.headers["ETag"] != etag


def test_member_registration_emits_snapshot_without_identifiers_and_contact_on_restricted_topic(
        intake, intake_worker, tap, bodies):
    site = intake.site()
    email = bodies.email("reg")
    r = intake.member(site["id"], email=email.upper().replace("@EXAMPLE.ORG", "@example.org"), phone="+1 617 253 1234",
                      consents=[{"purpose": "matching"}, {"purpose": "notify:email"}])
    member = r.json
    assert r.headers["ETag"]
    assert member["status"] == "active"  # consent given at intake
    assert member["phone"] == "+16172531234"  # stored in E.164
    assert member["time_zone"] == "America/Chicago"  # the home site's
    assert {c["purpose"] for c in member["consents"] if c["in_force"]} == {"matching", "notify:email"}
    mid = member["id"]
    registered = tap.wait_for(lambda e: e.type == MemberRegistered.type and e.key == mid)[0]
    assert registered.data["site_id"] == site["id"] and registered.data["status"] == "active"
    assert registered.data["pathways"] == ["smart"] and registered.data["meeting_mode"] == "virtual"
    assert {c["purpose"] for c in registered.data["consents"]} == {"matching", "notify:email"}
    assert not set(registered.data) & set(IDENTIFIERS)
    contact = tap.wait_for(lambda e: e.type == ContactChanged.type and e.key == mid)[0]
    assert contact.topic == "recoverynet.intake.contacts"
    assert contact.data["display_name"] == "Al" and contact.data["phone"] == "+16172531234"
    assert contact.data["email"].lower() == email.lower() and contact.data["person_kind"] == "member"
    assert contact.data["channels"] == ["email", "sms"] and contact.data["preferred_language"] == "en"
    consent_events = tap.wait_for(lambda e: e.type == MemberConsentChanged.type and e.key == mid, count=2)
    assert all(e.data["granted"] for e in consent_events)
    # nothing but the contacts topic names the person
    for evt in tap.matching(lambda e: e.key == mid and e.type != ContactChanged.type):
        assert email.lower() not in str(evt.data).lower() and "Rivera" not in str(evt.data)


def test_invalid_member_fields_are_named_in_a_422(intake):
    site = intake.site()
    r = intake.member(site["id"], expect=422, email="not-an-email", phone="555-1234", date_of_birth="2015-01-01",
                      time_zone="Nowhere/City", availability=[{"day": 1, "start": "20:00", "end": "18:00"}])
    assert r.headers["Content-Type"] == "application/problem+json"
    assert set(r.json["errors"]) >= {"email", "phone", "date_of_birth", "time_zone", "availability"}
    r = intake.member(site["id"], expect=422, pathways=["astrology"], meeting_mode="carrier-pigeon")
    assert set(r.json["errors"]) >= {"pathways", "meeting_mode"}
    r = intake.member(site["id"], expect=422, email=None, phone=None)
    assert "email" in r.json["errors"]
    r = intake.member(site["id"], expect=422, favourite_colour="blue")
    assert "favourite_colour" in r.json["errors"]
    r = intake.member("site_nope", expect=422)
    assert "site_id" in r.json["errors"]


def test_youth_allowed_only_when_the_organization_allows_it(intake_factory):
    youth_org = intake_factory(allows_youth=True)
    site = youth_org.site()
    youth_org.member(site["id"], date_of_birth="2012-05-05")
    adults = intake_factory()
    adult_site = adults.site()
    assert "date_of_birth" in adults.member(adult_site["id"], date_of_birth="2012-05-05", expect=422).json["errors"]
    org = adults.call("get", f"/v1/organizations/{adults.org}", expect=200)
    adults.call("patch", f"/v1/organizations/{adults.org}", json={"allows_youth": True}, expect=428)
    changed = adults.call("patch", f"/v1/organizations/{adults.org}", json={"allows_youth": True},
                          headers={"If-Match": org.headers["ETag"]}, expect=200).json
    assert changed["allows_youth"] is True
    adults.member(adult_site["id"], date_of_birth="2012-05-05")
    coord = adults.coordinator(adult_site["id"])
    adults.call("patch", f"/v1/organizations/{adults.org}", coord, json={"allows_youth": False},
                headers={"If-Match": "*"}, expect=403)
    youth_org.call("patch", f"/v1/organizations/{adults.org}", json={"allows_youth": False},
                   headers={"If-Match": "*"}, expect=404)


def test_duplicate_email_or_phone_in_one_organization_is_a_409_pointing_at_the_existing_member(
        intake, intake_factory, bodies):
    site = intake.site()
    email, phone = bodies.email("dup"), bodies.phone()
    first = intake.member(site["id"], email=email, phone=phone).json
    again = intake.member(site["id"], expect=409, email=email.upper())
    assert again.headers["Content-Type"] == "application/problem+json"
    assert again.json["existing"]["id"] == first["id"] and again.json["existing"]["field"] == "email"
    by_phone = intake.member(site["id"], expect=409, email=bodies.email(), phone=phone)
    assert by_phone.json["existing"]["id"] == first["id"] and by_phone.json["existing"]["field"] == "phone"
    # another organization may register the same person
    other = intake_factory()
    other.member(other.site()["id"], email=email, phone=phone)


def test_coordinator_of_site_a_cannot_read_a_member_of_site_b(intake, intake_factory):
    a, b = intake.site("A"), intake.site("B")
    member_b = intake.member(b["id"]).json
    coord_a = intake.coordinator(a["id"])
    r = intake.call("get", f"/v1/members/{member_b['id']}", coord_a, expect=404)
    assert r.headers["Content-Type"] == "application/problem+json"
    assert intake.call("get", "/v1/members", coord_a, expect=200).json["total"] == 0
    assert intake.call("get", f"/v1/members?site_id={b['id']}", coord_a, expect=200).json["total"] == 0
    intake.member(b["id"], coord_a, expect=422)  # cannot register into a site not theirs
    intake.call("patch", f"/v1/members/{member_b['id']}", coord_a, json={"pronouns": "he/him"},
                headers={"If-Match": "*"}, expect=404)
    coord_b = intake.coordinator(b["id"])
    assert intake.call("get", f"/v1/members/{member_b['id']}", coord_b, expect=200).json["id"] == member_b["id"]
    # another organization's admin sees nothing
    other = intake_factory()
    other.call("get", f"/v1/members/{member_b['id']}", expect=404)
    # a leader token cannot read member records at all
    leader = intake.make_token(intake.org, "leader", leader_id="ldr_x")
    intake.call("get", f"/v1/members/{member_b['id']}", leader, expect=403)
    intake.call("get", "/v1/members", None, headers={"Authorization": ""}, expect=401)


def test_update_needs_if_match_and_announces_snapshot_and_contact(intake, intake_worker, tap, bodies):
    site = intake.site()
    member = intake.member(site["id"]).json
    r = intake.call("get", f"/v1/members/{member['id']}", expect=200)
    etag = r.headers["ETag"]
    intake.call("patch", f"/v1/members/{member['id']}", json={"meeting_mode": "in_person"}, expect=428)
    assert intake.call("get", f"/v1/members/{member['id']}", headers={"If-None-Match": etag}).status_code == 304
    new_email = bodies.email("new")
    r = intake.call("patch", f"/v1/members/{member['id']}", json={"meeting_mode": "in_person", "email": new_email},
                    headers={"If-Match": etag}, expect=200)
    assert r.json["meeting_mode"] == "in_person" and r.json["version"] == 2
    intake.call("patch", f"/v1/members/{member['id']}", json={"pronouns": "she/her"}, headers={"If-Match": etag},
                expect=412)
    updated = tap.wait_for(lambda e: e.type == MemberUpdated.type and e.key == member["id"])[0]
    assert updated.data["meeting_mode"] == "in_person"
    contact = tap.wait_for(lambda e: e.type == ContactChanged.type and e.key == member["id"]
                           and e.data["email"] == new_email)
    assert contact
    # the old email is free again, the new one is taken
    intake.member(site["id"], email=member["email"])
    intake.member(site["id"], email=new_email, expect=409)
    bad = intake.call("patch", f"/v1/members/{member['id']}", json={"phone": "12"},
                      headers={"If-Match": r.headers["ETag"]}, expect=422)
    assert "phone" in bad.json["errors"]


def test_lists_are_paginated_and_filtered_by_site_and_status(intake):
    a, b = intake.site("A"), intake.site("B")
    for _ in range(3):
        intake.member(a["id"])
    intake.member(b["id"], consents=[{"purpose": "matching"}])
    page = intake.call("get", f"/v1/members?site_id={a['id']}&limit=2", expect=200).json
    assert page["total"] == 3 and len(page["items"]) == 2
    page2 = intake.call("get", f"/v1/members?site_id={a['id']}&limit=2&offset=2", expect=200).json
    assert len(page2["items"]) == 1
    active = intake.call("get", "/v1/members?status=active", expect=200).json
    assert active["total"] == 1 and active["items"][0]["site_id"] == b["id"]
    bad = intake.call("get", "/v1/members?status=sleeping&limit=0", expect=422)
    assert set(bad.json["errors"]) >= {"status", "limit"}


def test_lifecycle_and_transfer(intake, intake_worker, tap):
    a, b = intake.site("A", "America/Chicago"), intake.site("B", "Europe/London")
    member = intake.member(a["id"]).json
    assert member["status"] == "pending_consent"
    r = intake.call("post", f"/v1/members/{member['id']}/status", json={"to_status": "active"}, expect=409)
    assert "consent" in r.json["detail"]
    intake.call("post", f"/v1/members/{member['id']}/consents", json={"purpose": "matching"}, expect=201)
    got = intake.call("get", f"/v1/members/{member['id']}", expect=200).json
    assert got["status"] == "active"
    intake.call("post", f"/v1/members/{member['id']}/status", json={"to_status": "paused", "reason": "travel"},
                expect=200)
    intake.call("post", f"/v1/members/{member['id']}/status", json={"to_status": "pending_consent"}, expect=409)
    intake.call("post", f"/v1/members/{member['id']}/status", json={"to_status": "asleep"}, expect=422)
    stale = intake.call("post", f"/v1/members/{member['id']}/status", json={"to_status": "active"},
                        headers={"If-Match": '"stale"'}, expect=412)
    assert stale.headers["Content-Type"] == "application/problem+json"
    statuses = tap.wait_for(lambda e: e.type == MemberStatusChanged.type and e.key == member["id"], count=2)
    assert [(e.data["from_status"], e.data["to_status"]) for e in statuses] == [
        ("pending_consent", "active"), ("active", "paused")]
    coord_a = intake.coordinator(a["id"])
    intake.call("post", f"/v1/members/{member['id']}/transfer", coord_a, json={"to_site_id": b["id"]}, expect=422)
    moved = intake.call("post", f"/v1/members/{member['id']}/transfer", json={"to_site_id": b["id"]}, expect=200).json
    assert moved["site_id"] == b["id"] and moved["time_zone"] == "Europe/London"
    transferred = tap.wait_for(lambda e: e.type == MemberTransferred.type and e.key == member["id"])[0]
    assert transferred.data == {**transferred.data, "from_site_id": a["id"], "to_site_id": b["id"],
                                "time_zone": "Europe/London"}
    contact = tap.wait_for(lambda e: e.type == ContactChanged.type and e.key == member["id"]
                           and e.data["site_ids"] == [b["id"]])
    assert contact
    intake.call("get", f"/v1/members/{member['id']}", coord_a, expect=404)


def test_openapi_documents_the_api(intake):
    spec = intake.http.get("/openapi.json").json
    for path in ("/v1/organizations", "/v1/sites", "/v1/members", "/v1/members/{member_id}/consents",
                 "/v1/members/{member_id}/screenings", "/v1/members/{member_id}/plan", "/v1/sites/{site_id}/imports",
                 "/v1/leaders", "/v1/audit-log", "/v1/members/{member_id}/erasure"):
        assert path in spec["paths"], path


def test_concurrent_registrations_of_one_email_make_one_member_and_409s(intake, bodies):
    import threading

    site = intake.site()
    email = bodies.email("race")
    results = []

    def register():
        client = intake.http.application.test_client()
        r = client.post("/v1/members", json=bodies.member(site["id"], email=email), headers=intake.headers())
        results.append((r.status_code, r.get_json()))

    threads = [threading.Thread(target=register) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    codes = sorted(code for code, _ in results)
    assert codes == [201, 409, 409, 409], results
    winner = [body for code, body in results if code == 201][0]
    assert all(body["existing"]["id"] == winner["id"] for code, body in results if code == 409 and "existing" in body)
    assert intake.call("get", "/v1/members", expect=200).json["total"] == 1


def test_members_are_found_by_the_start_of_a_name_in_any_case(intake):
    site = intake.site("Names")
    found = intake.member(site["id"], first_name="Marisol", last_name="Quintero", preferred_name=None).json
    intake.member(site["id"], first_name="Beto", last_name="Marquez", preferred_name="Bear")
    intake.member(site["id"], first_name="Dana", last_name="Okafor", preferred_name="Mari.*")
    by_first = intake.call("get", f"/v1/members?site_id={site['id']}&name=mari", expect=200).json
    assert {m["first_name"] for m in by_first["items"]} == {"Marisol", "Dana"}
    literal = intake.call("get", f"/v1/members?site_id={site['id']}&name=mari.*", expect=200).json
    assert [m["first_name"] for m in literal["items"]] == ["Dana"]  # text, never a pattern
    by_last = intake.call("get", f"/v1/members?site_id={site['id']}&name=QUIN", expect=200).json
    assert [m["id"] for m in by_last["items"]] == [found["id"]]
    by_preferred = intake.call("get", f"/v1/members?site_id={site['id']}&name=bea", expect=200).json
    assert [m["first_name"] for m in by_preferred["items"]] == ["Beto"]
    assert intake.call("get", f"/v1/members?site_id={site['id']}&name=zz", expect=200).json["total"] == 0
