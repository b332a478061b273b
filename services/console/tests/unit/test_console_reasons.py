"""Matching's "why this leader" sentences read no more of a member or a peer leader than the fields the Directory
asks intake for (``REASON_FIELDS``, ``LEADER_REASON_FIELDS``): the same sentences from the cut records as from
whole ones, with every kind of sentence said. And the Directory asks for those fields of the members a page
explains alone; the members it only names come by their names, kept for the person between pages."""
from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs, urlsplit

import urllib3
from flask import Flask
from flask_babel import Babel

from console.api_client import Api
from console.views.lookup import NAME_FIELDS
from console.views.matching_words import LEADER_REASON_FIELDS, REASON_FIELDS, Directory, reasons

EVENINGS = [{"day": d, "start": "17:00", "end": "21:00"} for d in range(5)]
MEMBER = {"id": "mem_1", "first_name": "Ana", "last_name": "Ruiz", "preferred_name": "Annie", "email": "ana@example.org",
          "phone": "+16175550100", "date_of_birth": "1990-01-02", "languages": ["es", "en"], "pathways": ["smart"],
          "substances": ["Alcohol"], "lived_experience_topics": ["parenting"], "availability": EVENINGS,
          "co_occurring_mental_health": "yes", "site_id": "site_a", "status": "active", "flags": ["follow_up"],
          "leader_gender_preference": "female", "meeting_mode": "either", "consents": [], "plan": None}
LEADER = {"id": "ldr_1", "first_name": "Sam", "last_name": "Lee", "preferred_name": None, "email": "sam@example.org",
          "phone": "+16175550101", "gender": "female", "languages": ["es-MX"], "pathways": ["smart", "12-step"],
          "substances": ["alcohol"], "lived_experience_areas": ["Parenting"], "availability": EVENINGS,
          "co_occurring_mental_health_experience": True, "site_ids": ["site_a"], "meets_virtually": True,
          "capacity": 12, "status": "active", "certifications": [{"name": "CPRS", "expires_on": "2030-01-01"}],
          "bio": "In recovery since 2015.", "stretched": None}
BREAKDOWN = [{"part": "availability", "points": 10, "max_points": 10}]


def cut(record: dict, fields) -> dict:
    return {k: v for k, v in record.items() if k in fields}


def test_the_sentences_need_only_the_fields_the_directory_asks_for():
    app = Flask(__name__)
    Babel(app)
    elsewhere = {**LEADER, "site_ids": ["site_b"]}   # at another site, meets virtually
    with app.test_request_context():
        for leader in (LEADER, elsewhere):
            whole = reasons(MEMBER, leader, BREAKDOWN, "Eastside")
            assert whole == reasons(cut(MEMBER, REASON_FIELDS), cut(leader, LEADER_REASON_FIELDS), BREAKDOWN, "Eastside")
            assert len(whole) == 7, whole   # language, pathway, substance, topic, time, co-occurring, site or virtual
        assert reasons(MEMBER, LEADER, BREAKDOWN, "Eastside")[-1] == "Works at Annie's site, Eastside."
        assert reasons(MEMBER, elsewhere, BREAKDOWN, "Eastside")[-1] == "Meets virtually."


class Intake:
    """Intake's ``GET /v1/members?ids=&fields=`` and ``/v1/sites`` as the console's urllib3 pool sees them: each
    request recorded (ids, fields), each member answered cut to the fields asked for."""

    def __init__(self, members: dict[str, dict]):
        self.members, self.asked = members, []

    def urlopen(self, method, url, **_):
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        if parts.path == "/v1/sites":
            body = {"items": [], "total": 0}
        else:
            self.asked.append((tuple(query["ids"]), tuple(query.get("fields", []))))
            body = {"items": [{"id": i, **cut(self.members[i], query["fields"])} for i in query["ids"] if i in self.members]}
        return urllib3.HTTPResponse(body=json.dumps(body).encode(), status=200, headers={"Content-Type": "application/json"})


def test_matching_asks_for_the_profiles_of_the_members_it_explains_and_only_the_names_of_the_others():
    class Settings:
        api_timeout_seconds, not_yet_known_wait_seconds, kept_answer_seconds = 10.0, 0.0, 30.0

        def service_url(self, service):
            return "http://intake.test"

    people = {"mem_1": MEMBER, "mem_2": {**MEMBER, "id": "mem_2", "preferred_name": None, "first_name": "Luis"},
              "mem_3": {**MEMBER, "id": "mem_3", "preferred_name": "Rosa"}}
    intake = Intake(people)
    client = Api(Settings(), f"coordinator-{uuid.uuid4()}", http=intake)
    app = Flask(__name__)
    Babel(app)
    with app.test_request_context():
        names = Directory(client).load(member_ids=["mem_1"], named_ids=["mem_2", "mem_3", "mem_1"])
        assert sorted(intake.asked) == [(("mem_1",), REASON_FIELDS), (("mem_2", "mem_3"), NAME_FIELDS)]
        assert names.member("mem_1")["languages"] == ["es", "en"]
        assert [names.member_name(i) for i in ("mem_1", "mem_2", "mem_3")] == ["Annie Ruiz", "Luis Ruiz", "Rosa Ruiz"]
        assert len(intake.asked) == 2
    with app.test_request_context():   # the person's next page: the names it showed are kept, the profiles are not
        names = Directory(client).load(member_ids=["mem_1"], named_ids=["mem_2", "mem_3"])
        assert intake.asked[2:] == [(("mem_1",), REASON_FIELDS)]
        assert names.member_name("mem_3") == "Rosa Ruiz"
