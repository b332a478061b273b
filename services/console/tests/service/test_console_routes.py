"""The console's route walk (its part of tests/security's walk, which covers the bearer-token APIs): the
console takes no bearer token, it takes a session cookie, so its rules are these. Every page but the listed
public ones sends a stranger to sign in; every POST without the CSRF token is refused (400) before its view
runs; a new route fails this walk until it is listed here."""
from __future__ import annotations

import re

# Pages anyone may open, and why.
PUBLIC = {
    "static": "the console's own CSS",
    "healthz": "liveness probe",
    "readyz": "readiness probe (says only whether the database answers)",
    "signin.start": "the sign-in page",
    "signin.send_link": "asks intake to email a link (intake answers the same whatever the address)",
    "signin.sent": "'check your email' and the form for a typed code",
    "signin.callback": "the emailed link's landing page (a Continue button; the code is spent only by POST)",
    "signin.exchange": "exchanges a code with intake (the code is the credential)",
    "signin.choose_organization": "shows the organizations intake offered for the code in this session, else back to sign-in",
    "signin.chose_organization": "exchanges the code in this session for the chosen organization",
    "signin.sign_out": "ends the session (harmless without one)",
    "signin.sign_out_everywhere": "asks intake to revoke the person's tokens, if signed in; ends the session",
    "language.choose": "the language switch, before and after sign-in",
}
SIGNED_IN = {"home.index"}
SIGNED_IN |= {"meetings.week", "meetings.new", "meetings.create", "meeting_day.occurrence", "meeting_day.register",  # area 3
              "meeting_day.unregister", "meeting_day.cancel", "meeting_day.move", "meeting_day.attendance",
              "meeting_day.save_attendance", "sessions_area.matches", "sessions_area.match", "sessions_area.book",
              "sessions_area.reschedule", "sessions_area.cancel"}
SIGNED_IN |= {"home.sections", "messages.log", "messages.retry", "messages.wording", "messages.wording_preview",  # area 4
              "messages.webhooks", "messages.delete_webhook", "admin.audit", "admin.staff", "admin.staff_member",
              "admin.deactivate"}
SIGNED_IN |= {"leaders.index", "leaders.new", "leaders.edit", "leaders.change_status", "leaders.lift_stretched",  # area 2
              "matching.index", "matching.member", "matching.accept", "matching.decline", "matching.lift",
              "matching.start_batch", "matching.batch_run", "matching.settings"}
SIGNED_IN |= {"members.index", "members.new", "members.show", "member_actions.edit", "member_actions.transfer",  # area 1
              "member_actions.screening", "member_actions.plan", "member_actions.resolve_flag", "member_actions.erase",
              "imports.upload", "imports.report", "imports.report_csv"}

SIGNED_IN |= {"my.accept", "my.decline", "my.my_sessions", "my.book", "my.cancel_session", "my.meetings",  # area 6
              "my.register", "my.unregister", "my.calendar_link", "my_settings.messages", "my_settings.save_preferences",
              "my_settings.mark_read", "my_settings.language", "my_settings.consents", "my_settings.give",
              "my_settings.withdraw", "my_settings.information", "my_settings.information_json"}
SIGNED_IN |= {"leader_portal.accept", "leader_portal.decline", "leader_portal.member", "leader_portal.book",  # area 5
              "leader_portal.reschedule", "leader_portal.cancel", "leader_portal.attendance", "leader_portal.save_attendance",
              "leader_portal.profile", "leader_portal.save_profile", "leader_portal.calendar_link", "leader_portal.go_on_leave",
              "leader_portal.stretched"}
SIGNED_IN |= {"reports.index", "reports.csv"}  # issue 18: the outcome report and its CSV
SIGNED_IN |= {"leader_portal.join_group", "leader_portal.leave_group"}  # area 5: support groups for peer leaders


def _routes(app):
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def test_every_route_is_listed_as_public_or_for_signed_in_people(app):
    endpoints = {rule.endpoint for rule, _ in _routes(app)}
    assert endpoints == set(PUBLIC) | SIGNED_IN, "list a new console route in PUBLIC (with why) or SIGNED_IN"


def test_every_signed_in_page_sends_a_stranger_to_sign_in(app):
    client = app.test_client()
    for rule, method in _routes(app):
        if rule.endpoint in SIGNED_IN and method == "GET":  # a POST without its CSRF token is refused first (below)
            answer = client.open(re.sub(r"<[^>]+>", "x", rule.rule), method=method)
            assert answer.status_code in (302, 303) and answer.headers["Location"].endswith("/sign-in"), rule


def test_every_post_without_the_csrf_token_is_refused(app):
    client = app.test_client()
    client.get("/sign-in")  # a session with a CSRF token exists; the POSTs below do not send it
    posts = [rule for rule, method in _routes(app) if method == "POST"]
    assert posts
    for rule in posts:
        answer = client.post(re.sub(r"<[^>]+>", "x", rule.rule), data={"email": "a@example.org", "lang": "es"})
        assert answer.status_code == 400 and "This form has expired" in answer.text, rule.rule
