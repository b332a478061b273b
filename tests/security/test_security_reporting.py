"""Reporting (issue 18) in the security walk: who may pull which outcome report, against the world's real
objects as reporting learnt them from the events.

* an admin pulls their organization's report (or one site's); a coordinator their own site's;
* a coordinator asking for a site they do not hold, and another organization's admin asking for A's
  site, get an empty report (nobody in it: zeros), never A's figures, ids or names, in JSON or CSV;
* leaders, members, service accounts and operators are refused (403), every pull is audited;
* reporting takes no writes (nothing to mass-assign): every other method answers 405 problem+json.
The generic walks (bad tokens, routes table, member routes, fuzzing, sign-out-everywhere) include reporting
through tests/security/conftest.py's SERVICES.
"""
from __future__ import annotations

import pytest

from shared.testing import eventually

pytestmark = pytest.mark.timeout(300)

OUTCOMES = "/v1/reports/outcomes"
SECTIONS = ("reach", "access", "engagement", "recovery_capital", "safety", "communication")


@pytest.fixture(scope="module")
def reported(stack, world):
    """Reporting has learnt the world's members of A (the member at the site, member2 at the other, the import)
    and the screening: the report says so (reporting's database holds no member id to look for)."""
    client = stack.client("reporting")

    def learnt():
        report = client.get(OUTCOMES, headers=world.h("admin")).get_json()
        return report["reach"]["onboarded"] != 0 and report["reach"]["active_at_end"] != 0
    eventually(learnt, timeout=300, interval=1, message="reporting learnt the world's members")
    return world


def _pull(stack, world, who, **query):
    response = stack.client("reporting").get(OUTCOMES, query_string=query, headers=world.h(who))
    assert response.status_code == 200, (who, response.status_code, response.get_data(as_text=True)[:400])
    return response.get_json()


def _no_ids_of_a(world, text):
    leaked = [v for k, v in world.ids.items() if k not in ("template_marker",) and v and v in text]
    leaked += [i for i in world.identifiers if i.lower() in text.lower()]
    return leaked


def test_admins_and_coordinators_pull_their_own_scope(stack, reported, problem):
    world = reported
    whole = _pull(stack, world, "admin")
    assert whole["organization_id"] == world.org and whole["sites"] is None
    assert whole["reach"]["onboarded"] == whole["suppressed"] == "fewer than 11"  # 3 members: a small cell
    site = _pull(stack, world, "admin", site_id=world.ids["site"])
    assert site["site_id"] == world.ids["site"] and site["reach"]["onboarded"] == "fewer than 11"
    own = _pull(stack, world, "coordinator")
    assert own["sites"] == [world.ids["site"]] and own["reach"]["onboarded"] == "fewer than 11"
    for report in (whole, site, own):
        assert not _no_ids_of_a(world, str({k: v for k, v in report.items()
                                            if k not in ("organization_id", "site_id", "sites")})), report


def test_another_site_or_organization_gets_an_empty_report_never_a_figures(stack, reported):
    world = reported
    reporting = stack.client("reporting")
    cases = {"coordinator_other_site": {"site_id": world.ids["site"]}, "other_admin": {"site_id": world.ids["site"]}}
    for who, query in cases.items():
        report = _pull(stack, world, who, **query)
        assert report["reach"]["onboarded"] == 0 and report["reach"]["active_at_end"] == 0, (who, report["reach"])
        assert report["access"]["days_to_first_proposal"]["n"] == 0
        assert report["engagement"]["sessions_held"] == 0 and report["safety"]["flags_raised"] == 0
        assert report["recovery_capital"]["PHQ-2"]["members"] == 0
        assert report["communication"]["delivered"] == 0, (who, report["communication"])
        csv = reporting.get(f"{OUTCOMES}.csv", query_string=query, headers=world.h(who))
        assert csv.status_code == 200 and csv.mimetype == "text/csv"
        figures = str([report[s] for s in SECTIONS])
        assert "fewer than" not in figures, (who, figures[:400])  # nobody in it: no small cell either
        assert not [row for row in csv.get_data(as_text=True).splitlines()[2:] if "fewer than" in row], who
        rows = csv.get_data(as_text=True).splitlines()
        assert rows[1].startswith("report,scope,") and world.org not in "\n".join(rows[2:])  # the scope row names the
        for text in ("\n".join(rows[2:]), figures):                                            # site asked for
            assert not _no_ids_of_a(world, text), who
    other = _pull(stack, world, "other_admin")
    assert other["organization_id"] == world.other_org and other["reach"]["onboarded"] == 0


@pytest.mark.parametrize("who", ["leader", "member", "member_other_org", "service", "operator"])
def test_leaders_members_services_and_operators_are_refused(stack, reported, problem, who):
    world = reported
    reporting = stack.client("reporting")
    for path in (OUTCOMES, f"{OUTCOMES}.csv"):
        body = problem(reporting.get(path, headers=world.h(who)), 403)
        assert not _no_ids_of_a(world, str(body))


def test_every_pull_is_audited_with_who_and_scope(stack, reported):
    world = reported
    db = stack.dbs["reporting"]
    before = db.audit_log.count_documents({"organization_id": world.org})
    _pull(stack, world, "coordinator", site_id=world.ids["site"])
    stack.client("reporting").get(f"{OUTCOMES}.csv", headers=world.h("admin"))
    entries = list(db.audit_log.find({"organization_id": world.org}).sort([("_id", 1)]))
    assert len(entries) == before + 2
    text = str(entries[-2:])
    assert "coordinator" in text and "admin" in text and world.ids["site"] in text and "csv" in text, text


def test_reporting_takes_no_writes(stack, reported, problem):
    world = reported
    reporting = stack.client("reporting")
    for path in (OUTCOMES, f"{OUTCOMES}.csv"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            problem(reporting.open(path, method=method, json={"organization_id": world.other_org, "reach": {}},
                                   headers=world.h("admin")), 405)
