"""Write the JSON Schema of every event and of the plan file, and the AsyncAPI document.

Run ``python -m contracts.generate`` (``make schemas``) after changing a contract; a test fails
while the committed files differ from what this would write.

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
from contracts.topics import ALL_TOPICS

HERE = Path(__file__).resolve().parent
SCHEMAS = HERE / "schemas"
ASYNCAPI = HERE / "asyncapi.json"


def schema_files() -> dict[Path, str]:
    """Every generated file and its exact content."""
    files: dict[Path, str] = {}
    for topic in ALL_TOPICS:
        schema = topic.event.model_json_schema(mode="serialization")
        schema["$id"] = f"urn:baocao:event:{topic.name}"
        files[SCHEMAS / f"{topic.name}.json"] = _dump(schema)
    plan = Plan.model_json_schema(mode="validation")
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
            "contentType": "application/json",
            "payload": {"$ref": f"schemas/{topic.name}.json"},
            "bindings": {
                "kafka": {"key": {"type": "string", "description": f"payload.{topic.key_field}"}}
            },
        }
        channels[topic.name] = {
            "address": topic.name,
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
            "system. Topic names may carry a deployment prefix (BAOCAO_NAMESPACE).",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


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
