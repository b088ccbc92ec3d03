"""What the HTTP API accepts and answers (role-suffixed: ...Create in, ...Public out).

Text that comes in is checked here, at the edge, before anything is stored: every string is
normalised to Unicode NFC; single-line fields (names, ids, codes, e-mail) refuse line breaks and
every other control character, so a name can never become a line of its own in an e-mail; the
long text fields keep tabs and line breaks (CRLF and the Unicode line/paragraph separators become
LF) and refuse the other control characters (NUL, escape sequences, a lone CR...). Numbers must be
JSON numbers: ``"5"`` and ``true`` are not 5.

An indicator is answered in the field its type reads: ``value`` (a JSON number) for counts,
numbers and percentages, ``flag`` (a JSON boolean) for yes/no, ``text`` (a string, kept like the
long text fields) for text; the same three fields the ``SubmissionReceived`` event carries.
Whether the field suits the indicator, and the indicator's bounds, are checked against the plan
in ``domain``.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
import uuid
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from contracts.events import TaskStatus
from services.common.errors import ApiError as ApiError  # the error body, kept importable here

LABELS = {
    "period_id": "Mã kỳ báo cáo",
    "unit_id": "Mã đơn vị",
    "task_id": "Mã nhiệm vụ",
    "code": "Mã chỉ tiêu",
    "value": "Giá trị chỉ tiêu",
    "flag": "Giá trị có/không của chỉ tiêu",
    "text": "Nội dung chỉ tiêu",
    "name": "Họ và tên người gửi",
    "email": "Thư điện tử người gửi",
    "results": "Kết quả thực hiện",
    "difficulties": "Khó khăn, vướng mắc",
    "proposals": "Đề xuất, kiến nghị",
    "attachments": "Mã tệp đính kèm",
}
"""What each field is called in the Vietnamese messages."""

_SINGLE_LINE_FORBIDDEN = {"Cc", "Zl", "Zp"}
"""Control characters (TAB, LF, CR, NUL, NEL...) and the Unicode line/paragraph separators.
(Lone surrogates never get here: pydantic refuses them as ``string_unicode``.)"""
_LONG_TEXT_ALLOWED = {"\t", "\n"}


def _label(info: ValidationInfo) -> str:
    return LABELS.get(info.field_name or "", info.field_name or "Nội dung")


def _code_point(char: str) -> str:
    return f"U+{ord(char):04X}"


def _single_line(value: str, info: ValidationInfo) -> str:
    value = unicodedata.normalize("NFC", value)
    for char in value:
        if unicodedata.category(char) in _SINGLE_LINE_FORBIDDEN:
            raise PydanticCustomError(
                "single_line",
                "“{label}” phải viết trên một dòng, không được chứa ký tự xuống dòng "
                "hay ký tự điều khiển (gặp ký tự {char}).",
                {"label": _label(info), "char": _code_point(char)},
            )
    return value


def _long_text(value: str, info: ValidationInfo) -> str:
    value = value.replace("\r\n", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    value = unicodedata.normalize("NFC", value)
    for char in value:
        if char not in _LONG_TEXT_ALLOWED and unicodedata.category(char) == "Cc":
            raise PydanticCustomError(
                "control_character",
                "“{label}” chứa ký tự điều khiển không được phép (gặp ký tự {char}); "
                "chỉ được dùng chữ, số, dấu câu, dấu tab và dấu xuống dòng.",
                {"label": _label(info), "char": _code_point(char)},
            )
    return value


def _json_number(value: Any, info: ValidationInfo) -> Any:
    # bool is an int in Python, and FastAPI hands us json.loads output: check the type here.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError(
            "json_number",
            "“{label}” phải là một số (ví dụ 4 hoặc 2.5), không phải chuỗi ký tự "
            "hay giá trị true/false. Chỉ tiêu có/không ghi true hoặc false vào trường “flag”, "
            "chỉ tiêu dạng văn bản ghi vào trường “text”.",
            {"label": _label(info)},
        )
    return value


def _json_boolean(value: Any, info: ValidationInfo) -> Any:
    if value is not None and not isinstance(value, bool):
        raise PydanticCustomError(
            "json_boolean",
            "“{label}” phải là true hoặc false (không đặt trong dấu nháy).",
            {"label": _label(info)},
        )
    return value


def _json_string(value: Any, info: ValidationInfo) -> Any:
    if value is not None and not isinstance(value, str):
        raise PydanticCustomError(
            "json_string",
            "“{label}” phải là một chuỗi ký tự (đặt trong dấu nháy).",
            {"label": _label(info)},
        )
    return value


Line = Annotated[str, AfterValidator(_single_line)]
"""One line of text: a name, an id, a code."""
LongText = Annotated[str, AfterValidator(_long_text)]
"""Free text over several lines: results, difficulties, proposals."""
Number = Annotated[
    float,
    BeforeValidator(_json_number),
    Field(ge=0, allow_inf_nan=False, strict=True),
]
"""A JSON number, finite and not negative (version 1 of the event carries no negative figure)."""
Flag = Annotated[bool, BeforeValidator(_json_boolean), Field(strict=True)]
"""A JSON boolean: ``"true"`` and ``1`` are not true."""

TEXT_LIMIT = 20_000
"""The longest text any indicator may allow (``Indicator.max_length``); each indicator's own
limit is checked in ``domain``."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class IndicatorAbout(BaseModel):
    """What the template says about an indicator, so a form can show it; ignored on filing."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    type: str | None = None
    unit_of_measure: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    required: bool | None = None


class IndicatorValueCreate(Strict):
    """One indicator's answer: ``value``, ``flag`` or ``text``, as the indicator's type says."""

    code: Line = Field(min_length=1, max_length=64)
    # An explicit null is refused (it is not a number); an absent value is for flag or text.
    value: Annotated[Number | None, BeforeValidator(_json_number)] = None
    flag: Flag | None = None
    text: Annotated[LongText | None, BeforeValidator(_json_string)] = Field(
        None, max_length=TEXT_LIMIT
    )
    about: IndicatorAbout | None = Field(None, exclude=True)
    """Filled by the template endpoint; sending it back is harmless, it is not stored."""

    def given(self) -> list[str]:
        """The answer fields present, in the order ``value``, ``flag``, ``text``."""
        return [name for name in ("value", "flag", "text") if getattr(self, name) is not None]


class TaskReportCreate(Strict):
    task_id: Line = Field(min_length=1, max_length=64)
    status: TaskStatus
    results: LongText = Field(min_length=1, max_length=20_000)
    indicators: list[IndicatorValueCreate] = Field(default_factory=list, max_length=50)
    difficulties: LongText = Field("", max_length=10_000)
    proposals: LongText = Field("", max_length=10_000)


class SubmitterCreate(Strict):
    name: Line = Field(min_length=1, max_length=120)
    email: Line | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$", max_length=254)


class SubmissionCreate(Strict):
    period_id: Line = Field(min_length=1, max_length=128)
    unit_id: Line = Field(min_length=1, max_length=64)
    submitted_by: SubmitterCreate | None = None
    tasks: list[TaskReportCreate] = Field(min_length=1, max_length=100)
    attachments: list[Annotated[Line, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list,
        max_length=20,
        description="ids of files uploaded for this unit and period (POST .../attachments)",
    )


class SubmissionReceipt(BaseModel):
    submission_id: uuid.UUID
    receipt_no: str
    period_id: str
    unit_id: str
    revision: int
    received_at: AwareDatetime
    received_at_local: str
    due_at: AwareDatetime
    on_time: bool
    server_time: AwareDatetime
    message: str


def local_text(moment: dt.datetime, tz: dt.tzinfo) -> str:
    """'14:05 ngày 26/11/2026' in the plan's time zone."""
    local = moment.astimezone(tz)
    return f"{local:%H:%M} ngày {local:%d/%m/%Y}"
