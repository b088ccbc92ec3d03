"""Typed indicators (plan format 2): what intake accepts and refuses, what the template offers,
and how consolidation combines each type by its rule (a percentage is never summed)."""

from __future__ import annotations

import datetime as dt
import unicodedata
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.events import IndicatorValue, ReportConsolidatedPayload, TaskReport
from contracts.plan import Plan
from services.common.periods import Period, find_period
from services.common.reference import Catalog
from services.consolidate.domain import SubmissionRow, consolidate
from services.submissions.domain import SubmissionRejected, accepted_event, check
from services.submissions.models import SubmissionCreate
from services.submissions.template import blank_report
from tests.support import plans

pytestmark = pytest.mark.unit

COMMUNES = ["xa-a", "xa-b", "xa-c", "xa-d", "xa-e", "xa-f"]


def _plan() -> Plan:
    units = [
        {"id": "ubnd-huyen", "name": "UBND huyện Thử", "kind": "district", "reports": False},
        {"id": "phong-vhtt", "name": "Phòng Văn hóa và Thông tin", "kind": "specialised_office"},
        {"id": "cong-an", "name": "Công an huyện", "kind": "police"},
        {"id": "hoi-nong-dan", "name": "Hội Nông dân huyện", "kind": "mass_organisation"},
        {"id": "thi-tran", "name": "UBND thị trấn Thử", "kind": "town"},
        *({"id": c, "name": f"UBND xã {c[-1].upper()}", "kind": "commune"} for c in COMMUNES),
    ]
    indicators = [
        {"code": "so-ho", "name": "Số hộ gia đình", "type": "count", "unit_of_measure": "hộ"},
        {
            "code": "ty-le-phu-song",
            "name": "Tỷ lệ hộ được phủ sóng",
            "type": "percentage",
            "unit_of_measure": "%",
            "aggregation": "weighted_mean",
            "weight": "so-ho",
        },
        {"code": "ty-le-hoan-thanh", "name": "Tỷ lệ hoàn thành", "type": "percentage"},
        {"code": "so-buoi", "name": "Số buổi tuyên truyền", "type": "count"},
        {
            "code": "kinh-phi",
            "name": "Kinh phí hỗ trợ",
            "type": "number",
            "unit_of_measure": "triệu đồng",
            "maximum": 500,
        },
        {
            "code": "thoi-gian-xu-ly",
            "name": "Thời gian xử lý ngắn nhất",
            "type": "number",
            "unit_of_measure": "giờ",
            "minimum": 0,
            "aggregation": "min",
        },
        {
            "code": "so-diem-lon-nhat",
            "name": "Số điểm lớn nhất",
            "type": "count",
            "minimum": 1,
            "aggregation": "max",
        },
        {"code": "co-ke-hoach", "name": "Đã ban hành kế hoạch", "type": "boolean"},
        {"code": "ghi-chu", "name": "Ghi chú phối hợp", "type": "text", "max_length": 50},
    ]
    tasks = [
        {
            "id": "tuyen-truyen",
            "section": "II.1",
            "text": "Tuyên truyền",
            "assignments": [{"unit_id": "phong-vhtt"}, {"unit_id": "cong-an"}],
            "indicators": [
                {"code": "so-buoi"},
                {"code": "thoi-gian-xu-ly"},
                {"code": "so-diem-lon-nhat"},
                {"code": "ty-le-hoan-thanh"},
            ],
        },
        {
            "id": "phu-song",
            "section": "II.3",
            "text": "Phủ sóng phát thanh, truyền hình",
            "assignments": [
                {"group_id": "xa-thi-tran"},
                {"unit_id": "hoi-nong-dan"},
                {"unit_id": "phong-vhtt", "role": "cooperating"},
            ],
            "indicators": [
                {
                    "code": "so-ho",
                    "required": True,
                    "roles": ["lead"],
                    "unit_kinds": ["commune", "town"],
                },
                {"code": "ty-le-phu-song", "required": True, "roles": ["lead"]},
                {"code": "co-ke-hoach"},
                {"code": "kinh-phi", "roles": ["cooperating"]},
                {"code": "ghi-chu", "required": True, "roles": ["cooperating"]},
            ],
        },
    ]
    schedule = {
        "code": "6-thang",
        "title": "Báo cáo 6 tháng",
        "due_before": "06-15",
        "data_from": "12-15",
        "data_from_previous_year": True,
        "data_to": "06-14",
    }
    return Plan.model_validate(
        {
            "format": 2,
            "id": "kh-chi-tieu",
            "title": "Kế hoạch thử chỉ tiêu",
            "issuer": "UBND huyện Thử",
            "issuer_place": "Thử",
            "effective_from": "2026-01-01",
            "consolidating_unit_id": "phong-vhtt",
            "upward_recipient": "UBND tỉnh",
            "units": units,
            "groups": [
                {"id": "xa-thi-tran", "name": "Các xã, thị trấn", "kinds": ["commune", "town"]}
            ],
            "indicators": indicators,
            "tasks": tasks,
            "schedule": [schedule],
        }
    )


PLAN = _plan()
CATALOG = Catalog({PLAN.id: PLAN})
PERIOD_ID = "kh-chi-tieu.2026.6-thang"
_found = find_period(PLAN, PERIOD_ID)
assert _found is not None
PERIOD: Period = _found
NOW = PERIOD.due_at - dt.timedelta(days=3)


# --- intake ---------------------------------------------------------------------------------


def body(unit_id: str, task_id: str, *indicators: dict[str, Any]) -> dict[str, Any]:
    return {
        "period_id": PERIOD_ID,
        "unit_id": unit_id,
        "tasks": [
            {
                "task_id": task_id,
                "status": "completed",
                "results": "Đã thực hiện.",
                "indicators": list(indicators),
            }
        ],
    }


LEAD_DEFAULTS = ({"code": "so-ho", "value": 1200}, {"code": "ty-le-phu-song", "value": 95})
"""What every commune must answer on phu-song (both required)."""


def commune(*indicators: dict[str, Any], unit_id: str = "xa-a") -> dict[str, Any]:
    given = {i["code"] for i in indicators}
    required = [i for i in LEAD_DEFAULTS if i["code"] not in given]
    return body(unit_id, "phu-song", *required, *indicators)


def office(*indicators: dict[str, Any]) -> dict[str, Any]:
    return body("phong-vhtt", "tuyen-truyen", *indicators)


def accepted(data: dict[str, Any]) -> list[IndicatorValue]:
    """The indicators of the accepted report's event, as consumers will read them."""
    request = SubmissionCreate.model_validate(data)
    plan, period = check(request, CATALOG, NOW)
    event = accepted_event(
        request,
        plan,
        period,
        submission_id=uuid.uuid4(),
        receipt="TN-2026-000001",
        revision=1,
        supersedes=None,
        received_at=NOW,
    )
    return list(event.payload.tasks[0].indicators)


def refused(data: dict[str, Any]) -> SubmissionRejected:
    with pytest.raises(SubmissionRejected) as caught:
        check(SubmissionCreate.model_validate(data), CATALOG, NOW)
    assert caught.value.status == 422
    return caught.value


def invalid(data: dict[str, Any]) -> dict[str, Any]:
    """The one error the request model reports (before any plan is looked at)."""
    with pytest.raises(ValidationError) as raised:
        SubmissionCreate.model_validate(data)
    errors = raised.value.errors()
    assert len(errors) == 1, errors
    return dict(errors[0])


def answer(values: list[IndicatorValue], code: str) -> tuple[float, bool | None, str | None]:
    found = next(v for v in values if v.code == code)
    return found.value, found.flag, found.text


@pytest.mark.parametrize("value", [4, 4.0, 0])
def test_a_count_is_a_whole_number_written_as_a_json_number(value: float) -> None:
    values = accepted(office({"code": "so-buoi", "value": value}))
    assert answer(values, "so-buoi") == (float(value), None, None)


def test_a_count_with_a_fraction_is_refused() -> None:
    rejected = refused(office({"code": "so-buoi", "value": 4.5}))
    assert rejected.code == "indicator_not_whole"
    assert rejected.message == (
        "Chỉ tiêu “Số buổi tuyên truyền” (so-buoi) ở nhiệm vụ II.1 là số đếm, phải là số "
        "nguyên; đã nhập 4.5."
    )


@pytest.mark.parametrize("value", ["5", True, None])
def test_a_figure_is_never_a_string_a_boolean_or_null(value: Any) -> None:
    error = invalid(office({"code": "so-buoi", "value": value}))
    assert error["type"] == "json_number"
    assert error["loc"] == ("tasks", 0, "indicators", 0, "value")


def test_a_negative_figure_is_refused_at_the_edge() -> None:
    error = invalid(office({"code": "thoi-gian-xu-ly", "value": -1}))
    assert error["loc"] == ("tasks", 0, "indicators", 0, "value")


@pytest.mark.parametrize("value", [0, 2.5, 500])
def test_a_number_within_its_bounds_is_accepted(value: float) -> None:
    values = accepted(body("phong-vhtt", "phu-song", {"code": "kinh-phi", "value": value}, GHI_CHU))
    assert answer(values, "kinh-phi") == (float(value), None, None)


@pytest.mark.parametrize("value", [0, 87.5, 100])
def test_a_percentage_from_0_to_100_is_accepted(value: float) -> None:
    assert answer(accepted(commune({"code": "ty-le-phu-song", "value": value})), "ty-le-phu-song")[
        0
    ] == float(value)


def test_a_percentage_over_100_is_refused_naming_the_task_and_the_indicator() -> None:
    rejected = refused(commune({"code": "ty-le-phu-song", "value": 250}))
    assert rejected.code == "indicator_out_of_bounds"
    assert rejected.message == (
        "Chỉ tiêu “Tỷ lệ hộ được phủ sóng” (ty-le-phu-song) ở nhiệm vụ II.3 phải từ 0 đến 100; "
        "đã nhập 250."
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            body(
                "phong-vhtt",
                "phu-song",
                {"code": "kinh-phi", "value": 500.5},
                {"code": "ghi-chu", "text": "x"},
            ),
            "Chỉ tiêu “Kinh phí hỗ trợ” (kinh-phi) ở nhiệm vụ II.3 phải không lớn hơn 500; "
            "đã nhập 500.5.",
            id="number-above-its-maximum",
        ),
        pytest.param(
            office({"code": "so-diem-lon-nhat", "value": 0}),
            "Chỉ tiêu “Số điểm lớn nhất” (so-diem-lon-nhat) ở nhiệm vụ II.1 phải từ 1 trở lên; "
            "đã nhập 0.",
            id="count-below-its-minimum",
        ),
        pytest.param(
            office({"code": "ty-le-hoan-thanh", "value": 100.01}),
            "Chỉ tiêu “Tỷ lệ hoàn thành” (ty-le-hoan-thanh) ở nhiệm vụ II.1 phải từ 0 đến 100; "
            "đã nhập 100.01.",
            id="percentage-just-above-100",
        ),
    ],
)
def test_other_values_out_of_bounds_are_refused(data: dict[str, Any], message: str) -> None:
    rejected = refused(data)
    assert (rejected.code, rejected.message) == ("indicator_out_of_bounds", message)


@pytest.mark.parametrize("flag", [True, False])
def test_a_yes_no_is_a_json_boolean_in_flag_and_a_1_or_0_in_value(flag: bool) -> None:
    values = accepted(commune({"code": "co-ke-hoach", "flag": flag}))
    assert answer(values, "co-ke-hoach") == (1.0 if flag else 0.0, flag, None)


@pytest.mark.parametrize("flag", ["true", 1, 0])
def test_a_yes_no_is_never_a_string_or_a_number(flag: Any) -> None:
    error = invalid(commune({"code": "co-ke-hoach", "flag": flag}))
    assert error["type"] == "json_boolean"
    assert error["loc"][-1] == "flag"


GHI_CHU = {"code": "ghi-chu", "text": "Phối hợp kiểm tra 3 trạm."}


def test_a_text_is_kept_in_nfc_with_its_line_breaks_and_value_0() -> None:
    decomposed = unicodedata.normalize("NFD", "Đã phối hợp\r\nvới xã Bờ Y")
    values = accepted(body("phong-vhtt", "phu-song", {"code": "ghi-chu", "text": decomposed}))
    assert answer(values, "ghi-chu") == (0.0, None, "Đã phối hợp\nvới xã Bờ Y")


def test_a_text_longer_than_its_indicator_allows_is_refused() -> None:
    rejected = refused(body("phong-vhtt", "phu-song", {"code": "ghi-chu", "text": "a" * 51}))
    assert rejected.code == "indicator_too_long"
    assert rejected.message == (
        "Chỉ tiêu “Ghi chú phối hợp” (ghi-chu) ở nhiệm vụ II.3 dài tối đa 50 ký tự; "
        "đã nhập 51 ký tự."
    )


@pytest.mark.parametrize(
    ("text", "kind"),
    [(5, "json_string"), ("a\x00b", "control_character"), ("a\x1bb", "control_character")],
)
def test_a_text_is_a_string_without_control_characters(text: Any, kind: str) -> None:
    error = invalid(body("phong-vhtt", "phu-song", {"code": "ghi-chu", "text": text}))
    assert error["type"] == kind
    assert error["loc"][-1] == "text"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        pytest.param(
            commune({"code": "co-ke-hoach", "value": 1}),
            ["(co-ke-hoach)", "true hoặc false", "“flag”", "đã nhập ở trường “value”"],
            id="yes-no-given-as-a-figure",
        ),
        pytest.param(
            office({"code": "so-buoi", "flag": True}),
            ["(so-buoi)", "số nguyên", "“value”", "đã nhập ở trường “flag”"],
            id="count-given-as-a-flag",
        ),
        pytest.param(
            commune({"code": "ty-le-phu-song", "text": "95"}),
            ["(ty-le-phu-song)", "phần trăm", "“value”", "đã nhập ở trường “text”"],
            id="percentage-given-as-text",
        ),
        pytest.param(
            body("phong-vhtt", "phu-song", {"code": "ghi-chu", "value": 3}),
            ["(ghi-chu)", "văn bản", "“text”"],
            id="text-given-as-a-figure",
        ),
        pytest.param(
            office({"code": "so-buoi", "value": 3, "flag": True}),
            ["(so-buoi)", "đã nhập ở trường “value”, “flag”"],
            id="two-answers",
        ),
        pytest.param(office({"code": "so-buoi"}), ["(so-buoi)", "“value”"], id="no-answer"),
    ],
)
def test_an_answer_in_the_wrong_field_for_the_type_is_refused(
    data: dict[str, Any], words: list[str]
) -> None:
    rejected = refused(data)
    assert rejected.code == "indicator_wrong_type"
    for word in words:
        assert word in rejected.message, rejected.message


# --- roles, kinds, required -----------------------------------------------------------------


def test_a_cooperating_unit_answers_what_the_task_asks_of_cooperating_units() -> None:
    values = accepted(
        body(
            "phong-vhtt",
            "phu-song",
            {"code": "kinh-phi", "value": 12.5},
            {"code": "co-ke-hoach", "flag": True},
            GHI_CHU,
        )
    )
    assert [v.code for v in values] == ["kinh-phi", "co-ke-hoach", "ghi-chu"]


def test_a_cooperating_unit_is_refused_an_indicator_for_the_lead_units() -> None:
    rejected = refused(
        body("phong-vhtt", "phu-song", GHI_CHU, {"code": "ty-le-phu-song", "value": 90})
    )
    assert rejected.code == "indicator_not_for_unit"
    assert rejected.message == (
        "Chỉ tiêu “Tỷ lệ hộ được phủ sóng” (ty-le-phu-song) ở nhiệm vụ II.3 chỉ dành cho đơn vị "
        "chủ trì; đơn vị này không nhập chỉ tiêu này."
    )


def test_a_lead_unit_is_refused_an_indicator_for_the_cooperating_units() -> None:
    rejected = refused(commune({"code": "kinh-phi", "value": 1}))
    assert rejected.code == "indicator_not_for_unit"
    assert "(kinh-phi) ở nhiệm vụ II.3 chỉ dành cho đơn vị phối hợp" in rejected.message


def test_a_unit_of_another_kind_is_refused_an_indicator_for_communes() -> None:
    rejected = refused(
        body(
            "hoi-nong-dan",
            "phu-song",
            {"code": "ty-le-phu-song", "value": 80},
            {"code": "so-ho", "value": 10},
        )
    )
    assert rejected.code == "indicator_not_for_unit"
    assert rejected.message == (
        "Chỉ tiêu “Số hộ gia đình” (so-ho) ở nhiệm vụ II.3 chỉ dành cho đơn vị chủ trì thuộc "
        "loại: UBND xã, UBND thị trấn; đơn vị này không nhập chỉ tiêu này."
    )


def test_a_required_indicator_of_another_kind_is_not_required_of_this_unit() -> None:
    values = accepted(body("hoi-nong-dan", "phu-song", {"code": "ty-le-phu-song", "value": 80}))
    assert [v.code for v in values] == ["ty-le-phu-song"]


@pytest.mark.parametrize(
    ("data", "code", "section"),
    [
        pytest.param(
            body("xa-a", "phu-song", {"code": "so-ho", "value": 1200}),
            "ty-le-phu-song",
            "II.3",
            id="lead-percentage",
        ),
        pytest.param(
            body("thi-tran", "phu-song", {"code": "ty-le-phu-song", "value": 80}),
            "so-ho",
            "II.3",
            id="town-households",
        ),
        pytest.param(
            body("phong-vhtt", "phu-song", {"code": "kinh-phi", "value": 1}),
            "ghi-chu",
            "II.3",
            id="cooperating-text",
        ),
        pytest.param(
            body("phong-vhtt", "phu-song", {"code": "ghi-chu", "text": "   "}),
            "ghi-chu",
            "II.3",
            id="blank-text-is-no-answer",
        ),
    ],
)
def test_a_required_indicator_left_out_is_refused(
    data: dict[str, Any], code: str, section: str
) -> None:
    rejected = refused(data)
    assert rejected.code == "indicator_required"
    assert f"({code}) ở nhiệm vụ {section} là chỉ tiêu bắt buộc" in rejected.message


def test_an_optional_indicator_may_be_left_out() -> None:
    assert [v.code for v in accepted(office())] == []


# --- the template ---------------------------------------------------------------------------


async def template(unit_id: str) -> dict[str, Any]:
    found = CATALOG.period(PERIOD_ID)
    assert found is not None
    return blank_report(*found, unit_id)


def indicators_of(filled: dict[str, Any], task_id: str) -> list[dict[str, Any]]:
    return next(t for t in filled["tasks"] if t["task_id"] == task_id)["indicators"]


async def test_the_template_lists_what_the_task_asks_of_this_unit_with_type_and_bounds() -> None:
    lead = indicators_of(await template("xa-a"), "phu-song")
    cooperating = indicators_of(await template("phong-vhtt"), "phu-song")
    other_kind = indicators_of(await template("hoi-nong-dan"), "phu-song")

    assert [i["code"] for i in lead] == ["so-ho", "ty-le-phu-song", "co-ke-hoach"]
    assert [i["code"] for i in cooperating] == ["co-ke-hoach", "kinh-phi", "ghi-chu"]
    assert [i["code"] for i in other_kind] == ["ty-le-phu-song", "co-ke-hoach"]
    assert lead[1] == {
        "code": "ty-le-phu-song",
        "value": 0,
        "about": {
            "name": "Tỷ lệ hộ được phủ sóng",
            "type": "percentage",
            "unit_of_measure": "%",
            "minimum": 0.0,
            "maximum": 100.0,
            "required": True,
        },
    }
    assert lead[2]["flag"] is False and lead[2]["about"]["required"] is False
    assert cooperating[1]["about"]["maximum"] == 500
    assert cooperating[2]["text"] == ""
    assert cooperating[2]["about"]["max_length"] == 50


async def test_the_template_starts_a_figure_at_its_lower_bound() -> None:
    office_items = indicators_of(await template("phong-vhtt"), "tuyen-truyen")
    assert {i["code"]: i["value"] for i in office_items} == {
        "so-buoi": 0,
        "thoi-gian-xu-ly": 0,
        "so-diem-lon-nhat": 1,
        "ty-le-hoan-thanh": 0,
    }


async def test_the_template_can_be_filed_as_it_is() -> None:
    filled = await template("xa-a")
    filled["tasks"][0]["results"] = "Đã thực hiện."
    filled["submitted_by"] = {"name": "Nguyễn Thị Hà", "email": None}
    request = SubmissionCreate.model_validate(filled)

    check(request, CATALOG, NOW)
    assert "about" not in request.model_dump()["tasks"][0]["indicators"][0]


# --- consolidation --------------------------------------------------------------------------

COVERAGE = {  # unit: (households, coverage %); the seven add up to 668.5 %
    "thi-tran": (1200, 95.0),
    "xa-a": (800, 98.5),
    "xa-b": (1500, 90.0),
    "xa-c": (400, 100.0),
    "xa-d": (950, 92.0),
    "xa-e": (600, 99.0),
    "xa-f": (1100, 94.0),
}


def reported(task_id: str, **answers: float | bool | str) -> TaskReport:
    values = []
    for code, given in answers.items():
        code = code.replace("_", "-")
        if isinstance(given, bool):
            values.append(IndicatorValue(code=code, value=int(given), flag=given))
        elif isinstance(given, str):
            values.append(IndicatorValue(code=code, value=0, text=given))
        else:
            values.append(IndicatorValue(code=code, value=given))
    return TaskReport(task_id=task_id, status="completed", results="x", indicators=values)


def row(unit_id: str, *tasks: TaskReport, revision: int = 1) -> SubmissionRow:
    return SubmissionRow(
        submission_id=f"{unit_id}-{revision}",
        receipt_no=f"TN-{unit_id}-{revision}",
        unit_id=unit_id,
        revision=revision,
        received_at=NOW,
        tasks=tasks,
    )


def coverage_rows() -> list[SubmissionRow]:
    return [
        row(unit, reported("phu-song", so_ho=households, ty_le_phu_song=percent))
        for unit, (households, percent) in COVERAGE.items()
    ]


def run(rows: list[SubmissionRow], plan: Plan = PLAN) -> ReportConsolidatedPayload:
    period = find_period(plan, f"{plan.id}.2026.6-thang")
    assert period is not None
    return consolidate(plan, period, rows, now=NOW, trigger="requested", version=1, report_id="r")


def total_of(report: ReportConsolidatedPayload, code: str) -> Any:
    return next(t for t in report.indicator_totals if t.code == code)


def test_a_percentage_over_seven_units_is_their_weighted_mean_never_a_sum() -> None:
    coverage = total_of(run(coverage_rows()), "ty-le-phu-song")

    weighted = sum(h * p for h, p in COVERAGE.values()) / sum(h for h, _ in COVERAGE.values())
    assert weighted == pytest.approx(618000 / 6550)  # 94.35 %
    assert (coverage.type, coverage.aggregation) == ("percentage", "weighted_mean")
    assert coverage.value == pytest.approx(weighted)
    assert coverage.total == coverage.value  # what a reader of the first payloads sees
    assert coverage.value != pytest.approx(668.5)
    assert 0 <= coverage.value <= 100
    assert (coverage.reporting_units, coverage.without_weight) == (7, 0)
    assert coverage.unit_of_measure == "%"


def test_every_units_figure_and_weight_travel_so_the_province_can_recompute() -> None:
    coverage = total_of(run(coverage_rows()), "ty-le-phu-song")

    assert [(v.unit_id, v.unit_kind, v.task_id, v.value, v.weight) for v in coverage.values] == [
        (unit, "town" if unit == "thi-tran" else "commune", "phu-song", percent, households)
        for unit, (households, percent) in COVERAGE.items()
    ]
    recomputed = sum((v.value or 0) * (v.weight or 0) for v in coverage.values) / sum(
        v.weight or 0 for v in coverage.values
    )
    assert recomputed == pytest.approx(coverage.value)


def test_the_weight_indicator_itself_is_summed() -> None:
    households = total_of(run(coverage_rows()), "so-ho")
    assert (households.type, households.aggregation, households.value, households.total) == (
        "count",
        "sum",
        6550,
        6550,
    )


def test_units_without_a_weight_are_left_out_of_the_weighted_mean_and_counted() -> None:
    rows = [
        *coverage_rows(),
        row("hoi-nong-dan", reported("phu-song", ty_le_phu_song=10.0)),  # asked of it, no so-ho
    ]
    coverage = total_of(run(rows), "ty-le-phu-song")

    assert coverage.value == pytest.approx(618000 / 6550)
    assert (coverage.reporting_units, coverage.without_weight) == (8, 1)
    assert coverage.values[0].unit_id == "hoi-nong-dan"  # plan order: listed before the town
    assert coverage.values[0].weight is None


def test_the_weight_may_come_from_another_task_of_the_same_report() -> None:
    rows = [
        row(
            "xa-a",
            reported("tuyen-truyen", so_ho=300),  # not asked there, but it is the unit's figure
            reported("phu-song", ty_le_phu_song=50.0),
        ),
        row("xa-b", reported("phu-song", so_ho=100, ty_le_phu_song=90.0)),
    ]
    coverage = total_of(run(rows), "ty-le-phu-song")
    assert coverage.value == pytest.approx((50 * 300 + 90 * 100) / 400)


def test_no_weight_at_all_gives_no_value_and_a_total_of_0() -> None:
    coverage = total_of(
        run([row("xa-a", reported("phu-song", ty_le_phu_song=50.0))]), "ty-le-phu-song"
    )
    assert (coverage.value, coverage.total, coverage.without_weight) == (None, 0, 1)


def test_a_plain_percentage_is_the_mean_of_the_units() -> None:
    rows = [
        row("phong-vhtt", reported("tuyen-truyen", ty_le_hoan_thanh=100.0)),
        row("cong-an", reported("tuyen-truyen", ty_le_hoan_thanh=70.0)),
    ]
    done = total_of(run(rows), "ty-le-hoan-thanh")
    assert (done.aggregation, done.value, done.total) == ("mean", 85.0, 85.0)


def test_min_max_count_yes_and_list() -> None:
    rows = [
        row(
            "phong-vhtt",
            reported("tuyen-truyen", thoi_gian_xu_ly=6.5, so_diem_lon_nhat=3),
            reported("phu-song", co_ke_hoach=True, ghi_chu="Kiểm tra 3 trạm."),
        ),
        row("cong-an", reported("tuyen-truyen", thoi_gian_xu_ly=2.0, so_diem_lon_nhat=7)),
        row("xa-a", reported("phu-song", co_ke_hoach=False)),
        row("xa-b", reported("phu-song", co_ke_hoach=True)),
    ]
    report = run(rows)

    fastest, largest = total_of(report, "thoi-gian-xu-ly"), total_of(report, "so-diem-lon-nhat")
    planned, notes = total_of(report, "co-ke-hoach"), total_of(report, "ghi-chu")
    assert (fastest.aggregation, fastest.value, fastest.unit_of_measure) == ("min", 2.0, "giờ")
    assert (largest.aggregation, largest.value) == ("max", 7.0)
    assert (planned.type, planned.aggregation, planned.value, planned.total) == (
        "boolean",
        "count_yes",
        2,
        2,
    )
    assert planned.reporting_units == 3
    assert [(v.unit_id, v.flag, v.value) for v in planned.values] == [
        ("phong-vhtt", True, 1.0),
        ("xa-a", False, 0.0),
        ("xa-b", True, 1.0),
    ]
    assert (notes.type, notes.aggregation, notes.value, notes.total) == ("text", "list", None, 0)
    assert [(v.unit_id, v.text, v.value) for v in notes.values] == [
        ("phong-vhtt", "Kiểm tra 3 trạm.", None)
    ]
    assert notes.unit_of_measure == ""  # the plan names none


def test_by_kind_applies_the_same_rule_per_kind_in_plan_order_with_labels() -> None:
    rows = [
        *coverage_rows(),
        row("phong-vhtt", reported("phu-song", co_ke_hoach=True)),
        row("cong-an", reported("tuyen-truyen", so_buoi=2)),
    ]
    report = run(rows)
    coverage = total_of(report, "ty-le-phu-song")
    planned = total_of(report, "co-ke-hoach")

    expected_communes = sum(COVERAGE[u][0] * COVERAGE[u][1] for u in COMMUNES) / sum(
        COVERAGE[u][0] for u in COMMUNES
    )
    assert [(k.kind, k.label, k.reporting_units) for k in coverage.by_kind] == [
        ("town", "UBND thị trấn", 1),
        ("commune", "UBND xã", 6),
    ]
    assert coverage.by_kind[0].value == 95.0
    assert coverage.by_kind[1].value == pytest.approx(expected_communes)
    assert [(k.kind, k.label, k.value) for k in planned.by_kind] == [
        ("specialised_office", "Phòng chuyên môn", 1.0)
    ]


def test_indicator_rows_follow_the_plan_order() -> None:
    rows = [
        row("phong-vhtt", reported("tuyen-truyen", ty_le_hoan_thanh=50.0, so_buoi=1)),
        row("xa-a", reported("phu-song", co_ke_hoach=True, ty_le_phu_song=9.0, so_ho=1)),
    ]
    assert [t.code for t in run(rows).indicator_totals] == [
        "so-ho",
        "ty-le-phu-song",
        "ty-le-hoan-thanh",
        "so-buoi",
        "co-ke-hoach",
    ]


def test_a_format_1_plan_still_sums_percent_like_figures_as_before() -> None:
    """Format 1 had no types: every indicator was a summed number, and it stays one."""
    old = plans.make_plan(
        plan_id="kh-cu",
        consolidating_unit_id="xa-a",
        units=[plans.unit(u, u, "commune") for u in COMMUNES],
        indicators=[plans.indicator("ty-le", "Tỷ lệ", "%")],
        tasks=[plans.task("nv", "II.1", "Nhiệm vụ", COMMUNES, indicator_codes=["ty-le"])],
    )
    rows = [row(u, reported("nv", ty_le=COVERAGE[u][1])) for u in COMMUNES]
    summed = total_of(run(rows, old), "ty-le")

    assert (summed.type, summed.aggregation) == ("number", "sum")
    assert summed.total == summed.value == sum(COVERAGE[u][1] for u in COMMUNES)
    assert summed.reporting_units == 6
