"""The published contract for outside subscribers, generated from the event declarations:
``docs/asyncapi.yaml`` (AsyncAPI 3.0) and one JSON Schema per event type in ``docs/schemas/``.

    python -m shared.events.contract            write the files
    python -m shared.events.contract --check    exit 1 and name the stale files (a test does this too)

Marshmallow schemas become JSON Schema through apispec (already used by flask-smorest for OpenAPI).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from shared.events import REGISTRY, RESTRICTED_TOPICS
from shared.events.base import CONTENT_TYPE, SPECVERSION

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

CLOUDEVENTS_HEADERS = {
    "type": "object",
    "description": "CloudEvents 1.0 attributes in Kafka binary mode (record headers); the value is the data.",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time"],
    "properties": {
        "ce_specversion": {"type": "string", "const": SPECVERSION},
        "ce_id": {"type": "string", "description": "Unique per event: deduplicate by this."},
        "ce_source": {"type": "string", "description": "The producing service, e.g. /recoverynet/intake"},
        "ce_type": {"type": "string", "description": "Reverse-DNS type with version, e.g. org.recoverynet.intake.member.registered.v1"},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string", "description": "Always the record key (the event's key field, e.g. the member id)"},
        "content-type": {"type": "string", "const": CONTENT_TYPE},
        "traceparent": {"type": "string", "description": "W3C trace context"},
    },
}


def _components() -> dict[str, dict]:
    """JSON Schema of every event's data (and the nested schemas they use), keyed by component name."""
    spec = APISpec(title="events", version="1", openapi_version="3.1.0", plugins=[MarshmallowPlugin(
        schema_name_resolver=lambda schema: _schema_class(schema).__name__)])
    for type_name, declaration in sorted(REGISTRY.items()):
        spec.components.schema(_component_name(type_name), schema=declaration)
    return spec.to_dict()["components"]["schemas"]


def _schema_class(schema):
    return schema if isinstance(schema, type) else type(schema)


def _component_name(type_name: str) -> str:
    return REGISTRY[type_name].__name__ + ("" if type_name.endswith(".v1") else type_name.rsplit(".", 1)[1].upper())


def _refs(node) -> set[str]:
    found = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def _rewrite_refs(node, prefix: str):
    if isinstance(node, dict):
        return {k: (prefix + v.rsplit("/", 1)[1] if k == "$ref" and isinstance(v, str) else _rewrite_refs(v, prefix))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_refs(v, prefix) for v in node]
    return node


def json_schemas() -> dict[str, dict]:
    """``{type name: standalone JSON Schema of its data}`` (nested schemas inlined under $defs)."""
    components = _components()
    result = {}
    for type_name, declaration in sorted(REGISTRY.items()):
        name = _component_name(type_name)
        needed, todo = set(), [name]
        while todo:
            for ref in _refs(components[todo.pop()]) - needed:
                needed.add(ref)
                todo.append(ref)
        schema = {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": f"https://recoverynet.org/schemas/{type_name}.json",
            "title": type_name,
            "description": (declaration.__doc__ or "").strip(),
            "x-topic": declaration.topic,
            "x-key": declaration.key_field,
            **_rewrite_refs(components[name], "#/$defs/"),
        }
        if needed:
            schema["$defs"] = {ref: _rewrite_refs(components[ref], "#/$defs/") for ref in sorted(needed)}
        result[type_name] = schema
    return result


def asyncapi() -> dict:
    components = _components()
    by_topic: dict[str, list[str]] = {}
    for type_name, declaration in sorted(REGISTRY.items()):
        by_topic.setdefault(declaration.topic, []).append(type_name)
    channels, operations, messages = {}, {}, {}
    for topic, types in sorted(by_topic.items()):
        channel_id = topic.replace(".", "_")
        channel_messages = {}
        for type_name in types:
            declaration = REGISTRY[type_name]
            message_id = type_name.replace(".", "_")
            messages[message_id] = {
                "name": type_name,
                "title": declaration.__name__,
                "summary": (declaration.__doc__ or "").strip().splitlines()[0] if declaration.__doc__ else type_name,
                "contentType": CONTENT_TYPE,
                "headers": {"$ref": "#/components/schemas/CloudEventsHeaders"},
                "payload": {"$ref": f"#/components/schemas/{_component_name(type_name)}"},
                "bindings": {"kafka": {"key": {"type": "string", "description": f"the {declaration.key_field}"}}},
            }
            channel_messages[message_id] = {"$ref": f"#/components/messages/{message_id}"}
        restricted = topic in RESTRICTED_TOPICS
        channels[channel_id] = {
            "address": topic,
            "description": ("RESTRICTED: contact details; compacted; read by notifications only." if restricted
                            else f"Events of {topic.split('.')[1]}, keyed by aggregate id (ordered per key)."),
            "messages": channel_messages,
        }
        operations[f"receive_{channel_id}"] = {
            "action": "receive", "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{m}"} for m in channel_messages],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Recovery Network events",
            "version": "1.0.0",
            "description": ("Events published by the Recovery Network services (generated from shared/events/; "
                            "do not edit). CloudEvents 1.0 in Kafka binary mode. Delivery is at least once: "
                            "deduplicate by ce_id. See docs/subscribing.md."),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {"local": {"host": "127.0.0.1:29092", "protocol": "kafka",
                              "description": "the local runner's broker (./deploy/up)"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages,
                       "schemas": {"CloudEventsHeaders": CLOUDEVENTS_HEADERS, **components}},
    }


def rendered() -> dict[Path, str]:
    files = {DOCS / "asyncapi.yaml": "# Generated by `python -m shared.events.contract`; do not edit.\n"
             + yaml.safe_dump(asyncapi(), sort_keys=False, allow_unicode=True, width=100)}
    for type_name, schema in json_schemas().items():
        files[DOCS / "schemas" / f"{type_name}.json"] = json.dumps(schema, indent=2, sort_keys=False) + "\n"
    return files


def stale_files() -> list[str]:
    wanted = rendered()
    stale = [str(p.relative_to(ROOT)) for p, text in wanted.items() if not p.exists() or p.read_text() != text]
    extra = [str(p.relative_to(ROOT)) for p in (DOCS / "schemas").glob("*.json") if p not in wanted]
    return sorted(stale + extra)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.events.contract", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the files are up to date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            print("stale (run python -m shared.events.contract):\n  " + "\n  ".join(stale), file=sys.stderr)
            return 1
        return 0
    (DOCS / "schemas").mkdir(parents=True, exist_ok=True)
    wanted = rendered()
    for path in (DOCS / "schemas").glob("*.json"):
        if path not in wanted:
            path.unlink()
    for path, text in wanted.items():
        path.write_text(text)
    print(f"wrote {len(wanted)} files under {DOCS.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
