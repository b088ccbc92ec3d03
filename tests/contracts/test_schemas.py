"""Contracts: generated schemas are current, and payloads once published keep parsing."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from contracts.generate import schema_files
from contracts.topics import ALL_TOPICS

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).with_name("payloads")


def test_generated_files_are_up_to_date() -> None:
    stale = [
        str(path)
        for path, content in schema_files().items()
        if not path.exists() or path.read_text(encoding="utf-8") != content
    ]
    assert not stale, f"run `make schemas` and commit: {stale}"


@pytest.mark.parametrize("topic", ALL_TOPICS, ids=lambda t: t.name)
def test_every_topic_has_an_old_payload_that_still_parses(topic) -> None:  # type: ignore[no-untyped-def]
    fixtures = sorted(FIXTURES.glob(f"{topic.name}*.json"))
    assert fixtures, f"keep at least one published payload of {topic.name} in {FIXTURES}"
    schema = json.loads((Path("contracts/schemas") / f"{topic.name}.json").read_text())
    for fixture in fixtures:
        raw = json.loads(fixture.read_text(encoding="utf-8"))
        event = topic.event.model_validate(raw)
        assert event.event_type == raw["event_type"]
        # What we publish today for that event still satisfies the published schema.
        jsonschema.validate(json.loads(event.model_dump_json()), schema)


def test_unknown_fields_are_ignored_and_wrong_types_refused() -> None:
    topic = ALL_TOPICS[0]
    raw = json.loads(sorted(FIXTURES.glob(f"{topic.name}*.json"))[0].read_text())
    raw["added_by_a_newer_producer"] = {"x": 1}
    raw["payload"]["also_new"] = True
    topic.event.model_validate(raw)
    raw["event_type"] = "deadline.overdue"
    with pytest.raises(ValueError, match="event_type"):
        topic.event.model_validate(raw)
