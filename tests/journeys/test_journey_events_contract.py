"""Every event the journeys produced validates against its published JSON Schema (docs/schemas/), none went
to a dead-letter topic, and no event outside the restricted contacts topic carries a direct identifier
(the names, emails, phones and dates of birth the journeys used).

Runs after the journey files (pytest takes files in name order) and reads the session's tap."""
import json
from collections import Counter
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from shared.events import RESTRICTED_TOPICS

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def journey_records(tap, journal):
    out = []
    for record in list(tap.records):
        if record.value is None:
            continue  # a tombstone (erasure on the contacts topic)
        headers = {k: v.decode() for k, v in record.headers or []}
        try:
            data = json.loads(record.value)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("organization_id") in journal.organizations:
            out.append((record, headers, data))
    return out


@pytest.mark.timeout(60)
def test_every_journey_event_validates_against_its_schema_and_carries_no_identifier(tap, journal):
    if not journal.organizations:
        pytest.skip("run together with the journeys (tests/journeys): they produce the events checked here")
    records = journey_records(tap, journal)
    assert records, "the tap saw nothing from the journeys"

    dead = [(r.topic, h.get("ce_type")) for r, h, _ in records if r.topic.endswith(".dlq")]
    assert not dead, f"events of the journeys went to dead-letter topics: {dead}"

    validators: dict[str, Draft202012Validator] = {}
    types = Counter()
    problems = []
    for record, headers, data in records:
        ce_type = headers.get("ce_type")
        assert ce_type, f"a record on {record.topic} has no ce_type header"
        if ce_type not in validators:
            path = SCHEMAS / f"{ce_type}.json"
            assert path.exists(), f"no published schema for {ce_type}"
            validators[ce_type] = Draft202012Validator(json.loads(path.read_text()),
                                                       format_checker=Draft202012Validator.FORMAT_CHECKER)
        for error in validators[ce_type].iter_errors(data):
            problems.append(f"{ce_type}: {error.json_path}: {error.message}")
        types[ce_type] += 1
    assert not problems, "\n".join(problems[:30])

    leaks = []
    for record, headers, data in records:
        if record.topic in RESTRICTED_TOPICS:
            continue
        text = record.value.decode()
        leaks += [(headers["ce_type"], identifier) for identifier in journal.identifiers if identifier in text]
    assert not leaks, f"direct identifiers outside the contacts topic: {leaks[:20]}"

    # the contacts topic did carry identifiers (so the check above looked for the right strings) ...
    contacts = [r.value.decode() for r, _, _ in records if r.topic in RESTRICTED_TOPICS]
    assert any(identifier in text for text in contacts for identifier in journal.identifiers)
    # ... and, when all the journeys ran, they exercised every service's events
    if len(journal.organizations) >= 6:
        assert {t.split(".")[2] for t in types} == {"intake", "matching", "scheduling", "notifications"}, types
        assert len(types) >= 25, sorted(types)
