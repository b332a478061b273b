"""The published contract (docs/asyncapi.yaml, docs/schemas/*.json) matches the event declarations."""
import json

import yaml
from jsonschema import Draft202012Validator

from shared.events import REGISTRY
from shared.events.contract import DOCS, stale_files
from shared.events.intake import MemberStatusChanged
from shared.messaging.envelope import new_event


def test_generated_contract_files_are_up_to_date():
    assert stale_files() == [], "run: python -m shared.events.contract"


def test_every_event_has_a_valid_json_schema_and_an_asyncapi_message():
    document = yaml.safe_load((DOCS / "asyncapi.yaml").read_text())
    assert document["asyncapi"].startswith("3.")
    names = {m["name"] for m in document["components"]["messages"].values()}
    assert names == set(REGISTRY)
    for type_name in REGISTRY:
        schema = json.loads((DOCS / "schemas" / f"{type_name}.json").read_text())
        Draft202012Validator.check_schema(schema)


def test_a_produced_event_validates_against_its_published_schema():
    evt = new_event(MemberStatusChanged, {"organization_id": "o1", "member_id": "m1", "site_id": "s1",
                                          "from_status": "active", "to_status": "paused"}, source="/test")
    schema = json.loads((DOCS / "schemas" / f"{evt.type}.json").read_text())
    Draft202012Validator(schema).validate(evt.data)
    bad = dict(evt.data, to_status="nonsense")
    assert list(Draft202012Validator(schema).iter_errors(bad))
