"""Erasure and bulk import through the real API, database and broker."""
import json
import uuid

import pytest
from bson import json_util

from shared.events.intake import CONTACTS, ContactChanged, MemberErased, MemberRegistered, MemberUpdated
from shared.messaging.outbox import unpublished
from shared.testing import eventually

pytestmark = pytest.mark.timeout(180)


def _everything(db) -> str:
    """Every document of every collection of intake's database, as one string."""
    parts = []
    for name in db.list_collection_names():
        for doc in db[name].find():
            parts.append(json_util.dumps(doc))
            if name == "outbox" and doc.get("value") is not None:
                parts.append(bytes(doc["value"]).decode())
    return "\n".join(parts)


def test_erasure_leaves_no_identifying_field_and_emits_the_events(intake, intake_worker, intake_db, tap, bodies):
    site = intake.site()
    marker = uuid.uuid4().hex[:8]
    email, phone = bodies.email(f"erase{marker}"), bodies.phone()
    ext = f"EXT-{marker}"
    first, last, preferred = f"Zed{marker}", f"Quill{marker}", f"Zee{marker}"
    member = intake.member(site["id"], email=email, phone=phone, first_name=first, last_name=last,
                           preferred_name=preferred, external_id=ext, date_of_birth="1971-03-09",
                           consents=[{"purpose": "matching"}]).json
    mid = member["id"]
    intake.call("post", f"/v1/members/{mid}/screenings", json={"instrument": "PHQ-2", "answers": [3, 3]}, expect=201)
    intake.call("put", f"/v1/members/{mid}/plan", json={"goal": f"Plan of {first}"}, expect=200)
    tap.wait_for(lambda e: e.type == ContactChanged.type and e.key == mid)
    eventually(lambda: intake_db.outbox.count_documents(unpublished(intake_db, {"key": mid})) == 0)
    values = (email, phone, first, last, preferred, ext, "1971-03-09")
    assert email in _everything(intake_db)  # the check below can see these values when present

    coord = intake.coordinator(site["id"])
    intake.call("post", f"/v1/members/{mid}/erasure", coord, json={}, expect=403)  # admins only
    r = intake.call("post", f"/v1/members/{mid}/erasure", json={"reason": "member asked"}, expect=200)
    assert r.json["member_id"] == mid

    dump = _everything(intake_db)
    for value in values:
        assert value not in dump and value.lower() not in dump.lower(), value
    erased = tap.wait_for(lambda e: e.type == MemberErased.type and e.key == mid)[0]
    assert erased.data["site_id"] == site["id"]
    tombstone = eventually(lambda: [r for r in tap.records if r.topic == CONTACTS and r.key == mid.encode()
                                    and r.value is None])
    assert tombstone
    intake.call("get", f"/v1/members/{mid}", expect=410)
    assert mid not in [m["id"] for m in intake.call("get", "/v1/members", expect=200).json["items"]]
    # the audit entry is kept, without the erased data
    audit = intake.call("get", f"/v1/audit-log?resource_id={mid}&action=erase", expect=200).json["items"]
    assert len(audit) == 1 and "email" in audit[0]["details"]["removed"]
    assert email not in json.dumps(audit)
    # the same person can be registered again afresh
    intake.member(site["id"], email=email, phone=phone, external_id=ext)


CSV = """external_id,first_name,last_name,email,phone,date_of_birth,languages,availability,pathways,meeting_mode,consents
A-1,Ana,Silva,{e1},,1985-01-02,pt;en,mon 18:00-20:00;wed 09:00-11:00,smart;harm_reduction,virtual,matching;notify:email
A-2,Ben,Okafor,not-an-email,,1980-02-03,en,,,,
A-3,Cy,Dunn,{e3},+16172539876,2016-01-01,en,,,,
A-4,Di,Park,{e4},,1979-07-07,en,fri 25:00-26:00,,,
A-5,Eve,Moss,,+16172531111,1992-09-09,en,,twelve_step,either,matching
A-1,Ana,Again,{e5},,1985-01-02,en,,,,
,No,Id,{e6},,1985-01-02,en,,,,
"""


def test_csv_of_mixed_good_and_bad_rows_yields_the_right_report_and_only_the_good_rows(
        intake, intake_worker, tap, bodies):
    site = intake.site()
    emails = {f"e{i}": bodies.email(f"imp{i}") for i in range(1, 7)}
    body = CSV.format(**emails)
    r = intake.call("post", f"/v1/sites/{site['id']}/imports", data=body, headers={"Content-Type": "text/csv"},
                    expect=201).json
    outcomes = {row["row"]: row for row in r["rows"]}
    assert [outcomes[i]["outcome"] for i in range(1, 8)] == [
        "created", "rejected", "rejected", "rejected", "created", "rejected", "rejected"]
    assert "email" in outcomes[2]["errors"]
    assert "date_of_birth" in outcomes[3]["errors"]  # a child, and this organization takes adults only
    assert "availability" in outcomes[4]["errors"]
    assert "external_id" in outcomes[6]["errors"]  # repeats row 1
    assert "external_id" in outcomes[7]["errors"]  # required for imports
    assert r["counts"] == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 5}
    members = intake.call("get", f"/v1/members?site_id={site['id']}", expect=200).json
    assert sorted(m["external_id"] for m in members["items"]) == ["A-1", "A-5"]
    ana = [m for m in members["items"] if m["external_id"] == "A-1"][0]
    assert ana["languages"] == ["pt", "en"] and ana["status"] == "active"
    assert ana["availability"] == [{"day": 0, "start": "18:00", "end": "20:00"},
                                   {"day": 2, "start": "09:00", "end": "11:00"}]
    tap.wait_for(lambda e: e.type == MemberRegistered.type and e.data["site_id"] == site["id"], count=2)
    assert intake.call("get", f"/v1/imports/{r['id']}", expect=200).json["counts"]["created"] == 2

    # idempotent by external id: the same upload again changes nothing; a changed row updates
    again = intake.call("post", f"/v1/sites/{site['id']}/imports", data=body, headers={"Content-Type": "text/csv"},
                        expect=201).json
    assert again["counts"] == {"created": 0, "updated": 0, "unchanged": 2, "rejected": 5}
    changed = body.replace("A-5,Eve,Moss,,+16172531111,1992-09-09,en,,twelve_step,either,matching",
                           "A-5,Eve,Moss,,+16172531111,1992-09-09,en,,twelve_step,in_person,matching")
    third = intake.call("post", f"/v1/sites/{site['id']}/imports", data=changed,
                        headers={"Content-Type": "text/csv"}, expect=201).json
    assert third["counts"]["updated"] == 1 and third["counts"]["created"] == 0
    eve = [row for row in third["rows"] if row["external_id"] == "A-5"][0]
    tap.wait_for(lambda e: e.type == MemberUpdated.type and e.key == eve["member_id"]
                 and e.data["meeting_mode"] == "in_person")
    assert intake.call("get", f"/v1/members?site_id={site['id']}", expect=200).json["total"] == 2

    # erasing an imported member drops their external id from every import report
    ana_id = [row for row in r["rows"] if row["outcome"] == "created" and row["external_id"] == "A-1"][0]["member_id"]
    intake.call("post", f"/v1/members/{ana_id}/erasure", json={}, expect=200)
    for report in (r, again, third):
        rows = intake.call("get", f"/v1/imports/{report['id']}", expect=200).json["rows"]
        assert "A-1" not in [row["external_id"] for row in rows]
        assert [row["external_id"] for row in rows if row["row"] in (1, 6)] == [None, None]


def test_json_lines_import_and_duplicates_point_at_the_existing_member(intake, bodies):
    site = intake.site()
    taken = bodies.email("taken")
    existing = intake.member(site["id"], email=taken).json
    lines = "\n".join([
        json.dumps({"external_id": "J-1", "first_name": "Jo", "email": bodies.email("j1"), "pathways": ["other"]}),
        "{not json",
        json.dumps({"external_id": "J-2", "first_name": "Kim", "email": taken}),
        json.dumps(["a", "list"]),
        json.dumps({"external_id": "J-3", "first_name": "Lu", "email": bodies.email("j3"), "shoe_size": 9}),
    ])
    r = intake.call("post", f"/v1/sites/{site['id']}/imports", data=lines,
                    headers={"Content-Type": "application/x-ndjson"}, expect=201).json
    assert [row["outcome"] for row in r["rows"]] == ["created", "rejected", "rejected", "rejected", "rejected"]
    assert r["rows"][2]["existing"]["id"] == existing["id"]
    assert "shoe_size" in r["rows"][4]["errors"]
    # multipart upload, and unreadable uploads
    from io import BytesIO
    multipart = intake.call("post", f"/v1/sites/{site['id']}/imports",
                            data={"file": (BytesIO(b"external_id,first_name,email\nM-1,Mo," +
                                                   bodies.email("m1").encode() + b"\n"), "members.csv")},
                            content_type="multipart/form-data", expect=201).json
    assert multipart["counts"]["created"] == 1
    intake.call("post", f"/v1/sites/{site['id']}/imports", data="x", headers={"Content-Type": "text/plain"},
                expect=415)
    bad = intake.call("post", f"/v1/sites/{site['id']}/imports", data="nope,header\n1,2\n",
                      headers={"Content-Type": "text/csv"}, expect=422)
    assert "file" in bad.json["errors"]
    limit = intake.http.application.extensions["intake.settings"].import_max_rows
    too_many = "external_id,first_name\n" + "".join(f"T-{i},T\n" for i in range(limit + 1))
    big = intake.call("post", f"/v1/sites/{site['id']}/imports", data=too_many, headers={"Content-Type": "text/csv"},
                      expect=413)
    assert "file" in big.json["errors"]
    coord_other = intake.coordinator("site_other")
    intake.call("post", f"/v1/sites/{site['id']}/imports", coord_other, data=lines,
                headers={"Content-Type": "application/x-ndjson"}, expect=404)


def test_no_event_but_contact_changed_carries_a_direct_identifier(intake, intake_worker, tap, bodies):
    marker = uuid.uuid4().hex[:8]
    site = intake.site()
    email, phone = bodies.email(f"priv{marker}"), bodies.phone()
    member = intake.member(site["id"], first_name=f"Priv{marker}", last_name=f"Ate{marker}", preferred_name=f"P{marker}",
                           email=email, phone=phone, date_of_birth="1966-06-16", external_id=f"X{marker}",
                           consents=[{"purpose": "matching"}]).json
    mid = member["id"]
    etag = intake.call("get", f"/v1/members/{mid}").headers["ETag"]
    intake.call("patch", f"/v1/members/{mid}", json={"meeting_mode": "either"}, headers={"If-Match": etag}, expect=200)
    intake.call("post", f"/v1/members/{mid}/screenings", json={"instrument": "PHQ-2", "answers": [3, 2]}, expect=201)
    intake.call("delete", f"/v1/members/{mid}/consents/matching", expect=200)
    leader = intake.leader([site["id"]], first_name=f"Lead{marker}", email=bodies.email(f"lead{marker}"),
                           date_of_birth="1970-07-07").json
    intake.call("post", f"/v1/leaders/{leader['id']}/status", json={"to_status": "on_leave"}, expect=200)
    tap.wait_for(lambda e: e.key == leader["id"] and e.type.endswith("leader.updated.v1"))
    tap.wait_for(lambda e: e.key == mid and e.type.endswith("consent_changed.v1") and not e.data["granted"])
    public = tap.matching(lambda e: e.topic != CONTACTS and e.key in (mid, leader["id"]))
    assert len(public) >= 6
    secret_values = [marker, email, phone, "1966-06-16", "1970-07-07"]
    for evt in public:
        text = json.dumps(evt.data)
        assert not [v for v in secret_values if v in text], (evt.type, text)
    contacts = tap.matching(lambda e: e.topic == CONTACTS and e.key in (mid, leader["id"]))
    assert {e.data["person_kind"] for e in contacts} == {"member", "leader"}
    assert all(ContactChanged.restricted for e in contacts)
