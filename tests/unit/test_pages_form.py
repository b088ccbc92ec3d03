"""The report form: typed values to the API's body, and every refusal back next to its field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from contracts.plan import Plan
from services.submissions.models import SubmissionCreate
from services.submissions.report_form import (
    FORM_LEVEL,
    Converted,
    field_id,
    field_labels,
    indicator_problems,
    sections,
    shown_answer,
    to_body,
    validation_problems,
    values_of,
)
from tests.support import plans

pytestmark = pytest.mark.unit

PERIOD = "kh-form.2027.6-thang"


def _plan() -> Plan:
    return plans.make_plan(
        format=2,
        plan_id="kh-form",
        consolidating_unit_id="phong-vhtt",
        units=[
            plans.unit("phong-vhtt", "Phòng Văn hóa và Thông tin", "specialised_office"),
            plans.unit("xa-a", "UBND xã A", "commune"),
        ],
        indicators=[
            {"code": "so-buoi", "name": "Số buổi tuyên truyền", "type": "count"},
            {"code": "ty-le", "name": "Tỷ lệ hộ tiếp cận", "type": "percentage"},
            {
                "code": "kinh-phi",
                "name": "Kinh phí",
                "type": "number",
                "unit_of_measure": "triệu đồng",
                "maximum": 500,
            },
            {"code": "co-ke-hoach", "name": "Đã ban hành kế hoạch", "type": "boolean"},
            {"code": "ghi-chu", "name": "Ghi chú", "type": "text", "max_length": 20},
        ],
        tasks=[
            {
                "id": "tuyen-truyen",
                "section": "II.1",
                "text": "Tuyên truyền, quán triệt",
                "assignments": [{"unit_id": "xa-a"}, {"unit_id": "phong-vhtt"}],
                "indicators": [
                    {"code": "so-buoi", "required": True},
                    {"code": "ty-le"},
                    {"code": "kinh-phi"},
                ],
            },
            {
                "id": "ke-hoach",
                "section": "II.2",
                "text": "Ban hành kế hoạch",
                "assignments": [{"unit_id": "xa-a", "role": "cooperating", "mode": "requested"}],
                "indicators": [{"code": "co-ke-hoach"}, {"code": "ghi-chu"}],
            },
            {
                "id": "chi-van-phong",
                "section": "III.1",
                "text": "Tổng hợp",
                "assignments": [{"unit_id": "phong-vhtt"}],
            },
        ],
    )


PLAN = _plan()
FULL = {
    "tuyen-truyen.status": "completed",
    "tuyen-truyen.results": "Tổ chức 4 buổi.",
    "tuyen-truyen.ind.so-buoi": "4",
    "tuyen-truyen.ind.ty-le": "87,5",
    "tuyen-truyen.ind.kinh-phi": "",
    "tuyen-truyen.difficulties": "",
    "tuyen-truyen.proposals": "",
    "ke-hoach.status": "in_progress",
    "ke-hoach.results": "Đang dự thảo.",
    "ke-hoach.ind.co-ke-hoach": "no",
    "ke-hoach.ind.ghi-chu": "Chờ góp ý",
    "submitter_name": "Nguyễn Thị Hà",
    "submitter_email": "",
}


def _convert(values: dict[str, str]) -> Converted:
    return to_body(PLAN, PERIOD, "xa-a", values)


def _problems(values: dict[str, str]) -> dict[str, str]:
    """What the page shows: conversion, the model's validation, then each indicator's check."""
    converted = _convert(values)
    found = dict(converted.problems)
    try:
        SubmissionCreate.model_validate(converted.body)
    except ValidationError as error:
        for name, message in validation_problems(error, converted).items():
            found.setdefault(name, message)
    for name, message in indicator_problems(converted).items():
        found.setdefault(name, message)
    return found


def test_the_form_shows_only_the_units_tasks_with_section_role_and_the_indicators_asked() -> None:
    found = sections(PLAN, "xa-a")

    assert [(s.task.section, s.task.id) for s in found] == [
        ("II.1", "tuyen-truyen"),
        ("II.2", "ke-hoach"),
    ]
    assert found[0].role_label == "Chủ trì (được giao)"
    assert found[1].role_label == "Phối hợp (được đề nghị)"
    assert [(i.indicator.code, i.required) for i in found[0].indicators] == [
        ("so-buoi", True),
        ("ty-le", False),
        ("kinh-phi", False),
    ]
    assert found[0].indicators[2].hint == "số; không lớn hơn 500; đơn vị tính: triệu đồng"
    assert found[0].indicators[1].hint == "tỷ lệ %, từ 0 đến 100"


def test_typed_values_become_the_apis_body_in_the_fields_each_kind_reads() -> None:
    converted = _convert(FULL)

    assert converted.problems == {}
    body = SubmissionCreate.model_validate(converted.body)
    assert body.submitted_by is not None and body.submitted_by.name == "Nguyễn Thị Hà"
    first, second = body.tasks
    assert (first.task_id, first.status, first.results) == (
        "tuyen-truyen",
        "completed",
        "Tổ chức 4 buổi.",
    )
    assert [(i.code, i.given()) for i in first.indicators] == [
        ("so-buoi", ["value"]),
        ("ty-le", ["value"]),
    ]
    assert [i.value for i in first.indicators] == [4, 87.5]  # a decimal comma is a decimal
    assert [(i.code, i.flag, i.text) for i in second.indicators] == [
        ("co-ke-hoach", False, None),
        ("ghi-chu", None, "Chờ góp ý"),
    ]


def test_a_task_left_blank_is_left_out_and_a_blank_form_is_a_problem_of_the_whole() -> None:
    only_first = {k: v for k, v in FULL.items() if not k.startswith("ke-hoach")}
    assert [t["task_id"] for t in _convert(only_first).body["tasks"]] == ["tuyen-truyen"]

    blank = _convert({"submitter_name": "Hà"})
    assert blank.body["tasks"] == []
    assert "chưa có nhiệm vụ nào" in blank.problems[FORM_LEVEL]


@pytest.mark.parametrize(
    ("field", "typed", "expected"),
    [
        ("tuyen-truyen.ind.so-buoi", "bốn", "Nhập một số (ví dụ 4)"),
        ("tuyen-truyen.ind.so-buoi", "2,5", "Nhập một số nguyên không âm (ví dụ 4); đã nhập 2,5."),
        ("tuyen-truyen.ind.so-buoi", "-3", "Nhập một số từ 0 trở lên."),
        ("tuyen-truyen.ind.so-buoi", "", "Chỉ tiêu bắt buộc: vui lòng nhập."),
        ("tuyen-truyen.ind.ty-le", "120", "Nhập tỷ lệ phần trăm từ 0 đến 100; đã nhập 120."),
        ("tuyen-truyen.ind.kinh-phi", "1.000", "không có dấu chấm phân cách hàng nghìn"),
        ("tuyen-truyen.ind.kinh-phi", "1000", "Nhập một số không lớn hơn 500; đã nhập 1000."),
        ("tuyen-truyen.ind.kinh-phi", "1 000", "Nhập một số (ví dụ 4 hoặc 2,5)"),
        ("ke-hoach.ind.ghi-chu", "x" * 21, "Dài tối đa 20 ký tự; đã nhập 21 ký tự."),
        ("ke-hoach.ind.co-ke-hoach", "maybe", "Chọn “Có” hoặc “Không”."),
        ("tuyen-truyen.results", "", "Vui lòng nhập kết quả thực hiện."),
        ("tuyen-truyen.status", "", "Vui lòng chọn tình trạng thực hiện."),
        ("tuyen-truyen.status", "done", "Vui lòng chọn một tình trạng trong danh sách."),
        ("ke-hoach.results", "a\x00b", "ký tự điều khiển"),
        ("submitter_email", "ha@", "Thư điện tử chưa đúng dạng"),
    ],
)
def test_each_problem_is_shown_at_its_own_field_in_vietnamese(
    field: str, typed: str, expected: str
) -> None:
    found = _problems({**FULL, field: typed})

    assert list(found) == [field], found
    assert expected in found[field]


def test_every_problem_is_shown_at_once() -> None:
    found = _problems(
        {
            **FULL,
            "tuyen-truyen.results": "",
            "tuyen-truyen.ind.so-buoi": "1,5",
            "tuyen-truyen.ind.ty-le": "101",
            "ke-hoach.status": "",
        }
    )

    assert set(found) == {
        "tuyen-truyen.results",
        "tuyen-truyen.ind.so-buoi",
        "tuyen-truyen.ind.ty-le",
        "ke-hoach.status",
    }


def test_a_model_error_inside_an_indicator_lands_on_that_indicator() -> None:
    converted = _convert(FULL)
    body: dict[str, Any] = converted.body
    body["tasks"][0]["indicators"][1]["value"] = "87"  # not a number for the model

    with pytest.raises(ValidationError) as refused:
        SubmissionCreate.model_validate(body)

    found = validation_problems(refused.value, converted)
    assert list(found) == ["tuyen-truyen.ind.ty-le"]
    assert "phải là một số" in found["tuyen-truyen.ind.ty-le"]


def test_field_ids_and_labels_are_what_the_error_summary_links_to() -> None:
    labels = field_labels(sections(PLAN, "xa-a"))

    assert field_id("tuyen-truyen.ind.so-buoi") == "f-tuyen-truyen--ind--so-buoi"
    assert labels["tuyen-truyen.ind.so-buoi"] == (
        "Nhiệm vụ II.1 (Tuyên truyền, quán triệt): chỉ tiêu “Số buổi tuyên truyền”"
    )
    assert labels["ke-hoach.results"] == "Nhiệm vụ II.2 (Ban hành kế hoạch): kết quả thực hiện"


def test_a_filed_report_comes_back_as_the_values_typed() -> None:
    body = SubmissionCreate.model_validate(_convert(FULL).body).model_dump(mode="json")
    values = values_of(body["tasks"], PLAN)

    typed = {k: v for k, v in FULL.items() if v and not k.startswith("submitter")}
    assert {k: v for k, v in values.items() if v} == typed


def test_filed_answers_read_as_people_write_them() -> None:
    indicator = PLAN.indicator
    assert shown_answer(indicator("ty-le"), {"value": 87.5}) == "87,5%"  # type: ignore[arg-type]
    assert shown_answer(indicator("kinh-phi"), {"value": 12}) == "12 triệu đồng"  # type: ignore[arg-type]
    assert shown_answer(indicator("co-ke-hoach"), {"value": 1, "flag": True}) == "Có"  # type: ignore[arg-type]
