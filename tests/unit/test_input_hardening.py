"""Issue 7: control characters, line breaks in one-line fields and numbers sent as strings are
refused at the edge, with a Vietnamese message naming the field; text is stored in NFC; and no
data value, even from an old stored event, can make a line of its own in an e-mail."""

from __future__ import annotations

import copy
import datetime as dt
import email
import json
import unicodedata
import uuid
from email import policy
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from pydantic import ValidationError

from contracts.events import SubmissionReceived
from contracts.plan import Plan
from services.common.errors import install_error_handlers
from services.notify.domain import messages_for, one_line
from services.notify.mailer import build_email
from services.submissions.models import SubmissionCreate

pytestmark = pytest.mark.unit

SEED = Path(__file__).resolve().parents[2] / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"
TASK = "ii-1-1-tuyen-truyen-giao-duc"
INJECTED_NAME = "Nguyễn Thị Hà\r\nBcc: ke-xau@example.com"


def body(
    *, task: dict[str, Any] | None = None, submitter: Any = None, **top: Any
) -> dict[str, Any]:
    report = {
        "task_id": TASK,
        "status": "completed",
        "results": "Tổ chức 4 buổi quán triệt.",
        "indicators": [{"code": "so-buoi-tuyen-truyen", "value": 4}],
        "difficulties": "",
        "proposals": "",
        **(task or {}),
    }
    data: dict[str, Any] = {
        "period_id": "kh-nq35-ngoc-hoi.2027.6-thang",
        "unit_id": "xa-bo-y",
        "tasks": [report],
        **top,
    }
    if submitter is not None:
        data["submitted_by"] = submitter
    return data


def refusal(data: dict[str, Any]) -> dict[str, Any]:
    """The single error pydantic reports for ``data`` (as FastAPI would get it)."""
    with pytest.raises(ValidationError) as raised:
        SubmissionCreate.model_validate(data)
    errors = raised.value.errors()
    assert len(errors) == 1, errors
    return dict(errors[0])


# --- control characters ---------------------------------------------------------------------


@pytest.mark.parametrize("field", ["results", "difficulties", "proposals"])
@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x07", "\x7f", "\x85", "\r"])
def test_long_text_refuses_control_characters(field: str, char: str) -> None:
    error = refusal(body(task={field: f"Đã làm{char}xong"}))
    assert error["type"] == "control_character"
    assert error["loc"] == ("tasks", 0, field)
    label = {
        "results": "Kết quả thực hiện",
        "difficulties": "Khó khăn, vướng mắc",
        "proposals": "Đề xuất, kiến nghị",
    }[field]
    assert label in error["msg"]
    assert f"U+{ord(char):04X}" in error["msg"]


def test_a_lone_surrogate_is_refused_by_pydantic_itself() -> None:
    assert refusal(body(task={"results": "a\ud800b"}))["type"] == "string_unicode"


def test_long_text_keeps_tabs_and_line_breaks_and_makes_crlf_lf() -> None:
    text = "Dòng 1\r\nDòng 2\n\tCột\u2028Dòng 3\u2029Dòng 4"
    report = SubmissionCreate.model_validate(body(task={"results": text})).tasks[0]
    assert report.results == "Dòng 1\nDòng 2\n\tCột\nDòng 3\nDòng 4"


@pytest.mark.parametrize(
    ("place", "label"),
    [
        ({"submitter": {"name": INJECTED_NAME}}, "Họ và tên người gửi"),
        ({"submitter": {"name": "Hà\nBcc: x@example.com"}}, "Họ và tên người gửi"),
        ({"submitter": {"name": "Hà\u2028Bcc"}}, "Họ và tên người gửi"),
        ({"submitter": {"name": "Hà\u2029Bcc"}}, "Họ và tên người gửi"),
        ({"submitter": {"name": "Hà\x85Bcc"}}, "Họ và tên người gửi"),
        ({"submitter": {"name": "Hà\tThị"}}, "Họ và tên người gửi"),
        ({"submitter": {"name": "Hà\x00"}}, "Họ và tên người gửi"),
        ({"submitter": {"name": "Hà", "email": "ha\x00@example.com"}}, "Thư điện tử người gửi"),
        ({"unit_id": "xa-bo-y\nX: y"}, "Mã đơn vị"),
        ({"period_id": "kh\x00"}, "Mã kỳ báo cáo"),
        ({"task": {"task_id": "ii-1\r\n"}}, None),  # trailing line break is stripped: fine
        ({"task": {"task_id": "ii\r\n1"}}, "Mã nhiệm vụ"),
    ],
)
def test_single_line_fields_refuse_line_breaks_and_control_characters(
    place: dict[str, Any], label: str | None
) -> None:
    submitter = place.pop("submitter", None)
    data = body(submitter=submitter, **place)
    if label is None:
        SubmissionCreate.model_validate(data)
        return
    error = refusal(data)
    assert error["type"] == "single_line"
    assert label in error["msg"]


def test_text_is_stored_in_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Hà")
    results = unicodedata.normalize("NFD", "Đã tổ chức hội nghị")
    request = SubmissionCreate.model_validate(
        body(submitter={"name": decomposed}, task={"results": results})
    )
    assert request.submitted_by is not None
    assert request.submitted_by.name == "Nguyễn Thị Hà"
    assert request.tasks[0].results == "Đã tổ chức hội nghị"


# --- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["5", "5.0", True, False, None, [5], {"v": 5}])
def test_indicator_value_must_be_a_json_number(value: Any) -> None:
    error = refusal(body(task={"indicators": [{"code": "so-buoi-tuyen-truyen", "value": value}]}))
    assert error["loc"] == ("tasks", 0, "indicators", 0, "value")
    assert error["type"] == "json_number"
    assert "Giá trị chỉ tiêu" in error["msg"]


@pytest.mark.parametrize("value", [-1, -0.5, float("nan"), float("inf"), 10**400])
def test_indicator_value_stays_finite_and_not_negative(value: Any) -> None:
    error = refusal(body(task={"indicators": [{"code": "so-buoi-tuyen-truyen", "value": value}]}))
    assert error["loc"][:5] == ("tasks", 0, "indicators", 0, "value")


@pytest.mark.parametrize(("value", "stored"), [(5, 5.0), (2.5, 2.5), (0, 0.0)])
def test_json_numbers_are_accepted(value: Any, stored: float) -> None:
    request = SubmissionCreate.model_validate(
        body(task={"indicators": [{"code": "so-buoi-tuyen-truyen", "value": value}]})
    )
    assert request.tasks[0].indicators[0].value == stored


# --- through HTTP: the answer a client gets ----------------------------------------------------


@pytest.fixture(scope="module")
def api() -> FastAPI:
    """A route with the real body model and the real error handlers (nothing stored)."""
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/api/v1/submissions", status_code=201)
    async def create(request: SubmissionCreate) -> dict[str, str]:
        return {"name": request.submitted_by.name if request.submitted_by else ""}

    return app


async def post(app: FastAPI, raw: bytes) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post(
            "/api/v1/submissions", content=raw, headers={"Content-Type": "application/json"}
        )


@pytest.mark.parametrize(
    ("raw", "field", "label"),
    [
        (body(task={"results": "Đã làm\u0000xong"}), "tasks.0.results", "Kết quả thực hiện"),
        (body(submitter={"name": INJECTED_NAME}), "submitted_by.name", "Họ và tên người gửi"),
        (
            body(task={"indicators": [{"code": "so-buoi-tuyen-truyen", "value": "5"}]}),
            "tasks.0.indicators.0.value",
            "Giá trị chỉ tiêu",
        ),
    ],
)
async def test_http_answer_is_422_naming_the_field(
    api: FastAPI, raw: dict[str, Any], field: str, label: str
) -> None:
    response = await post(api, json.dumps(raw).encode())
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["code"] == "invalid_request"
    assert field in answer["message"]
    assert [d["field"] for d in answer["details"]] == [field]
    assert label in answer["details"][0]["detail"]


async def test_http_json_escape_for_nul_is_refused_too(api: FastAPI) -> None:
    raw = json.dumps(body(task={"results": "a\x00b"}), ensure_ascii=True).encode()
    assert b"\\u0000" in raw
    response = await post(api, raw)
    assert response.status_code == 422


# --- notify: no data value makes a line of its own ---------------------------------------------


def plan_with(unit_name: str, contact_name: str) -> Plan:
    raw = copy.deepcopy(yaml.safe_load(SEED.read_text(encoding="utf-8")))
    unit = next(u for u in raw["units"] if u["id"] == "xa-bo-y")
    unit["name"] = unit_name
    unit["contacts"] = [{"name": contact_name, "email": "xaboy@ngochoi.example"}]
    return Plan.model_validate(raw)


def stored_receipt(submitter: str) -> SubmissionReceived:
    """An event as an older submissions service could have published it (no input checks)."""
    at = dt.datetime(2027, 6, 14, 16, 30, tzinfo=dt.UTC)
    return SubmissionReceived.model_validate(
        {
            "occurred_at": at,
            "producer": "submissions",
            "correlation_id": uuid.uuid4(),
            "payload": {
                "submission_id": uuid.uuid4().hex,
                "receipt_no": "TN-2027-000042\r\nX-Injected: 1",
                "plan_id": "kh-nq35-ngoc-hoi",
                "period_id": "kh-nq35-ngoc-hoi.2027.6-thang",
                "unit_id": "xa-bo-y",
                "revision": 1,
                "received_at": at,
                "due_at": dt.datetime(2027, 6, 14, 17, 0, tzinfo=dt.UTC),
                "on_time": True,
                "submitted_by": {"name": submitter},
                "tasks": [{"task_id": TASK, "status": "completed", "results": "Đã làm"}],
            },
        }
    )


def test_a_stored_name_with_crlf_is_not_a_line_of_its_own_in_the_receipt() -> None:
    plan = plan_with("UBND xã Bờ Y\r\nBcc: unit@example.com", "A Khánh\r\nBcc: c@example.com")
    [message] = messages_for(stored_receipt(INJECTED_NAME), plan)

    assert "\r" not in message.subject
    assert "\n" not in message.subject
    assert "\n" not in message.recipient_name
    assert "\r" not in message.recipient_name
    lines = message.text.splitlines()
    assert not [line for line in lines if line.lstrip().startswith(("Bcc:", "X-Injected:"))]
    assert any("Người gửi:" in line and "Bcc: ke-xau@example.com" in line for line in lines)

    raw = build_email(message, "baocao <noreply@baocao.example>").as_bytes()
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["Bcc"] is None
    assert parsed["X-Injected"] is None
    assert parsed["To"].addresses[0].addr_spec == "xaboy@ngochoi.example"
    assert "\n" not in str(parsed["Subject"])


def test_one_line_turns_every_line_break_into_a_space() -> None:
    assert one_line("a\r\nb\nc\rd\u2028e\u2029f\x85g\x00h\ti") == "a b c d e f g h i"
    assert one_line(" (bổ sung lần 1)") == " (bổ sung lần 1)"
    assert one_line(42) == "42"
