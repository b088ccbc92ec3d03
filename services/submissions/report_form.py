"""The report form: what the plan asks of a unit, as fields; the typed values, as the body of
``SubmissionCreate``; every refusal, next to the field it is about. Pure: no I/O.

A field's name says where it belongs: ``<task_id>.status``, ``<task_id>.results``,
``<task_id>.difficulties``, ``<task_id>.proposals`` and ``<task_id>.ind.<code>`` for an
indicator, plus ``submitter_name`` and ``submitter_email``. A task is reported when anything of
it is filled in; a task left blank is left out of the body.

The body goes through the API's own path (``web.create_submission``). Before that, the model's
validation (pydantic) and a check of each indicator by kind and bounds run here, so that every
problem is shown at once and next to its field; the domain's check stays the one that decides.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from contracts.plan import Indicator, IndicatorType, Plan, Task

STATUS_LABELS = {
    "completed": "Hoàn thành",
    "in_progress": "Đang thực hiện",
    "not_started": "Chưa thực hiện",
    "recurring": "Thực hiện thường xuyên",
}
ROLE_LABELS = {"lead": "Chủ trì", "cooperating": "Phối hợp"}
MODE_LABELS = {"assigned": "được giao", "requested": "được đề nghị"}
KIND_HINTS = {
    IndicatorType.COUNT: "số nguyên không âm",
    IndicatorType.NUMBER: "số",
    IndicatorType.PERCENTAGE: "tỷ lệ %, từ 0 đến 100",
    IndicatorType.BOOLEAN: "có hoặc không",
    IndicatorType.TEXT: "văn bản",
}
TEXT_PARTS = ("results", "difficulties", "proposals")
SUBMITTER_NAME, SUBMITTER_EMAIL = "submitter_name", "submitter_email"
FORM_LEVEL = ""
"""The key of a problem that is about the whole form, not one field."""

_NUMBER = re.compile(r"^[+-]?\d+([.,]\d+)?$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}\.\d{3}$")
"""“1.000”: a thousand to a Vietnamese reader, one to a program; asked again, never guessed."""


def field_id(name: str) -> str:
    """The HTML id of a field (names hold dots, which CSS selectors would need escaped)."""
    return "f-" + name.replace(".", "--")


@dataclass(frozen=True)
class IndicatorField:
    indicator: Indicator
    required: bool
    name: str

    @property
    def id(self) -> str:
        return field_id(self.name)

    @property
    def hint(self) -> str:
        """What to type, in words: the kind, its bounds and unit of measure."""
        kind = self.indicator.type
        parts = [KIND_HINTS[kind]]
        low, high = self.indicator.bounds
        if kind in (IndicatorType.COUNT, IndicatorType.NUMBER) and (
            (low not in (None, 0.0)) or high is not None
        ):
            parts.append(_allowed(low, high))
        if kind is IndicatorType.TEXT:
            parts.append(f"tối đa {self.indicator.max_length} ký tự")
        if self.indicator.unit_of_measure:
            parts.append(f"đơn vị tính: {self.indicator.unit_of_measure}")
        return "; ".join(parts)


@dataclass(frozen=True)
class TaskSection:
    """One task of the plan as the unit sees it: wording, section, its role, its fields."""

    task: Task
    role: str
    mode: str
    indicators: list[IndicatorField]

    def name(self, part: str) -> str:
        return f"{self.task.id}.{part}"

    def id(self, part: str) -> str:
        return field_id(self.name(part))

    @property
    def role_label(self) -> str:
        return f"{ROLE_LABELS[self.role]} ({MODE_LABELS[self.mode]})"


def sections(plan: Plan, unit_id: str) -> list[TaskSection]:
    """The tasks the plan assigns to or requests of the unit, in the plan's order."""
    found = []
    for task in plan.tasks_of(unit_id):
        assignment = plan.assignment(task.id, unit_id)
        assert assignment is not None  # tasks_of keeps only assigned tasks
        fields = [
            IndicatorField(indicator, asked.required, f"{task.id}.ind.{asked.code}")
            for asked in plan.indicators_for(task, unit_id)
            if (indicator := plan.indicator(asked.code)) is not None
        ]
        found.append(TaskSection(task, assignment.role, assignment.mode, fields))
    return found


@dataclass
class Converted:
    """A form's values as a request body, and what could not even be converted."""

    body: dict[str, Any]
    reported: list[TaskSection]
    """The tasks in the body, in its order: ``tasks.<n>`` of an error is ``reported[n]``."""
    answered: list[list[str]] = field(default_factory=list)
    """Per reported task, the field names of its answered indicators, in the body's order."""
    problems: dict[str, str] = field(default_factory=dict)
    """Field name (or ``FORM_LEVEL``) to message."""


def to_body(plan: Plan, period_id: str, unit_id: str, values: Mapping[str, str]) -> Converted:
    """The JSON body of ``SubmissionCreate`` the form's values stand for."""
    problems: dict[str, str] = {}
    reported: list[TaskSection] = []
    answered: list[list[str]] = []
    tasks: list[dict[str, Any]] = []
    for section in sections(plan, unit_id):
        if not _touched(section, values):
            continue
        reported.append(section)
        report: dict[str, Any] = {"task_id": section.task.id}
        status = _value(values, section.name("status"))
        if status:
            report["status"] = status
        for part in TEXT_PARTS:
            report[part] = _value(values, section.name(part))
        answers, names = [], []
        for wanted in section.indicators:
            raw = _value(values, wanted.name)
            if not raw:
                continue
            answer, problem = _answer(wanted.indicator, raw)
            if problem:
                problems[wanted.name] = problem
            elif answer is not None:
                answers.append(answer)
                names.append(wanted.name)
        report["indicators"] = answers
        answered.append(names)
        tasks.append(report)
    if not tasks:
        problems[FORM_LEVEL] = (
            "Báo cáo chưa có nhiệm vụ nào: hãy nhập tình trạng và kết quả thực hiện của ít nhất "
            "một nhiệm vụ."
        )
    body: dict[str, Any] = {"period_id": period_id, "unit_id": unit_id, "tasks": tasks}
    name, email = _value(values, SUBMITTER_NAME), _value(values, SUBMITTER_EMAIL)
    if name or email:
        body["submitted_by"] = {"name": name, "email": email or None}
    return Converted(body, reported, answered, problems)


def _value(values: Mapping[str, str], name: str) -> str:
    return (values.get(name) or "").strip()


def _touched(section: TaskSection, values: Mapping[str, str]) -> bool:
    names = [section.name(p) for p in ("status", *TEXT_PARTS)] + [
        i.name for i in section.indicators
    ]
    return any(_value(values, n) for n in names)


def _answer(indicator: Indicator, raw: str) -> tuple[dict[str, Any] | None, str | None]:
    """An indicator's answer in the field its type reads, or why the text is not one."""
    code = indicator.code
    if indicator.type is IndicatorType.TEXT:
        return {"code": code, "text": raw}, None
    if indicator.type is IndicatorType.BOOLEAN:
        if raw not in ("yes", "no"):
            return None, "Chọn “Có” hoặc “Không”."
        return {"code": code, "flag": raw == "yes"}, None
    if _THOUSANDS.match(raw):
        return None, (
            "Viết số không có dấu chấm phân cách hàng nghìn (ví dụ 1000); phần thập phân viết "
            "sau dấu phẩy (ví dụ 2,5)."
        )
    if not _NUMBER.match(raw):
        example = "4" if indicator.type is IndicatorType.COUNT else "4 hoặc 2,5"
        return None, f"Nhập một số (ví dụ {example}), không kèm chữ hay dấu phân cách hàng nghìn."
    number = float(raw.replace(",", "."))
    return {"code": code, "value": int(number) if number.is_integer() else number}, None


# --- checking, and mapping refusals to fields ---------------------------------------------


def indicator_problems(converted: Converted) -> dict[str, str]:
    """Each indicator of a reported task checked by its kind, bounds, length and whether it is
    required, with a message for its field (the domain stops at the first problem)."""
    problems: dict[str, str] = {}
    tasks = converted.body.get("tasks", [])
    for section, report in zip(converted.reported, tasks, strict=True):
        given = {a["code"]: a for a in report.get("indicators", [])}
        for wanted in section.indicators:
            answer = given.get(wanted.indicator.code)
            if answer is None:
                if wanted.required:
                    problems[wanted.name] = "Chỉ tiêu bắt buộc: vui lòng nhập."
                continue
            problem = _out_of_kind(wanted.indicator, answer)
            if problem:
                problems[wanted.name] = problem
    return problems


def _out_of_kind(indicator: Indicator, answer: Mapping[str, Any]) -> str | None:
    if indicator.type is IndicatorType.TEXT:
        text = str(answer.get("text", ""))
        if len(text) > indicator.max_length:
            return f"Dài tối đa {indicator.max_length} ký tự; đã nhập {len(text)} ký tự."
        return None
    value = answer.get("value")
    if not isinstance(value, int | float):
        return None
    if indicator.type is IndicatorType.COUNT and (value < 0 or not float(value).is_integer()):
        return f"Nhập một số nguyên không âm (ví dụ 4); đã nhập {_figure(value)}."
    low, high = indicator.bounds
    if (low is not None and value < low) or (high is not None and value > high):
        what = "tỷ lệ phần trăm" if indicator.type is IndicatorType.PERCENTAGE else "một số"
        return f"Nhập {what} {_allowed(low, high)}; đã nhập {_figure(value)}."
    return None


def _allowed(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"từ {_figure(low)} đến {_figure(high)}"
    if low is not None:
        return f"từ {_figure(low)} trở lên"
    return f"không lớn hơn {_figure(high or 0)}"


def _figure(x: float) -> str:
    """A number the Vietnamese way: 2,5 and 250 (not 250.0)."""
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x)).replace(".", ",")


_PART_LABELS = {
    "status": "tình trạng thực hiện",
    "results": "kết quả thực hiện",
    "difficulties": "khó khăn, vướng mắc",
    "proposals": "đề xuất, kiến nghị",
    "name": "họ và tên người gửi",
    "email": "thư điện tử",
    "indicator": "chỉ tiêu",
}
_OWN_TYPES = {"single_line", "control_character", "json_number", "json_boolean", "json_string"}
"""Validators in ``models`` whose messages are Vietnamese already."""


def validation_problems(error: ValidationError, converted: Converted) -> dict[str, str]:
    """The model's refusals (``SubmissionCreate``), each at its field, in Vietnamese."""
    problems: dict[str, str] = {}
    for found in error.errors():
        name, part = _field_of(tuple(found["loc"]), converted)
        problems.setdefault(name, _message(found, part))
    return problems


def _field_of(loc: tuple[int | str, ...], converted: Converted) -> tuple[str, str]:
    """(form field name, what the part is) of an error location in the body."""
    if loc[:1] == ("submitted_by",):
        part = str(loc[1]) if len(loc) > 1 else "name"
        return (SUBMITTER_EMAIL if part == "email" else SUBMITTER_NAME), part
    if loc[:1] == ("attachments",):
        return "attach", "attachments"
    if loc[:1] != ("tasks",) or len(loc) < 3 or not isinstance(loc[1], int):
        return FORM_LEVEL, ""
    if loc[1] >= len(converted.reported):
        return FORM_LEVEL, ""
    n, part = loc[1], str(loc[2])
    if part == "indicators" and len(loc) >= 4 and isinstance(loc[3], int):
        names = converted.answered[n]
        return (names[loc[3]], "indicator") if loc[3] < len(names) else (FORM_LEVEL, part)
    if part in ("status", *TEXT_PARTS):
        return converted.reported[n].name(part), part
    return FORM_LEVEL, part


def _message(found: Mapping[str, Any], part: str) -> str:
    kind, context = found["type"], found.get("ctx") or {}
    label = _PART_LABELS.get(part, "giá trị")
    if kind in _OWN_TYPES:
        return str(found["msg"])
    if kind == "missing":
        return f"Vui lòng chọn {label}." if part == "status" else f"Vui lòng nhập {label}."
    if kind == "string_too_short":
        return f"Vui lòng nhập {label}."
    if kind == "string_too_long":
        return f"Nhập tối đa {context.get('max_length')} ký tự."
    if kind == "literal_error":
        return "Vui lòng chọn một tình trạng trong danh sách."
    if kind == "string_pattern_mismatch" and part == "email":
        return "Thư điện tử chưa đúng dạng (ví dụ: canbo@xa.gov.vn)."
    if kind == "greater_than_equal":
        return f"Nhập một số từ {_figure(float(context.get('ge', 0)))} trở lên."
    if kind == "too_short" and part == "":
        return "Báo cáo cần ít nhất một nhiệm vụ."
    if kind == "too_long":
        return f"Nhiều hơn mức cho phép ({context.get('max_length')})."
    return f"Giá trị của {label} không hợp lệ."


# --- back from a stored report -------------------------------------------------------------


def values_of(tasks: Sequence[Mapping[str, Any]], plan: Plan) -> dict[str, str]:
    """A filed report's tasks as form values, to start its next version from."""
    values: dict[str, str] = {}
    for report in tasks:
        task_id = str(report["task_id"])
        values[f"{task_id}.status"] = str(report.get("status") or "")
        for part in TEXT_PARTS:
            values[f"{task_id}.{part}"] = str(report.get(part) or "")
        for answer in report.get("indicators") or []:
            indicator = plan.indicator(str(answer["code"]))
            if indicator is not None:
                values[f"{task_id}.ind.{indicator.code}"] = _shown(indicator, answer)
    return values


def _shown(indicator: Indicator, answer: Mapping[str, Any]) -> str:
    if indicator.type is IndicatorType.BOOLEAN:
        flag = answer.get("flag")
        return "yes" if (flag if flag is not None else answer.get("value")) else "no"
    if indicator.type is IndicatorType.TEXT:
        return str(answer.get("text") or "")
    value = answer.get("value")
    return _figure(float(value)) if isinstance(value, int | float) else ""


def shown_answer(indicator: Indicator, answer: Mapping[str, Any]) -> str:
    """A filed answer as a person reads it: "Có", "4 buổi", "87,5%"."""
    raw = _shown(indicator, answer)
    if indicator.type is IndicatorType.BOOLEAN:
        return "Có" if raw == "yes" else "Không"
    if indicator.type is IndicatorType.PERCENTAGE:
        return f"{raw}%"
    unit = f" {indicator.unit_of_measure}" if indicator.unit_of_measure else ""
    return f"{raw}{unit}" if indicator.type is not IndicatorType.TEXT else raw


def field_labels(found: Sequence[TaskSection]) -> dict[str, str]:
    """What the error summary calls each field: its task's section and the field's label."""
    labels = {SUBMITTER_NAME: "Họ và tên người gửi", SUBMITTER_EMAIL: "Thư điện tử người gửi"}
    for section in found:
        where = f"Nhiệm vụ {section.task.section} ({_short(section.task.title)})"
        for part in ("status", *TEXT_PARTS):
            labels[section.name(part)] = f"{where}: {_PART_LABELS[part]}"
        for wanted in section.indicators:
            labels[wanted.name] = f"{where}: chỉ tiêu “{wanted.indicator.name}”"
    return labels


def _short(title: str, limit: int = 60) -> str:
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"
