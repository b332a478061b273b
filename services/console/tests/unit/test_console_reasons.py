"""Matching's "why this leader" sentences read no more of a member or a peer leader than the fields the Directory
asks intake for (``REASON_FIELDS``, ``LEADER_REASON_FIELDS``): the same sentences from the cut records as from
whole ones, with every kind of sentence said."""
from __future__ import annotations

from flask import Flask
from flask_babel import Babel

from console.views.matching_words import LEADER_REASON_FIELDS, REASON_FIELDS, reasons

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
