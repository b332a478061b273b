"""The newcomer demo (deploy/demo.py) seeds an organization on the running platform and its report shows all
four services at work: intake (people onboarded, some by CSV), matching (matches with reasons, a waitlist
with reasons), scheduling (the week's meetings with registrations, sessions booked) and notifications
(deliveries per channel, mail received)."""
import pytest

from deploy import demo


@pytest.mark.timeout(240)
def test_demo_seeds_and_reports_all_four_services_at_work(platform):
    lines = []
    out = demo.run(platform, leaders=3, members=10, timeout=120, say=lines.append)

    assert any("by CSV import" in line for line in lines)
    # intake
    assert out.counts["sites"] == 2 and out.counts["leaders"] == 3 and out.counts["members"] == 10
    # matching: matches with their top reasons; everyone who consented is matched or waitlisted with a reason
    assert out.matches and all(m["reasons"] and m["score"] > 0 for m in out.matches)
    assert out.counts["active"] >= 1
    assert all(w["reason"] for w in out.waitlist)
    assert "site_" not in " ".join(w["reason"] for w in out.waitlist), "reasons name sites, not ids"
    # scheduling: the week's meetings in the sites' zones, with registrations; sessions booked
    assert len(out.meetings) >= 4 and sum(m["registered"] for m in out.meetings) > 0
    assert {m["time_zone"] for m in out.meetings} == {"America/New_York", "America/Los_Angeles"}
    assert out.counts["sessions booked"] >= 1
    # notifications: deliveries per channel, emails in the mail catcher
    assert out.notifications.get("email", {}).get("delivered", 0) > 0 and out.mail_received > 0
    # the printed report has every section and the places to look
    for heading in ("Matches made", "Waitlisted", "This week's meetings", "Notifications, per channel", "Where to look"):
        assert heading in out.text
    for url in ("/docs", "/messages", "meeting-guide.json", "meetings.ics", "calendar.ics?token="):
        assert url in out.text
    # reporting (issue 18): the outcome summary, ten members being a small cell the API suppresses
    assert "Outcomes for funders" in out.text and len(out.outcomes) >= 5
    assert "reach: fewer than 11 onboarded" in out.text, out.outcomes
