"""Reading plan files and explaining their mistakes: file, line, path, in Vietnamese.

A clerk who writes a plan file gets every problem at once, each as
``data/plans/x.yaml:42: tasks.3.assignments.1: đơn vị “phong-abc” không có``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from contracts.plan import v1
from contracts.plan.model import Plan
from contracts.plan.schedule import occurrences
from contracts.plan.workdays import CalendarDataError, plan_calendar, working_days_after_cutoff

Lines = dict[tuple[str, ...], int]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    path: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        label = "cảnh báo: " if self.warning else ""
        return f"{where}: {label}{self.path or '(toàn tệp)'}: {self.message}"


class PlanFileError(Exception):
    """A plan file is missing, unreadable or wrong; ``problems`` says each thing to fix."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, except that dates stay text: the models parse them, so an
    impossible one (``due_on: 2027-02-29``) is a problem with its line, not a crash of the
    YAML parser (which raises a bare ValueError for it)."""


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    assert isinstance(node, yaml.ScalarNode)
    return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


def read(path: Path) -> tuple[Any, Lines]:
    """The document in ``path`` and the line (1-based) of each value in it, by path."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text), {}
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: Lines = {}
    if node is not None:
        _mark(node, (), lines)
    return yaml.load(text, Loader=_Loader), lines  # noqa: S506 (a SafeLoader)


def _mark(node: yaml.Node, path: tuple[str, ...], lines: Lines) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            lines[child] = key.start_mark.line + 1
            _mark(value, child, lines)
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for n, item in enumerate(node.value):
            _mark(item, (*path, str(n)), lines)


def line_of(lines: Lines, path: tuple[str, ...]) -> int | None:
    """The line of ``path``, or of its nearest enclosing value that has one."""
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path)


def load(path: Path) -> Plan:
    """The plan in ``path`` (format 1 or 2), or :class:`PlanFileError` with every problem."""
    name = str(path)
    try:
        raw, lines = read(path)
    except OSError as error:
        raise PlanFileError([Problem(name, None, "", f"không đọc được tệp: {error}")]) from error
    except (yaml.YAMLError, json.JSONDecodeError) as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else getattr(error, "lineno", None)
        raise PlanFileError([Problem(name, line, "", f"cú pháp tệp sai: {error}")]) from error
    if v1.is_v1(raw):
        raw = v1.upgrade(raw)
    try:
        return Plan.model_validate(raw)
    except ValidationError as error:
        raise PlanFileError(_problems(name, lines, error)) from error


YEARS_CHECKED = 3
"""How many years of a plan's schedule the working-day check looks at, from this one."""


def warnings(path: Path, plan: Plan, *, today: dt.date | None = None) -> list[Problem]:
    """What is allowed but probably unintended: reporting units nobody can be told about, a
    schedule leaving no working day between the data cut-off and the due day."""
    _, lines = read(path)
    found = _contact_warnings(path, plan, lines)
    try:
        found += _cutoff_warnings(path, plan, lines, today or dt.datetime.now(plan.tz).date())
    except CalendarDataError as error:
        found.append(Problem(str(path), None, "working_calendar", str(error), warning=True))
    return found


def _checked_years(plan: Plan, today: dt.date) -> range:
    first = max(today.year, plan.effective_from.year if plan.effective_from else today.year)
    last = first + YEARS_CHECKED - 1
    if plan.effective_until is not None:
        last = min(last, plan.effective_until.year)
    return range(first, last + 1)


def _cutoff_warnings(path: Path, plan: Plan, lines: Lines, today: dt.date) -> list[Problem]:
    calendar = plan_calendar(plan)
    found = []
    for n, kind in enumerate(plan.schedule):
        short = [
            o
            for year in _checked_years(plan, today)
            for o in occurrences(kind, year)
            if working_days_after_cutoff(calendar, o) < 1
        ]
        if short:
            days = ", ".join(f"{o.due_day:%d/%m/%Y}" for o in short)
            found.append(
                Problem(
                    str(path),
                    line_of(lines, ("schedule", str(n))),
                    f"schedule.{n}",
                    f"{kind.title}: không có ngày làm việc nào từ sau ngày chốt số liệu đến hạn "
                    f"nộp {days} (Nghị định 09/2019/NĐ-CP: ít nhất một ngày làm việc)",
                    warning=True,
                )
            )
    return found


def _contact_warnings(path: Path, plan: Plan, lines: Lines) -> list[Problem]:
    found = []
    for n, unit in enumerate(plan.units):
        if unit in plan.reporting_units() and not unit.contacts:
            found.append(
                Problem(
                    str(path),
                    line_of(lines, ("units", str(n))),
                    f"units.{n}",
                    f"{unit.name} phải báo cáo nhưng chưa có người liên hệ: sẽ không nhận "
                    "được thư nhắc hạn và thư xác nhận",
                    warning=True,
                )
            )
    return found


def _problems(name: str, lines: Lines, error: ValidationError) -> list[Problem]:
    found: list[Problem] = []
    for e in error.errors(include_url=False):
        loc = tuple(str(p) for p in e["loc"])
        message = _vietnamese(e)
        if e["type"] == "value_error" and not loc and ": " in message:
            # The plan's own cross-reference check: one "path: message" per line.
            for entry in message.splitlines():
                sub, _, text = entry.partition(": ")
                where = tuple(p for p in (*loc, *sub.split(".")) if p)
                found.append(Problem(name, line_of(lines, where), ".".join(where), text))
            continue
        found.append(Problem(name, line_of(lines, loc), ".".join(loc), message))
    return found


_MESSAGES = {
    "missing": "thiếu trường bắt buộc",
    "extra_forbidden": "trường này không có trong định dạng kế hoạch (gõ nhầm tên?)",
    "string_type": "phải là một chuỗi chữ",
    "int_type": "phải là số nguyên",
    "int_parsing": "phải là số nguyên",
    "int_from_float": "phải là số nguyên",
    "float_type": "phải là một số",
    "float_parsing": "phải là một số",
    "bool_type": "phải là true hoặc false",
    "bool_parsing": "phải là true hoặc false",
    "list_type": "phải là một danh sách",
    "dict_type": "phải là một nhóm trường (mapping)",
    "model_type": "phải là một nhóm trường (mapping)",
    "date_type": "phải là một ngày dạng YYYY-MM-DD",
    "date_parsing": "phải là một ngày có thật, dạng YYYY-MM-DD",
    "date_from_datetime_parsing": "phải là một ngày có thật, dạng YYYY-MM-DD",
}


def _vietnamese(e: Any) -> str:
    kind, ctx = e["type"], e.get("ctx") or {}
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    if kind == "value_error":
        return str(e["msg"]).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        return f"giá trị “{e.get('input')}” không đúng dạng (mẫu {ctx.get('pattern')})"
    if kind in ("enum", "literal_error"):
        return f"giá trị “{e.get('input')}” không hợp lệ; chọn một trong: {ctx.get('expected')}"
    if kind == "too_short":
        return f"cần ít nhất {ctx.get('min_length')} phần tử"
    if kind == "too_long":
        return f"nhiều nhất {ctx.get('max_length')} phần tử"
    if kind == "string_too_long":
        return f"dài nhất {ctx.get('max_length')} ký tự"
    if kind == "string_too_short":
        return "không được để trống"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        sign = {"greater_than_equal": "≥", "greater_than": ">", "less_than_equal": "≤"}
        bound = next(iter(ctx.values()), "")
        return f"phải {sign.get(kind, '<')} {bound}"
    return str(e["msg"])
