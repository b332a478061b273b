"""Support groups for peer providers (issue 17): a meeting marked ``for_peer_providers`` is listed for the
organization's peer leaders, hidden from members and the public feeds, and a peer leader takes (and gives
back) their own seat; nobody else is registered as a leader, and a leader's seat is never announced as a
member's (no registration event, not among the registrants)."""
import pytest

from shared.events.scheduling import MeetingCreated, MeetingUpdated, RegistrationCreated

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("worker")]


def body(site_id, leader_id, **kw):
    return {"site_id": site_id, "facilitator_id": leader_id, "name": "Circle for peer leaders", "capacity": 8,
            "attendance_mode": "in_person", "rrule": "FREQ=WEEKLY;BYDAY=WE", "first_start_local": "2027-03-03T12:00",
            "duration_minutes": 60, "is_public": True, **kw}


@pytest.fixture
def world(upstream):
    site = upstream.site()
    host, joiner, other = upstream.leader(site_id=site), upstream.leader(site_id=site), upstream.leader(site_id="elsewhere")
    member = upstream.member(site_id=site)
    upstream.known(sites=[site], leaders=[host, joiner, other], members=[member])
    return {"site": site, "host": host, "joiner": joiner, "other": other, "member": member}


def test_a_peer_leader_joins_and_leaves_a_support_group_members_never_see_it(client, headers, world, tap, expect,
                                                                             upstream):
    made = client.post("/v1/meetings", json=body(world["site"], world["host"], for_peer_providers=True), headers=headers())
    assert made.status_code == 201, made.get_json()
    group = made.get_json()
    assert group["for_peer_providers"] is True
    assert tap.wait_for(expect.of(MeetingCreated, meeting_id=group["id"]))[0].data["for_peer_providers"] is True
    plain = client.post("/v1/meetings", json=body(world["site"], world["host"], name="Open circle",
                                                  first_start_local="2027-03-04T12:00", rrule="FREQ=WEEKLY;BYDAY=TH"),
                        headers=headers()).get_json()
    assert plain["for_peer_providers"] is False          # the default

    leader = headers("leader", leader_id=world["joiner"], sites=[world["site"]])
    listed = client.get("/v1/meetings", query_string={"for_peer_providers": "true"}, headers=leader).get_json()["items"]
    assert [m["id"] for m in listed] == [group["id"]]
    others = client.get("/v1/meetings", query_string={"for_peer_providers": "false"}, headers=leader).get_json()["items"]
    assert group["id"] not in [m["id"] for m in others] and plain["id"] in [m["id"] for m in others]

    member = headers("member", member_id=world["member"], sites=[world["site"]])
    seen = [m["id"] for m in client.get("/v1/meetings", headers=member).get_json()["items"]]
    assert plain["id"] in seen and group["id"] not in seen
    assert client.get(f"/v1/meetings/{group['id']}", headers=member).status_code == 404
    feed = client.get(f"/v1/feeds/{upstream.org}/meeting-guide.json")
    assert feed.status_code == 200
    assert "Open circle" in feed.get_data(as_text=True) and group["name"] not in feed.get_data(as_text=True)

    url = f"/v1/meetings/{group['id']}/registrations"
    # Only themself: another leader's id, a member's seat asked by a leader, staff registering a leader.
    assert client.post(url, json={"member_id": world["other"], "registrant_kind": "leader"}, headers=leader).status_code == 403
    assert client.post(url, json={"member_id": world["joiner"], "registrant_kind": "leader"}, headers=headers()).status_code == 403
    # Not at an ordinary meeting.
    refused = client.post(f"/v1/meetings/{plain['id']}/registrations",
                          json={"member_id": world["joiner"], "registrant_kind": "leader"}, headers=leader)
    assert refused.status_code == 403 and "registrant_kind" in refused.get_json()["errors"]

    joined = client.post(url, json={"member_id": world["joiner"], "registrant_kind": "leader"}, headers=leader)
    assert joined.status_code == 201, joined.get_json()
    seat = joined.get_json()
    assert seat["registrant_kind"] == "leader" and seat["status"] == "registered"
    # A leader of another site of the organization joins too (the group is the organization's).
    far = headers("leader", leader_id=world["other"], sites=["elsewhere"])
    assert client.post(url, json={"member_id": world["other"], "registrant_kind": "leader"}, headers=far).status_code == 201
    again = client.post(url, json={"member_id": world["joiner"], "registrant_kind": "leader"}, headers=leader)
    assert again.status_code == 409

    mine = client.get("/v1/me/registrations", headers=leader).get_json()["items"]
    assert [(r["meeting_id"], r["registrant_kind"]) for r in mine] == [(group["id"], "leader")]
    # Another leader cannot give back this seat.
    assert client.delete(f"{url}/{seat['id']}", headers=far).status_code == 404

    # A member's seat is announced; a leader's never is, nor counted among the registrants.
    client.post(f"/v1/meetings/{plain['id']}/registrations", json={"member_id": world["member"]}, headers=headers())
    created = tap.wait_for(expect.of(RegistrationCreated, member_id=world["member"]))
    assert created and all(e.data["meeting_id"] == plain["id"] for e in created)
    etag = client.get(f"/v1/meetings/{group['id']}", headers=headers()).headers["ETag"]
    assert client.patch(f"/v1/meetings/{group['id']}", json={"capacity": 9},
                        headers={**headers(), "If-Match": etag}).status_code == 200
    updated = tap.wait_for(expect.of(MeetingUpdated, meeting_id=group["id"]))
    assert updated[-1].data["registrant_ids"] == [] and updated[-1].data["for_peer_providers"] is True
    assert not tap.matching(expect.of(RegistrationCreated, meeting_id=group["id"]))

    left = client.delete(f"{url}/{seat['id']}", headers=leader)
    assert left.status_code == 200 and left.get_json()["status"] == "cancelled"
    assert client.get("/v1/me/registrations", headers=leader).get_json()["items"] == []
