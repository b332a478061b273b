"""A peer leader says they are stretched (issue 17), in a real browser on a phone (375x812): Lena pauses new
proposals from her home page (with a private note), a new member who would have been proposed to her waits
instead, and why; her coordinator sees "says they are stretched since <date>" with her note on the Peer
leaders list and her page, and lifts it; proposals to her resume and she sees the new member. Every page:
axe clean, no horizontal scroll at 360 px."""
from __future__ import annotations

import uuid

from playwright.sync_api import expect

from shared.testing import eventually

ALL_DAYS = [{"day": d, "start": "08:00", "end": "22:00"} for d in range(7)]
CERTIFIED = [{"name": "Certified Peer Recovery Specialist", "issuer": "State board", "expires_on": "2031-01-01"}]
NOTE = "My mother is unwell this month."


def _check(page, assert_accessible, assert_fits):
    assert_accessible(page)
    page.set_viewport_size({"width": 360, "height": 812})
    assert_fits(page)
    page.set_viewport_size({"width": 375, "height": 812})


def test_a_leader_says_they_are_stretched_and_their_coordinator_lifts_it(new_page, platform, organization, sign_in_as,
                                                                         assert_accessible, assert_fits):
    org_id, site, intake = organization
    tag = uuid.uuid4().hex[:6]
    lena = intake.post("/v1/leaders", json={
        "first_name": "Lena", "last_name": f"Leader{tag}", "email": f"lena.{tag}@example.org", "site_ids": [site["id"]],
        "languages": ["en"], "availability": ALL_DAYS, "capacity": 3, "time_zone": "America/Chicago",
        "certifications": CERTIFIED}).expect(201)
    matching = platform.client("matching", platform.token(org_id, "admin"))

    # Lena, on her phone, says she is stretched
    phone = new_page(width=375, height=812)
    sign_in_as(phone, platform.token(org_id, "leader", leader_id=lena["id"], sites=[site["id"]]), "leader", org_id,
               person_id=lena["id"])
    phone.goto("/")
    expect(phone.get_by_role("heading", name="Welcome, Lena", level=1)).to_be_visible()
    pause = phone.get_by_role("region", name="New members")
    expect(pause).to_contain_text("pause new proposals: the members you support now stay with you")
    _check(phone, assert_accessible, assert_fits)
    pause.get_by_label("Anything your coordinator should know (optional, only they see it)").fill(NOTE)
    pause.get_by_role("button", name="I'm stretched — pause new proposals").click()
    expect(phone.get_by_role("status")).to_contain_text("Thank you for saying so.")
    expect(phone.get_by_role("region", name="New members")).to_contain_text("You said you are stretched on")
    expect(phone.get_by_role("button", name="I'm ready for new members again")).to_be_visible()
    expect(phone.get_by_text("No new proposals while you have paused them.")).to_be_visible()
    _check(phone, assert_accessible, assert_fits)

    # Mara joins; she would have been proposed to Lena (the only peer leader). Her matching consent is given once
    # matching has heard Lena is stretched (seen in Mara's candidates), so the order of the two events is known.
    mara = intake.post("/v1/members", json={
        "first_name": "Mara", "last_name": f"Member{tag}", "email": f"mara.{tag}@example.org", "site_id": site["id"],
        "languages": ["en"], "availability": ALL_DAYS, "date_of_birth": "1988-04-17",
        "consents": [{"purpose": "notify:email"}]}).expect(201)

    def lena_is_out_because_stretched():
        answer = matching.get(f"/v1/members/{mara['id']}/proposals")
        if answer.status_code != 200:
            return None
        failed = {e["leader_id"]: e["rules_failed"] for e in answer.json.get("excluded", [])}
        return "the leader said they are stretched (new proposals paused)" in failed.get(lena["id"], [])
    eventually(lena_is_out_because_stretched, timeout=60, interval=0.5, message="matching knows Lena is stretched")
    intake.post(f"/v1/members/{mara['id']}/consents", json={"purpose": "matching"}).expect(201)

    def mara_waits():
        entries = [w for w in matching.get("/v1/waitlist").expect(200)["items"] if w["member_id"] == mara["id"]]
        return entries[0] if entries else None
    waiting = eventually(mara_waits, timeout=60, interval=0.5, message="Mara on the waitlist")
    assert waiting["reason_codes"] == ["leaders_stretched"], waiting
    assert matching.get("/v1/matches", params={"member_id": mara["id"]}).expect(200)["total"] == 0

    # her coordinator sees the signal, privately, with the note, and lifts it
    desk = new_page(width=375, height=812)
    sign_in_as(desk, platform.token(org_id, "coordinator", sites=[site["id"]]), "coordinator", org_id)
    desk.goto("/matching")
    expect(desk.get_by_role("region", name="People waiting for a peer leader").get_by_role("listitem").filter(
        has_text="Mara")).to_contain_text("said they are stretched")
    desk.goto("/leaders")
    card = desk.get_by_role("listitem").filter(has_text=f"Lena Leader{tag}")
    expect(card).to_contain_text("says they are stretched since")
    expect(card).to_contain_text(f"Their note to you: {NOTE}")
    _check(desk, assert_accessible, assert_fits)
    card.get_by_role("link", name=f"Edit Lena Leader{tag}").click()
    expect(desk.get_by_text("says they are stretched since")).to_be_visible()
    _check(desk, assert_accessible, assert_fits)
    desk.get_by_role("button", name="Lift the pause for Lena").click()
    expect(desk.get_by_role("status")).to_contain_text("The pause is lifted: new members can be proposed to")
    expect(desk.get_by_text("says they are stretched since")).to_have_count(0)
    assert intake.get(f"/v1/leaders/{lena['id']}").expect(200)["stretched"] is None

    # proposals resume: Mara is proposed to Lena, who sees her and can pause again
    def proposed_to_lena():
        found = matching.get("/v1/matches", params={"member_id": mara["id"], "status": "proposed"}).expect(200)
        return [m["leader_id"] for m in found["items"]] == [lena["id"]]
    eventually(proposed_to_lena, timeout=60, interval=0.5, message="Mara proposed to Lena")
    lena_intake = platform.client("intake", platform.token(org_id, "leader", leader_id=lena["id"], sites=[site["id"]]))
    eventually(lambda: len(lena_intake.get("/v1/me/members").expect(200)) == 1 or None, timeout=30, interval=0.3,
               message="intake knows the proposal")
    phone.goto("/")
    expect(phone.get_by_role("region", name="New proposals").get_by_role("heading", name="Mara")).to_be_visible()
    expect(phone.get_by_role("button", name="I'm stretched — pause new proposals")).to_be_visible()
    _check(phone, assert_accessible, assert_fits)
