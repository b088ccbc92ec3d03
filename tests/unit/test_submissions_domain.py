"""Whether a report is accepted, and what the accepted report announces, on the seed plan."""

from __future__ import annotations

import datetime as dt
import unicodedata
import uuid
from pathlib import Path
from typing import Any

import pytest

from services.common.clock import FixedClock
from services.common.reference import Catalog
from services.submissions.domain import (
    SubmissionRejected,
    accepted_event,
    check,
    fingerprint,
    receipt_no,
)
from services.submissions.models import SubmissionCreate

pytestmark = pytest.mark.unit

SEED = Path(__file__).resolve().parents[2] / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"
PERIOD = "kh-nq35-ngoc-hoi.2027.6-thang"
DUE_AT = dt.datetime(2027, 6, 14, 17, 0, tzinfo=dt.UTC)  # 15/06/2027 00:00 giờ Việt Nam
OPEN = FixedClock(dt.datetime(2027, 6, 1, 3, 0, tzinfo=dt.UTC))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load([SEED])


def task(task_id: str = "ii-1-1-tuyen-truyen-giao-duc", **extra: Any) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "status": "completed",
        "results": "Tổ chức 4 buổi quán triệt Nghị quyết 35-NQ/TW.",
        "indicators": [{"code": "so-buoi-tuyen-truyen", "value": 4}],
        **extra,
    }


def request(**fields: Any) -> SubmissionCreate:
    body: dict[str, Any] = {
        "period_id": PERIOD,
        "unit_id": "xa-bo-y",
        "submitted_by": {"name": "Nguyễn Thị Hà"},
        "tasks": [task()],
    }
    body.update(fields)
    return SubmissionCreate.model_validate(body)


def rejection(catalog: Catalog, req: SubmissionCreate, at: dt.datetime) -> SubmissionRejected:
    with pytest.raises(SubmissionRejected) as caught:
        check(req, catalog, FixedClock(at).now())
    return caught.value


def is_vietnamese(message: str) -> bool:
    decomposed = unicodedata.normalize("NFD", message)
    return message == unicodedata.normalize("NFC", message) and any(
        unicodedata.combining(c) for c in decomposed
    )


def test_a_report_in_the_open_window_is_accepted(catalog: Catalog) -> None:
    plan, period = check(request(), catalog, OPEN.now())

    assert plan.id == "kh-nq35-ngoc-hoi"
    assert period.id == PERIOD
    assert period.due_at == DUE_AT


@pytest.mark.parametrize(
    ("fields", "at", "status", "code", "words"),
    [
        pytest.param(
            {"period_id": "kh-nq35-ngoc-hoi.2027.quy-1"},
            OPEN.at,
            422,
            "unknown_period",
            ["Không tìm thấy kỳ báo cáo", "kh-nq35-ngoc-hoi.2027.quy-1"],
            id="unknown-period-kind",
        ),
        pytest.param(
            {"period_id": "ke-hoach-khac.2027.6-thang"},
            OPEN.at,
            422,
            "unknown_period",
            ["Không tìm thấy kỳ báo cáo"],
            id="unknown-plan",
        ),
        pytest.param(
            {"period_id": "kh-nq35-ngoc-hoi.2018.6-thang"},
            dt.datetime(2018, 6, 1, tzinfo=dt.UTC),
            422,
            "unknown_period",
            ["Không tìm thấy kỳ báo cáo"],
            id="before-the-plan-took-effect",
        ),
        pytest.param(
            {"unit_id": "xa-khong-ton-tai"},
            OPEN.at,
            422,
            "unknown_unit",
            ["Đơn vị “xa-khong-ton-tai” không có trong kế hoạch."],
            id="unknown-unit",
        ),
        pytest.param(
            {"unit_id": "ubnd-huyen", "tasks": [task()]},
            OPEN.at,
            422,
            "unit_not_reporting",
            ["Ủy ban nhân dân huyện Ngọc Hồi không thuộc diện báo cáo"],
            id="unit-not-reporting",
        ),
        pytest.param(
            {},
            dt.datetime(2027, 5, 15, 16, 59, 59, tzinfo=dt.UTC),
            409,
            "period_not_open",
            ["Báo cáo 6 tháng năm 2027 chưa mở", "16/05/2027"],
            id="period-not-open-yet",
        ),
        pytest.param(
            {},
            dt.datetime(2027, 6, 29, 17, 0, tzinfo=dt.UTC),
            409,
            "period_closed",
            ["Báo cáo 6 tháng năm 2027 đã kết thúc nhận báo cáo", "30/06/2027"],
            id="period-closed",
        ),
        pytest.param(
            {"tasks": [task("ii-6-dau-tranh-xu-ly-thong-tin-sai-lech", indicators=[])]},
            OPEN.at,
            422,
            "task_not_assigned",
            ["Nhiệm vụ “ii-6-dau-tranh-xu-ly-thong-tin-sai-lech” không được giao"],
            id="task-not-assigned",
        ),
        pytest.param(
            {"tasks": [task("nhiem-vu-bia-dat", indicators=[])]},
            OPEN.at,
            422,
            "task_not_assigned",
            ["không được giao cho đơn vị này"],
            id="task-not-in-plan",
        ),
        pytest.param(
            {"tasks": [task(), task()]},
            OPEN.at,
            422,
            "duplicate_task",
            ["Nhiệm vụ “ii-1-1-tuyen-truyen-giao-duc” được báo cáo hai lần."],
            id="duplicate-task",
        ),
        pytest.param(
            {"tasks": [task(indicators=[{"code": "so-cay-xanh", "value": 1}])]},
            OPEN.at,
            422,
            "unknown_indicator",
            ["Chỉ tiêu “so-cay-xanh” không có trong kế hoạch."],
            id="unknown-indicator",
        ),
        pytest.param(
            {
                "tasks": [
                    task(
                        indicators=[
                            {"code": "so-buoi-tuyen-truyen", "value": 1},
                            {"code": "so-buoi-tuyen-truyen", "value": 2},
                        ]
                    )
                ]
            },
            OPEN.at,
            422,
            "duplicate_indicator",
            ["Một chỉ tiêu được nhập hai lần", "ii-1-1-tuyen-truyen-giao-duc"],
            id="duplicate-indicator",
        ),
    ],
)
def test_a_report_that_cannot_be_accepted_is_rejected_with_a_code_and_vietnamese_message(
    catalog: Catalog,
    fields: dict[str, Any],
    at: dt.datetime,
    status: int,
    code: str,
    words: list[str],
) -> None:
    rejected = rejection(catalog, request(**fields), at)

    assert (rejected.status, rejected.code) == (status, code)
    assert rejected.message == str(rejected)
    assert is_vietnamese(rejected.message), rejected.message
    for word in words:
        assert word in rejected.message


def test_the_window_opens_and_closes_exactly_at_its_bounds(catalog: Catalog) -> None:
    opens = dt.datetime(2027, 5, 15, 17, 0, tzinfo=dt.UTC)
    closes = dt.datetime(2027, 6, 29, 17, 0, tzinfo=dt.UTC)

    check(request(), catalog, opens)
    check(request(), catalog, closes - dt.timedelta(milliseconds=1))
    assert rejection(catalog, request(), closes).code == "period_closed"


def test_a_unit_may_report_on_several_of_its_own_tasks(catalog: Catalog) -> None:
    req = request(
        unit_id="phong-vhtt",
        tasks=[
            task(
                "ii-3-1-quan-ly-bao-chi-xuat-ban",
                indicators=[{"code": "so-cuoc-kiem-tra", "value": 2}],
            ),
            task("ii-6-dau-tranh-xu-ly-thong-tin-sai-lech", indicators=[]),  # phối hợp
        ],
    )

    _, period = check(req, catalog, OPEN.now())

    assert period.id == PERIOD


def event_at(catalog: Catalog, received_at: dt.datetime, **kwargs: Any) -> Any:
    req = request()
    plan, period = check(req, catalog, received_at)
    options: dict[str, Any] = {
        "submission_id": uuid.uuid4(),
        "receipt": "TN-2027-000007",
        "revision": 1,
        "supersedes": None,
    }
    options.update(kwargs)
    return accepted_event(req, plan, period, received_at=received_at, **options)


def test_a_report_received_just_before_the_due_instant_is_on_time(catalog: Catalog) -> None:
    event = event_at(catalog, DUE_AT - dt.timedelta(milliseconds=1))

    assert event.payload.on_time is True
    assert event.payload.due_at == DUE_AT


def test_a_report_received_at_or_after_the_due_instant_is_late(catalog: Catalog) -> None:
    assert event_at(catalog, DUE_AT).payload.on_time is False
    assert event_at(catalog, DUE_AT + dt.timedelta(seconds=1)).payload.on_time is False


def test_the_accepted_event_carries_the_report_and_its_identity(catalog: Catalog) -> None:
    submission_id = uuid.uuid4()
    received_at = OPEN.now()

    event = event_at(
        catalog, received_at, submission_id=submission_id, revision=3, supersedes="ban-truoc"
    )

    payload = event.payload
    assert event.event_type == "submission.received"
    assert event.producer == "submissions"
    assert event.correlation_id == submission_id
    assert event.occurred_at == received_at
    assert payload.submission_id == str(submission_id)
    assert (payload.revision, payload.supersedes) == (3, "ban-truoc")
    assert payload.receipt_no == "TN-2027-000007"
    assert (payload.plan_id, payload.period_id, payload.unit_id) == (
        "kh-nq35-ngoc-hoi",
        PERIOD,
        "xa-bo-y",
    )
    assert payload.received_at == received_at
    assert payload.submitted_by is not None
    assert payload.submitted_by.name == "Nguyễn Thị Hà"
    assert [t.task_id for t in payload.tasks] == ["ii-1-1-tuyen-truyen-giao-duc"]
    assert payload.tasks[0].results == "Tổ chức 4 buổi quán triệt Nghị quyết 35-NQ/TW."
    assert [(v.code, v.value, v.flag, v.text) for v in payload.tasks[0].indicators] == [
        ("so-buoi-tuyen-truyen", 4.0, None, None)
    ]


def test_a_first_report_supersedes_nothing(catalog: Catalog) -> None:
    payload = event_at(catalog, OPEN.now()).payload

    assert (payload.revision, payload.supersedes) == (1, None)


def test_receipt_numbers_carry_the_local_year_and_six_digits(catalog: Catalog) -> None:
    plan = catalog.plans["kh-nq35-ngoc-hoi"]
    assert receipt_no(OPEN.now(), plan, 42) == "TN-2027-000042"
    # 31 Dec 2026, 18:00 UTC is already 1 January 2027 in Ngọc Hồi.
    new_year = dt.datetime(2026, 12, 31, 18, 0, tzinfo=dt.UTC)
    assert receipt_no(new_year, plan, 1) == "TN-2027-000001"


# --- fingerprint: what an Idempotency-Key is bound to ----------------------------------------


def test_a_body_of_figures_keeps_the_fingerprint_it_had_before_flag_and_text() -> None:
    # Computed by the code of commit 192189e: a key claimed before the upgrade still matches.
    assert fingerprint(request()) == (
        "8b3d926bf38c61bf10af7699904f0b47d107bde57dfa3d7682408cf40d5dedf8"
    )


def test_the_templates_about_is_not_part_of_the_fingerprint() -> None:
    about = {"name": "Số buổi", "type": "count", "minimum": 0, "required": False}
    indicator = {"code": "so-buoi-tuyen-truyen", "value": 4, "about": about}

    assert fingerprint(request(tasks=[task(indicators=[indicator])])) == fingerprint(request())


def test_equal_bodies_have_one_fingerprint_whatever_their_spelling() -> None:
    spelled_differently = SubmissionCreate.model_validate_json(
        # keys in another order, the name decomposed (NFD), padded, the value written 4.0
        '{"tasks": [{"results": "Tổ chức 4 buổi quán triệt Nghị quyết 35-NQ/TW.", '
        '"indicators": [{"value": 4.0, "code": "so-buoi-tuyen-truyen"}], '
        '"status": "completed", "task_id": "ii-1-1-tuyen-truyen-giao-duc"}], '
        f'"submitted_by": {{"name": "  {unicodedata.normalize("NFD", "Nguyễn Thị Hà")} "}}, '
        f'"unit_id": "xa-bo-y", "period_id": "{PERIOD}"}}'
    )

    assert fingerprint(request()) == fingerprint(request())
    assert fingerprint(spelled_differently) == fingerprint(request())


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"period_id": "kh-nq35-ngoc-hoi.2027.hang-nam"}, id="period"),
        pytest.param({"unit_id": "xa-dak-ang"}, id="unit"),
        pytest.param({"submitted_by": {"name": "Trần Văn Nam"}}, id="submitter-name"),
        pytest.param(
            {"submitted_by": {"name": "Nguyễn Thị Hà", "email": "ha@ngochoi.example"}},
            id="submitter-email",
        ),
        pytest.param({"submitted_by": None}, id="no-submitter"),
        pytest.param({"tasks": [task(status="in_progress")]}, id="task-status"),
        pytest.param({"tasks": [task(results="Tổ chức 5 buổi.")]}, id="task-results"),
        pytest.param(
            {"tasks": [task(indicators=[{"code": "so-buoi-tuyen-truyen", "value": 5}])]},
            id="indicator-value",
        ),
        pytest.param({"tasks": [task(indicators=[])]}, id="no-indicators"),
        pytest.param(
            {"tasks": [task(indicators=[{"code": "so-buoi-tuyen-truyen", "flag": True}])]},
            id="indicator-answered-as-a-flag",
        ),
        pytest.param(
            {"tasks": [task(indicators=[{"code": "so-buoi-tuyen-truyen", "text": "4"}])]},
            id="indicator-answered-as-text",
        ),
        pytest.param({"tasks": [task(difficulties="Thiếu kinh phí.")]}, id="difficulties"),
        pytest.param({"tasks": [task(proposals="Bổ sung kinh phí.")]}, id="proposals"),
        pytest.param(
            {"tasks": [task(), task("ii-1-2-cap-nhat-van-ban-trang-ttdt", indicators=[])]},
            id="another-task",
        ),
    ],
)
def test_a_body_that_differs_in_any_field_has_another_fingerprint(fields: dict[str, Any]) -> None:
    assert fingerprint(request(**fields)) != fingerprint(request())


def test_the_order_of_the_tasks_is_part_of_the_fingerprint() -> None:
    one, two = task(), task("ii-1-2-cap-nhat-van-ban-trang-ttdt", indicators=[])

    assert fingerprint(request(tasks=[one, two])) != fingerprint(request(tasks=[two, one]))
