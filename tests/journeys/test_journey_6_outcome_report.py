"""Journey 6 (issue 18): a small organization onboarded through intake's API, matched by matching, screened
twice, with a meeting whose attendance scheduling records; reporting's outcome report (polled over HTTP)
comes to the figures this test counts itself from the same inputs, with small cells suppressed in JSON and
CSV; then a member is erased and nothing that identifies them remains in reporting's database.

Figures checked (what today's APIs produce without back-dating, so every time is "now"):
  reach: onboarded, active at the end, by language (with complementary suppression), leaders active;
  access: members with a first proposal / an accepted match (n), declines by reason (none), waiting;
  engagement: meeting attendances (present), members attending, the series' recorded/present counts;
  recovery capital: BARC-10 members with 2 screenings, improved / unchanged / worse, mean change;
  safety: flags raised (none).
Not checked here (they need time to pass or back-dating: the unit and service tests feed back-dated events):
  medians of days to a proposal (all ~0), retention at 30/90/180 days (no cohort has reached day 30),
  one-on-one sessions held (scheduling says a session was held only once its end has passed), discharges
  after months, resolution hours.
"""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
from pymongo import MongoClient

pytestmark = pytest.mark.timeout(900)

SUPPRESSED = "fewer than 11"
SITE_A_MEMBERS = 13          # a cell of 11 or more: shown
SITE_B_MEMBERS = 2           # a small cell: suppressed, and one more hidden so it cannot be recovered
IMPROVED, UNCHANGED, WORSE = 7, 4, 2  # BARC-10 first vs second for the 13 members of site A


def _barc(total: int) -> list[int]:
    """Ten BARC-10 answers (1-6) adding up to ``total``."""
    answers, left = [], total
    for i in range(10):
        rest = 9 - i
        a = max(1, min(6, left - rest))
        answers.append(a)
        left -= a
    assert sum(answers) == total
    return answers


def _csv_values(text: str) -> dict:
    return {(row["section"], row["figure"], row["detail"]): row["value"] for row in csv.DictReader(io.StringIO(text))}


def test_journey_6_outcome_report_equals_independent_counts_then_erasure_leaves_nothing(new_org, helpers, platform):
    org = new_org("journey 6 outcome report")
    site_a = org.site("Riverbend", "America/New_York")
    site_b = org.site("Lakeside", "America/Chicago")
    leaders = [org.leader(name, [site_a["id"]], capacity=5) for name in ("Ada", "Bea", "Cal")]
    members = [org.member(f"Mem{i:02d}", site_a["id"], consents=("matching", "notify:email")) for i in range(SITE_A_MEMBERS)]
    members_b = [org.member(f"Bmem{i}", site_b["id"], languages=["es"], consents=("notify:email",))
                 for i in range(SITE_B_MEMBERS)]
    everyone = members + members_b

    # screenings: two BARC-10 each at site A, the change chosen per member
    changes = [3] * IMPROVED + [0] * UNCHANGED + [-2] * WORSE
    for member, change in zip(members, changes):
        org.intake.post(f"/v1/members/{member['id']}/screenings",
                        json={"instrument": "BARC-10", "answers": _barc(30)}).expect(201)
        org.intake.post(f"/v1/members/{member['id']}/screenings",
                        json={"instrument": "BARC-10", "answers": _barc(30 + change)}).expect(201)

    # matching proposes a leader for each consenting member (capacity 15 for 13); each leader accepts
    site_a_ids = {m["id"] for m in members}

    def everyone_proposed():
        found = {}
        for evt in org.events("match.proposed"):
            found.setdefault(evt.data["member_id"], evt.data)
        return found if set(found) >= site_a_ids else None
    first_proposal = helpers.eventually(everyone_proposed, timeout=240, interval=1,
                                        message="matching proposed a leader to every consenting member")
    accepted = set()
    for member_id, data in first_proposal.items():
        leader = org.leader_client("matching", data["leader_id"])
        if leader.post(f"/v1/matches/{data['match_id']}/accept").status_code == 200:
            accepted.add(member_id)
    assert len(accepted) >= 11, accepted

    # a meeting at site A whose first occurrence begins in a minute; 12 come, the others are absent
    start = (datetime.now(timezone.utc) + timedelta(minutes=1)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    from zoneinfo import ZoneInfo
    local = start.astimezone(ZoneInfo("America/New_York")).replace(tzinfo=None)
    meeting = org.meeting({"site_id": site_a["id"], "facilitator_id": leaders[0]["id"], "name": "Thursday circle",
                           "capacity": 20, "attendance_mode": "in_person", "rrule": "FREQ=WEEKLY",
                           "first_start_local": local.strftime("%Y-%m-%dT%H:%M"), "duration_minutes": 60})
    occurrence = org.scheduling.get(f"/v1/meetings/{meeting['id']}/occurrences",
                                    params={"from": (start - timedelta(minutes=5)).isoformat(),
                                            "to": (start + timedelta(days=1)).isoformat()}).expect(200)
    occurrence = (occurrence["items"] if isinstance(occurrence, dict) else occurrence)[0]["occurrence_id"]
    present, absent = [m["id"] for m in members[:12]], [m["id"] for m in members[12:]]

    def take_attendance():
        answer = org.scheduling.put(f"/v1/meetings/{meeting['id']}/occurrences/{occurrence}/attendance",
                                    json={"present_member_ids": present, "absent_member_ids": absent})
        return answer.status_code in (200, 201) and answer.json
    helpers.eventually(take_attendance, timeout=240, interval=2, message="attendance taken once the meeting began")

    # -- the counts made here, from the inputs ---------------------------------------------------------
    expected = {
        ("reach", "onboarded"): SITE_A_MEMBERS + SITE_B_MEMBERS,
        ("reach", "active_at_end"): SITE_A_MEMBERS + SITE_B_MEMBERS,
        ("reach", "leaders_active_at_end"): SUPPRESSED,               # 3 leaders
        ("access", "days_to_first_proposal", "n"): len(first_proposal),
        ("access", "days_to_accepted_match", "n"): len(accepted),
        ("access", "declined"): 0,
        ("engagement", "meeting_attendances"): SUPPRESSED,            # 12, but the one series' present is hidden
        ("engagement", "members_attending"): len(present),
        ("engagement", "sessions_held"): 0,
        ("recovery_capital", "BARC-10", "members"): SITE_A_MEMBERS,
        ("recovery_capital", "BARC-10", "improved"): SUPPRESSED,      # 7, and so 4 and 2 too
        ("recovery_capital", "BARC-10", "unchanged"): SUPPRESSED,
        ("recovery_capital", "BARC-10", "worse"): SUPPRESSED,
        ("recovery_capital", "BARC-10", "mean_change"): round(sum(changes) / len(changes), 2),
        ("safety", "flags_raised"): 0,
    }
    today = datetime.now(timezone.utc).date()
    query = {"from": today.replace(day=1).isoformat(), "to": today.isoformat()}
    reporting = org.platform.client("reporting", org.admin_token)

    def get(report, path):
        for part in path:
            report = report[part]
        return report

    def caught_up():
        answer = reporting.get("/v1/reports/outcomes", params=query)
        if answer.status_code != 200:
            return None
        report = answer.json
        return report if all(get(report, path) == value for path, value in expected.items()) else None
    try:
        report = helpers.eventually(caught_up, timeout=180, interval=1, message="reporting's figures")
    except AssertionError:
        report = reporting.get("/v1/reports/outcomes", params=query).json
        raise AssertionError({"/".join(map(str, p)): (get(report, p), v) for p, v in expected.items()
                              if get(report, p) != v})

    # small cells: 2 Spanish speakers hidden, and English too (else 15 - 13 gives them away)
    assert report["reach"]["by_language"] == {"en": SUPPRESSED, "es": SUPPRESSED}
    # the series: 12 present of 13 recorded, 1 absent: absent hidden, so present too, and the rate (12/13 would give
    # it back), and the attendances total (one series: it equals present)
    (series,) = report["engagement"]["attendance_by_series"]
    assert (series["meeting"], series["members"], series["recorded"]) == ("Thursday circle", SITE_A_MEMBERS, SITE_A_MEMBERS)
    assert series["present"] == series["absent"] == series["attendance_rate"] == SUPPRESSED, series
    # one site's report: site B's two members are a small cell
    site_b_report = reporting.get("/v1/reports/outcomes", params={**query, "site_id": site_b["id"]}).expect(200)
    assert site_b_report["reach"]["onboarded"] == SUPPRESSED and site_b_report["reach"]["active_at_end"] == SUPPRESSED
    # the CSV says the same, hidden cells included
    answer = reporting.get("/v1/reports/outcomes.csv", params=query)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv"), answer.text[:300]
    text = answer.text
    values = _csv_values(text)
    assert values[("reach", "onboarded", "")] == str(SITE_A_MEMBERS + SITE_B_MEMBERS)
    assert values[("reach", "by_language", "es")] == SUPPRESSED and values[("reach", "by_language", "en")] == SUPPRESSED
    assert values[("recovery_capital", "BARC-10", "improved")] == SUPPRESSED
    assert values[("recovery_capital", "BARC-10", "members")] == str(SITE_A_MEMBERS)
    site_b_csv = _csv_values(reporting.get("/v1/reports/outcomes.csv", params={**query, "site_id": site_b["id"]}).text)
    assert site_b_csv[("reach", "onboarded", "")] == SUPPRESSED
    # no person's id in the report
    for person in [*everyone, *leaders]:
        assert person["id"] not in str(report) and person["id"] not in text

    # -- erasure: nothing that identifies the member remains in reporting's database --------------------
    gone = members[0]
    org.intake.post(f"/v1/members/{gone['id']}/erasure", json={"reason": "asked to be forgotten"}).expect(200, 201, 202)
    client = MongoClient(platform.mongo_uri("reporting"))
    try:
        db = client["recoverynet_reporting"]
        helpers.eventually(lambda: db.members.count_documents({"organization_id": org.id, "erased": True}) == 1,
                           timeout=120, message="reporting applied the erasure")
        identifiers = [gone["id"], gone["first_name"], gone["last_name"], gone.get("email") or "",
                       first_proposal.get(gone["id"], {}).get("match_id", "")]
        identifiers = [i for i in identifiers if i]
        found = []
        for name in db.list_collection_names():  # every collection, the inbox and audit log included
            for doc in db[name].find({}):
                text_doc = str(doc)
                found += [(name, i) for i in identifiers if i in text_doc]
        assert not found, found
    finally:
        client.close()
    # the member's contribution stays as anonymous counts
    after = reporting.get("/v1/reports/outcomes", params=query).expect(200)
    assert after["reach"]["onboarded"] == SITE_A_MEMBERS + SITE_B_MEMBERS
