"""Write the JSON Schema of every event and of the plan file, and the AsyncAPI document.

Run ``python -m contracts.generate`` (``make schemas``) after changing a contract; a test fails
while the committed files differ from what this would write.

The file a ``ReportConsolidated`` v2 names (its per-unit detail) has its own schema,
``baocao.report-consolidated-detail.v2.json``, listed in the AsyncAPI document's components.

Only the current plan format is generated (``plan.v2.json``). ``plan.v1.json`` is a frozen copy
of the last schema format 1's models produced: those models are gone (format 1 files are
converted on load by ``contracts.plan.v1``), and the file stays as the description of files
written in that format. Nothing regenerates it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from contracts.plan import FORMAT, Plan
from contracts.report_v2 import ReportDetail
from contracts.topics import ALL_TOPICS

HERE = Path(__file__).resolve().parent
SCHEMAS = HERE / "schemas"
ASYNCAPI = HERE / "asyncapi.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
DETAIL_V2 = "baocao.report-consolidated-detail.v2"
"""The schema of the JSON file a ReportConsolidated v2 names in ``payload.detail``."""
ENVELOPE_FIELDS = (
    "event_id",
    "event_type",
    "schema_version",
    "occurred_at",
    "producer",
    "correlation_id",
    "payload",
)
"""Always present in a published event (the models default some: a producer fills them)."""
HEADERS = {
    "type": "object",
    "description": "Kafka record headers, UTF-8 strings; the value alone is authoritative.",
    "properties": {
        "event_id": {"type": "string", "description": "the envelope's event_id (a UUID)"},
        "event_type": {"type": "string", "description": "the envelope's event_type"},
        "content-type": {"type": "string", "const": "application/json"},
    },
    "required": ["event_id", "event_type", "content-type"],
}
PREFIX_RULE = (
    "A deployment may set a namespace (BAOCAO_NAMESPACE, lower-case letters, digits and '-'). "
    "Topic names are then '<namespace>.' followed by the name given here, e.g. "
    "'tinh-kt.baocao.report-consolidated.v1'; without a namespace they are exactly as given. "
    "(Databases join theirs with '_', which concerns only baocao's own services.)"
)
DELIVERY_RULE = (
    "Delivery is at least once: an event may arrive more than once, always with the same "
    "event_id; deduplicate by event_id. Events of one key (see each message's key) keep their "
    "order on one partition; nothing is ordered across keys."
)


def schema_files() -> dict[Path, str]:
    """Every generated file and its exact content."""
    files: dict[Path, str] = {}
    for topic in ALL_TOPICS:
        schema = topic.event.model_json_schema(mode="serialization")
        schema["$schema"] = DIALECT
        schema["$id"] = f"urn:baocao:event:{topic.name}"
        schema["required"] = sorted(set(schema.get("required", [])) | set(ENVELOPE_FIELDS))
        files[SCHEMAS / f"{topic.name}.json"] = _dump(schema)
    detail = ReportDetail.model_json_schema(mode="serialization")
    detail["$schema"] = DIALECT
    detail["$id"] = f"urn:baocao:file:{DETAIL_V2}"
    files[SCHEMAS / f"{DETAIL_V2}.json"] = _dump(detail)
    plan = Plan.model_json_schema(mode="validation")
    plan["$schema"] = DIALECT
    plan["$id"] = f"urn:baocao:plan:v{FORMAT}"
    files[SCHEMAS / f"plan.v{FORMAT}.json"] = _dump(plan)
    files[ASYNCAPI] = _dump(asyncapi())
    return files


def asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in ALL_TOPICS:
        name = topic.event.__name__
        messages[name] = {
            "name": name,
            "title": name,
            "summary": (topic.event.__doc__ or "").strip(),
            "description": _message_description(topic.event.__name__),
            "contentType": "application/json",
            # AsyncAPI calls a message's body its payload; here the body is the whole
            # envelope, whose own "payload" field carries the event's data.
            "payload": {"$ref": f"schemas/{topic.name}.json"},
            "headers": HEADERS,
            "bindings": {
                "kafka": {
                    "key": {
                        "type": "string",
                        "description": f"the envelope's payload.{topic.key_field}, UTF-8",
                    },
                    "bindingVersion": "0.5.0",
                }
            },
        }
        channels[topic.name] = {
            "address": topic.name,
            "description": PREFIX_RULE,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        operations[f"publish{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{topic.name}"},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "baocao events",
            "version": "1.0.0",
            "description": "Events exchanged by the baocao services and read by the province "
            "system. Each message is an envelope (event_id, event_type, schema_version, "
            "occurred_at, producer, correlation_id, causation_id) around the event's payload. "
            + PREFIX_RULE
            + " "
            + DELIVERY_RULE
            + " Within a version fields are only added: read tolerantly, ignore what you do "
            "not know. A removed or retyped field is a new version on a new topic (.v2).",
        },
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "the local stack (make up), plaintext",
            },
            "compose": {
                "host": "localhost:19092",
                "protocol": "kafka",
                "description": "docker compose, plaintext, published on the host only",
            },
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            # Not a message: the file a ReportConsolidatedV2 names (payload.detail.url).
            "schemas": {"ReportDetailV2": {"$ref": f"schemas/{DETAIL_V2}.json"}},
        },
    }


def _message_description(name: str) -> str:
    versions = (
        "One version of a period's district report. A period gets a new version whenever "
        "its content changes (closing, a request, a late or corrected report); each "
        "version is its own event with version (1, 2, ...) and supersedes (the report_id "
        "it replaces). Keep, per period_id, the highest version; an older version arriving "
        "late changes nothing. content_hash equal between versions means equal content. "
        "payload.document, when set, points to the rendered files (URL, SHA-256, size). "
    )
    if name == "ReportConsolidated":
        return versions + (
            "Every unit's status, answers and task entries are in the event, so it grows with "
            "the units: a version whose v1 event would not fit in a Kafka record (1 MiB less "
            "16 KiB; about 700 units) is published on baocao.report-consolidated.v2 only. "
            "New readers: use v2."
        )
    if name == "ReportConsolidatedV2":
        return versions + (
            "The event keeps what does not grow with the units (counts, each indicator's "
            "aggregate and its breakdown by kind, each task's status counts); payload.detail "
            "names a JSON file (URL, SHA-256, media type, size) with every unit's status, "
            "answers and task entries, whose content follows components.schemas.ReportDetailV2 "
            f"(schemas/{DETAIL_V2}.json). Download it like the documents (the same token) and "
            "check its SHA-256. Published for every version; the v1 event of the same version "
            "(same report_id, version and content_hash) is published beside it when it fits."
        )
    return "See the summary; the payload's fields are described in its JSON Schema."


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def main() -> int:
    SCHEMAS.mkdir(exist_ok=True)
    for path, content in schema_files().items():
        path.write_text(content, encoding="utf-8")
        print(path.relative_to(HERE.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
