"""Fixtures of the security and bad-input tests (issue 9).

The four services run in-process on the real embedded broker and database: each web app as a Flask
test client, each worker in a thread (intake's relays the outbox; the others consume). One "world" of
real objects is built once for the package, through the services' own APIs and the events between
them (no object is written to a database by hand): organization A with two sites, a coordinator,
two peer leaders, members, an accepted match, a booked session, a meeting with a registration, an
import, a screening, a plan, a batch run, a block (override), deliveries, an in-app message, a webhook
and a template.
Organization B exists too; its admin must see none of it.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

import pytest

from shared.messaging.envelope import MalformedEvent, decode_record  # noqa: F401  (re-exported for tests)
from shared.devstack.servers import free_port
from shared.events.matching import MatchProposed
from shared.messaging.kafka import platform_topics
from shared.mongo import connect
from shared.testing import eventually
from shared.testing.events import EventTap
from shared.testing.fixtures import auth_header
from shared.testing.services import caught_up, running

SERVICES = ("intake", "matching", "scheduling", "notifications", "reporting")
EVENINGS = [{"day": d, "start": "17:00", "end": "22:00"} for d in range(7)]


def assert_problem(response, *statuses):
    """A 4xx/5xx answer in RFC 9457 problem+json, without internals."""
    text = response.get_data(as_text=True)
    assert response.status_code in statuses, (response.status_code, statuses, text[:500])
    assert response.mimetype == "application/problem+json", (response.status_code, response.mimetype, text[:300])
    body = json.loads(text)
    assert body["status"] == response.status_code and body.get("title"), body
    assert "Traceback" not in text
    return body


# --- the four services in-process --------------------------------------------------------------------

@dataclass
class Stack:
    settings: dict
    apps: dict
    dbs: dict
    bootstrap: str
    tap: EventTap

    def client(self, service):
        return self.apps[service].test_client()


@pytest.fixture(scope="package")
def stack(platform_settings, kafka_bootstrap, tmp_path_factory):
    from intake.app import create_app as intake_app
    from intake.config import Settings as IntakeSettings
    from intake.repository import ensure_indexes as intake_indexes
    from intake.worker import build_worker as intake_worker
    from matching.app import create_app as matching_app
    from matching.config import Settings as MatchingSettings
    from matching.repository import ensure_indexes as matching_indexes
    from matching.worker import build_worker as matching_worker
    from notifications.app import create_app as notifications_app
    from notifications.config import Settings as NotificationsSettings
    from shared.devstack.mailcatcher import MailCatcher
    from notifications.repository import ensure_indexes as notifications_indexes
    from notifications.worker import build_worker as notifications_worker
    from scheduling.app import create_app as scheduling_app
    from scheduling.config import Settings as SchedulingSettings
    from scheduling.repository import ensure_indexes as scheduling_indexes
    from scheduling.worker import build_worker as scheduling_worker
    from reporting.app import create_app as reporting_app
    from reporting.config import Settings as ReportingSettings
    from reporting.repository import ensure_indexes as reporting_indexes
    from reporting.worker import build_worker as reporting_worker

    mail = MailCatcher(smtp_port=free_port(), http_port=free_port(), folder=tmp_path_factory.mktemp("sec-mail")).start()
    settings = {
        "intake": IntakeSettings(platform=platform_settings("intake")),
        "matching": MatchingSettings(platform=platform_settings("matching"), batch_poll_seconds=0.3),
        "scheduling": SchedulingSettings(platform=platform_settings("scheduling"), reminder_interval_seconds=3600.0),
        "notifications": NotificationsSettings(
            platform=platform_settings("notifications"), smtp_host="127.0.0.1", smtp_port=mail.smtp_port,
            sms_outbox_path=str(tmp_path_factory.mktemp("sec-sms") / "outbox.jsonl"),
            delivery_interval_seconds=0.2, public_base_url="http://testserver"),
        "reporting": ReportingSettings(platform=platform_settings("reporting")),
    }
    builders = {"intake": (intake_app, intake_indexes, intake_worker),
                "matching": (matching_app, matching_indexes, matching_worker),
                "scheduling": (scheduling_app, scheduling_indexes, scheduling_worker),
                "notifications": (notifications_app, notifications_indexes, notifications_worker),
                "reporting": (reporting_app, reporting_indexes, reporting_worker)}
    apps, dbs = {}, {}
    client = connect(settings["intake"].platform.mongo_uri)
    for name, (make_app, ensure_indexes, _) in builders.items():
        db = client[settings[name].platform.mongo_database]
        ensure_indexes(db)
        dbs[name] = db
        apps[name] = make_app(settings[name])
    topics = [t for t in platform_topics() if not t.endswith(".dlq")]
    tap = EventTap(kafka_bootstrap, topics).__enter__()
    workers = [builders[name][2](settings[name]) for name in SERVICES]
    # The services' own consumer groups on the session's broker: what earlier tests published is other
    # organizations' and not this package's to apply; `running` skips it, then make sure nothing is left before
    # the world's requests (which would otherwise wait behind, and time out on, that backlog's transactions).
    try:
        with running(*workers):
            caught_up(workers)
            yield Stack(settings=settings, apps=apps, dbs=dbs, bootstrap=kafka_bootstrap, tap=tap)
    finally:
        tap.close()
        mail.stop()
        client.close()


# --- the world of real objects ------------------------------------------------------------------------

@dataclass
class World:
    org: str
    other_org: str
    tokens: dict
    ids: dict = field(default_factory=dict)
    identifiers: list = field(default_factory=list)  # names, emails, phones, birth dates sent to intake

    def h(self, who="admin"):
        return auth_header(self.tokens[who])


def _ok(response, *statuses):
    assert response.status_code in statuses, (response.status_code, response.get_data(as_text=True)[:800])
    return response.get_json()


def member_body(site_id, **extra):
    tag = uuid.uuid4().hex[:8]
    body = {"site_id": site_id, "first_name": f"Zebulon{tag}", "last_name": f"Quartermaine{tag}",
            "preferred_name": f"Zeb{tag}", "email": f"zeb.{tag}@example.org",
            "phone": f"+1617253{uuid.uuid4().int % 10000:04d}", "date_of_birth": "1987-11-23",
            "languages": ["en"], "availability": EVENINGS, "contact_channels": ["email", "inapp"],
            "substances": ["alcohol"], "pathways": ["smart"], "co_occurring_mental_health": "no",
            "lived_experience_topics": ["parenting"], "meeting_mode": "either",
            "consents": [{"purpose": "matching"}, {"purpose": "notify:email"}, {"purpose": "notify:inapp"}]}
    body.update(extra)
    return body


def leader_body(site_ids, **extra):
    tag = uuid.uuid4().hex[:8]
    body = {"site_ids": list(site_ids), "first_name": f"Philippa{tag}", "last_name": f"Wolcott{tag}",
            "email": f"phil.{tag}@example.org", "languages": ["en"], "gender": "female", "meets_virtually": True,
            "capacity": 4, "availability": EVENINGS, "pathways": ["smart"], "substances": ["alcohol"],
            "lived_experience_areas": ["parenting"],
            "certifications": [{"name": "CPRS", "issuer": "State board", "expires_on": "2030-01-01"}]}
    body.update(extra)
    return body


def identifiers_of(body: dict) -> list[str]:
    return [str(body[k]) for k in ("first_name", "last_name", "preferred_name", "email", "phone", "date_of_birth")
            if body.get(k)]


@pytest.fixture(scope="package")
def world(stack, make_token):
    """Organization A's objects (and organization B), shared by the tests that only read or are refused."""
    return build_world(stack, make_token)


@pytest.fixture(scope="package")
def fuzz_world(stack, make_token):
    """Another world of the same shape, for the fuzzer to trample (it may erase, cancel and end things)."""
    return build_world(stack, make_token)


# Path parameters of every route, as references into World.ids ("=value": a literal).
PARAMS = {
    "intake": {"organization_id": "org", "site_id": "site", "staff_id": "staff", "member_id": "member",
               "purpose": "=matching", "flag": "=risk", "import_id": "import", "leader_id": "leader"},
    "matching": {"match_id": "match", "member_id": "member", "run_id": "batch_run", "override_id": "override"},
    "scheduling": {"meeting_id": "meeting", "occurrence_id": "occurrence", "registration_id": "registration",
                   "match_id": "match", "session_id": "session", "organization_id": "org", "slug": "=morning-circle",
                   "site_id": "site", "member_id": "member", "leader_id": "leader"},
    "notifications": {"person_id": "member", "message_id": "message", "delivery_id": "delivery",
                      "kind": "=match_proposed", "channel": "=email", "language": "=en", "site_id": "site",
                      "webhook_id": "webhook"},
    "reporting": {},  # no path parameter: the report's scope is the token's organization (and ?site_id=)
}


def param_value(service: str, name: str, ids: dict) -> str:
    ref = PARAMS[service][name.split(":")[-1]]
    return ref[1:] if ref.startswith("=") else ids[ref]


def build_world(stack, make_token) -> "World":
    intake, matching = stack.client("intake"), stack.client("matching")
    scheduling, notifications = stack.client("scheduling"), stack.client("notifications")
    org, other = f"org-sec-{uuid.uuid4().hex[:8]}", f"org-sec-{uuid.uuid4().hex[:8]}"
    operator = auth_header(make_token(None, "operator"))
    for o in (org, other):
        _ok(intake.post("/v1/organizations", json={"id": o, "name": f"Org {o}"}, headers=operator), 201)
    w = World(org=org, other_org=other, tokens={"admin": make_token(org, "admin"), "operator": make_token(None, "operator"),
                                                "other_admin": make_token(other, "admin"),
                                                "service": make_token(org, "service")})
    admin = w.h()
    ids = w.ids
    ids["org"] = org
    site = lambda name: _ok(intake.post("/v1/sites", json={"name": name, "time_zone": "America/New_York",  # noqa: E731
                                                           "address": {"street": "1 Main St", "city": "Albany"}},
                                        headers=admin), 201)["id"]
    ids["site"], ids["site2"] = site("Riverside"), site("Hilltop")
    w.tokens["coordinator"] = make_token(org, "coordinator", sites=[ids["site"]])
    w.tokens["coordinator_other_site"] = make_token(org, "coordinator", sites=[ids["site2"]])
    staff = {"first_name": "Cora", "last_name": f"Ordinator{uuid.uuid4().hex[:6]}",
             "email": f"cora.{uuid.uuid4().hex[:8]}@example.org", "site_ids": [ids["site"]]}
    ids["staff"] = _ok(intake.post("/v1/staff", json=staff, headers=admin), 201)["id"]
    w.identifiers += identifiers_of(staff)
    leaders = []
    for _ in range(2):
        body = leader_body([ids["site"]])
        leaders.append(_ok(intake.post("/v1/leaders", json=body, headers=admin), 201)["id"])
        w.identifiers += identifiers_of(body)
    mbody = member_body(ids["site"])
    ids["member"] = _ok(intake.post("/v1/members", json=mbody, headers=admin), 201)["id"]
    w.identifiers += identifiers_of(mbody)
    m2body = member_body(ids["site2"], consents=[{"purpose": "notify:email"}])
    ids["member2"] = _ok(intake.post("/v1/members", json=m2body, headers=admin), 201)["id"]
    w.identifiers += identifiers_of(m2body)
    # members (issue 15): the member, another member of A (the other site), and a member of B who carries
    # the very same member id as A's member (the organization in the token decides, never the id)
    w.tokens["member"] = make_token(org, "member", member_id=ids["member"])
    w.tokens["member_other"] = make_token(org, "member", member_id=ids["member2"])
    w.tokens["member_other_org"] = make_token(other, "member", member_id=ids["member"])
    ids["screening"] = _ok(intake.post(f"/v1/members/{ids['member']}/screenings",
                                       json={"instrument": "PHQ-2", "answers": [0, 1]}, headers=admin), 201)["id"]
    _ok(intake.put(f"/v1/members/{ids['member']}/plan", json={"goal": "steady work", "next_steps": ["call"]},
                   headers=admin), 200)
    row = member_body(ids["site"], external_id=f"ext-{uuid.uuid4().hex[:8]}", consents=["matching"])
    row.pop("site_id")
    w.identifiers += identifiers_of(row)
    imported = _ok(intake.post(f"/v1/sites/{ids['site']}/imports", data=json.dumps(row) + "\n",
                               headers={**admin, "Content-Type": "application/x-ndjson"}), 201)
    ids["import"] = imported["id"]

    # matching proposes one of the leaders for the member; that leader accepts
    proposed = stack.tap.wait_for(lambda e: e.type == MatchProposed.type and e.data.get("member_id") == ids["member"],
                                  timeout=90)[0]
    ids["match"], ids["leader"] = proposed.data["match_id"], proposed.data["leader_id"]
    ids["leader_other"] = next(lid for lid in leaders if lid != ids["leader"])
    w.tokens["leader"] = make_token(org, "leader", leader_id=ids["leader"], sites=[ids["site"]])
    w.tokens["leader_other"] = make_token(org, "leader", leader_id=ids["leader_other"], sites=[ids["site"]])
    _ok(matching.post(f"/v1/matches/{ids['match']}/accept", headers=w.h("leader")), 200)
    ids["batch_run"] = _ok(matching.post("/v1/batch-runs", json={"site_id": ids["site"]}, headers=admin), 202)["id"]

    def block():  # a coordinator's block of the other leader for the member (leaves the match alone)
        r = matching.post("/v1/overrides", json={"member_id": ids["member"], "leader_id": ids["leader_other"],
                                                 "kind": "block", "reason": "walk"}, headers=admin)
        return r.status_code == 201 and r.get_json()
    ids["override"] = eventually(block, timeout=60, message="matching knows the other leader")["id"]

    # scheduling: a session of the match, a meeting at the site with the member registered
    def suggestions():
        r = scheduling.get(f"/v1/matches/{ids['match']}/suggestions", headers=admin)
        return r.status_code == 200 and (r.get_json().get("suggestions") or r.get_json().get("items"))
    found = eventually(suggestions, timeout=60, message="scheduling suggests session times")
    start = found[0]["start"]
    ids["session"] = _ok(scheduling.post("/v1/sessions", json={"match_id": ids["match"], "start": start},
                                         headers=w.h("leader")), 201)["id"]
    first = (datetime.now(timezone.utc) + timedelta(days=3)).strftime("%Y-%m-%dT10:00")
    meeting = {"site_id": ids["site"], "facilitator_id": ids["leader_other"], "name": "Morning circle",
               "capacity": 10, "attendance_mode": "in_person", "rrule": "FREQ=WEEKLY", "first_start_local": first,
               "duration_minutes": 60, "is_public": True}

    def create_meeting():
        r = scheduling.post("/v1/meetings", json=meeting, headers=admin)
        return r.status_code == 201 and r.get_json()
    ids["meeting"] = eventually(create_meeting, timeout=60, message="meeting created")["id"]

    def register():
        r = scheduling.post(f"/v1/meetings/{ids['meeting']}/registrations", json={"member_id": ids["member"]},
                            headers=admin)
        return r.status_code == 201 and r.get_json()
    ids["registration"] = eventually(register, timeout=60, message="member registered")["id"]
    now = datetime.now(timezone.utc)
    occ = _ok(scheduling.get(f"/v1/meetings/{ids['meeting']}/occurrences",
                             query_string={"from": now.isoformat(), "to": (now + timedelta(days=30)).isoformat()},
                             headers=admin), 200)
    ids["occurrence"] = occ[0]["occurrence_id"]

    # notifications: a webhook, a template override, deliveries and an in-app message for the member
    ids["webhook"] = _ok(notifications.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=admin),
                         201)["id"]
    w.ids["template_marker"] = f"ORG-A-WORDING-{uuid.uuid4().hex[:6]}"
    _ok(notifications.put("/v1/templates/match_proposed/email/en",
                          json={"subject": w.ids["template_marker"], "text": "Hello {{ name }}"}, headers=admin), 200)

    def delivery():
        r = notifications.get("/v1/deliveries", query_string={"recipient_id": ids["member"]}, headers=admin)
        return r.status_code == 200 and r.get_json()["items"]
    ids["delivery"] = eventually(delivery, timeout=60, message="a delivery for the member")[0]["id"]

    def inbox():
        r = notifications.get(f"/v1/people/{ids['member']}/inbox", headers=admin)
        return r.status_code == 200 and r.get_json()["items"]
    ids["message"] = eventually(inbox, timeout=60, message="an in-app message for the member")[0]["id"]
    return w


@pytest.fixture(scope="session")
def problem():
    """``problem(response, *statuses)``: asserts a problem+json answer with one of the statuses."""
    return assert_problem
