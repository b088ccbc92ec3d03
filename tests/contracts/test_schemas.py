"""Contracts: generated schemas are current, payloads once published keep parsing, and plan
files (format 1 or 2) satisfy the plan schemas."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from contracts.generate import DETAIL_V2, schema_files
from contracts.plan.loading import load
from contracts.plan.v1 import is_v1, upgrade
from contracts.report_v2 import ReportConsolidatedV2, ReportDetail
from contracts.topics import ALL_TOPICS, REPORT_CONSOLIDATED, REPORT_CONSOLIDATED_V2

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).with_name("payloads")
SCHEMAS = ROOT / "contracts" / "schemas"
PLAN_FILES = sorted(
    [
        *(ROOT / "data" / "plans").glob("*.yaml"),
        *(ROOT / "tests" / "fixtures" / "plans").glob("*.yaml"),
    ]
)
# plan.v1.json is frozen (the format 1 models are gone): this pin fails if it is rewritten.
PLAN_V1_SHA256 = "3de0dc1d2e87965a9064bd097f12285bbc60149b2667bed2fa2e43d7ac1460e7"


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


def test_every_v2_detail_file_kept_parses_and_is_the_one_its_event_names() -> None:
    details = sorted(FIXTURES.glob(f"{DETAIL_V2}*.json"))
    assert details, f"keep at least one published detail file in {FIXTURES}"
    schema = _schema(f"{DETAIL_V2}.json")
    assert schema["$id"] == f"urn:baocao:file:{DETAIL_V2}"
    named = {
        e.payload.detail.sha256: e.payload.detail
        for e in (
            ReportConsolidatedV2.model_validate_json(f.read_text(encoding="utf-8"))
            for f in FIXTURES.glob(f"{REPORT_CONSOLIDATED_V2.name}*.json")
        )
    }
    for path in details:
        data = path.read_bytes()
        jsonschema.validate(json.loads(data), schema)
        detail = ReportDetail.model_validate_json(data)
        ref = named[hashlib.sha256(data).hexdigest()]
        assert ref.size == len(data) and ref.media_type == "application/json"
        assert ref.filename == f"chi-tiet-{detail.period_id}-v1.json"


def test_v2_moves_the_per_unit_lists_out_of_the_event_and_keeps_v1_as_it_was() -> None:
    v1 = _schema(f"{REPORT_CONSOLIDATED.name}.json")["$defs"]["ReportConsolidatedPayload"]
    v2 = _schema(f"{REPORT_CONSOLIDATED_V2.name}.json")["$defs"]["ReportConsolidatedV2Payload"]
    assert {"units", "tasks", "indicator_totals"} <= set(v1["properties"])
    assert "units" not in v2["properties"] and "detail" in v2["required"]
    summary = _schema(f"{REPORT_CONSOLIDATED_V2.name}.json")["$defs"]["IndicatorSummary"]
    assert "values" not in summary["properties"] and "by_kind" in summary["properties"]


def test_unknown_fields_are_ignored_and_wrong_types_refused() -> None:
    topic = ALL_TOPICS[0]
    raw = json.loads(sorted(FIXTURES.glob(f"{topic.name}*.json"))[0].read_text())
    raw["added_by_a_newer_producer"] = {"x": 1}
    raw["payload"]["also_new"] = True
    topic.event.model_validate(raw)
    raw["event_type"] = "deadline.overdue"
    with pytest.raises(ValueError, match="event_type"):
        topic.event.model_validate(raw)


# --- plan files ---------------------------------------------------------------------------


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return schema


def _as_json(document: Any) -> Any:
    """What the document is as JSON: YAML's dates become ISO strings, as a JSON plan has them."""
    return json.loads(json.dumps(document, default=str))


def _validate_plan(raw: dict[str, Any]) -> None:
    """A format 2 document satisfies plan.v2.json; a format 1 document plan.v1.json, and its
    conversion plan.v2.json."""
    if is_v1(raw):
        jsonschema.validate(_as_json(raw), _schema("plan.v1.json"))
        raw = upgrade(raw)
    jsonschema.validate(_as_json(raw), _schema("plan.v2.json"))


def test_plan_v2_schema_is_generated_from_the_models() -> None:
    generated = {p.name for p in schema_files()}
    assert "plan.v2.json" in generated
    assert "plan.v1.json" not in generated
    schema = _schema("plan.v2.json")
    assert schema["$id"] == "urn:baocao:plan:v2"
    jsonschema.Draft202012Validator.check_schema(schema)
    kinds = set(schema["$defs"]["UnitKind"]["enum"])
    assert {"province", "ward", "commune", "special_zone", "department"} <= kinds


def test_plan_v1_schema_is_frozen() -> None:
    raw = (SCHEMAS / "plan.v1.json").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == PLAN_V1_SHA256
    assert json.loads(raw)["$id"] == "urn:baocao:plan:v1"


@pytest.mark.parametrize("path", PLAN_FILES, ids=lambda p: p.name)
def test_plan_files_satisfy_the_schema_of_their_format(path: Path) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    _validate_plan(raw)
    load(path)  # and the models agree


# A format 1 document as files were written before format 2 (kept here: the files in the
# repository move to format 2, and format 1 must keep loading).
V1_PLAN: dict[str, Any] = {
    "id": "kh-dinh-dang-1",
    "title": "Kế hoạch viết theo định dạng 1",
    "issuer": "Ủy ban nhân dân huyện Thử",
    "issuer_place": "Thử",
    "effective_from": "2020-01-01",
    "consolidating_unit_id": "phong-vhtt",
    "upward_recipient": "Ủy ban nhân dân tỉnh Thử",
    "units": [
        {
            "id": "ubnd-huyen",
            "name": "UBND huyện Thử",
            "kind": "peoples_committee",
            "reports": False,
        },
        {
            "id": "phong-vhtt",
            "name": "Phòng Văn hóa và Thông tin",
            "kind": "specialised_office",
            "parent_id": "ubnd-huyen",
            "contacts": [{"name": "Lê Văn A", "email": "vhtt@thu.example"}],
        },
    ],
    "indicators": [{"code": "so-buoi", "name": "Số buổi", "unit_of_measure": "buổi"}],
    "tasks": [
        {
            "id": "tuyen-truyen",
            "section": "II.1",
            "title": "Tuyên truyền",
            "text": "Tổ chức tuyên truyền.",
            "assignments": [{"unit_id": "phong-vhtt"}],
            "indicator_codes": ["so-buoi"],
        }
    ],
    "schedule": [
        {
            "code": "6-thang",
            "title": "Báo cáo 6 tháng",
            "due_before": "06-15",
            "data_from": "12-15",
            "data_from_previous_year": True,
            "data_to": "06-14",
        }
    ],
}


def test_a_format_1_document_satisfies_both_schemas_through_the_upgrade(tmp_path: Path) -> None:
    raw = copy.deepcopy(V1_PLAN)
    _validate_plan(raw)
    assert raw == V1_PLAN, "upgrade leaves its input untouched"
    path = tmp_path / "v1.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    plan = load(path)
    assert plan.format == 2
    assert [u.kind for u in plan.units] == ["district", "specialised_office"]
    assert plan.tasks[0].indicator_codes == ["so-buoi"]
    assert plan.indicators[0].type == "number"


def test_the_plan_schema_refuses_what_the_models_refuse() -> None:
    raw = upgrade(copy.deepcopy(V1_PLAN))
    raw["units"][0]["ghi_chu"] = "trường lạ"
    with pytest.raises(jsonschema.ValidationError, match="ghi_chu"):
        jsonschema.validate(_as_json(raw), _schema("plan.v2.json"))
