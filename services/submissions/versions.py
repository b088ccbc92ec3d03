"""The difference between two versions of a unit's report, task by task. Pure.

Each task present in either version is compared on what a unit writes for it: status, results,
indicators (by code: value, yes/no, text), difficulties, proposals and attachments; the
report's own attachments are compared too. Long text also comes as a line diff, so a page can
show what was added and removed.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

Change = Literal["added", "removed", "changed", "unchanged"]

TEXT_FIELDS = ("results", "difficulties", "proposals")
_ANSWER = ("value", "flag", "text")


class Line(BaseModel):
    op: Literal["equal", "insert", "delete"]
    text: str


class FieldChange(BaseModel):
    field: str
    before: Any = None
    after: Any = None
    lines: list[Line] = Field(
        default_factory=list, description="long text: the line diff, in order"
    )


class IndicatorChange(BaseModel):
    code: str
    change: Change
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class AttachmentChange(BaseModel):
    attachment_id: str
    filename: str
    change: Literal["added", "removed"]


class TaskDiff(BaseModel):
    task_id: str
    change: Change
    fields: list[FieldChange] = Field(default_factory=list)
    indicators: list[IndicatorChange] = Field(default_factory=list)
    attachments: list[AttachmentChange] = Field(default_factory=list)


class VersionDiff(BaseModel):
    period_id: str
    unit_id: str
    from_revision: int
    to_revision: int
    changed: bool
    tasks: list[TaskDiff]
    attachments: list[AttachmentChange] = Field(
        default_factory=list, description="the report's own attachments"
    )


def diff(older: Mapping[str, Any], newer: Mapping[str, Any]) -> VersionDiff:
    """What changed from ``older`` to ``newer`` (two stored versions of one unit's report).

    Tasks come in the newer version's order, then those only the older one had.
    """
    before = {t["task_id"]: t for t in older.get("tasks") or []}
    after = {t["task_id"]: t for t in newer.get("tasks") or []}
    order = list(after) + [t for t in before if t not in after]
    tasks = [_task(task_id, before.get(task_id), after.get(task_id)) for task_id in order]
    attachments = _attachments(older.get("attachments") or [], newer.get("attachments") or [])
    return VersionDiff(
        period_id=newer["period_id"],
        unit_id=newer["unit_id"],
        from_revision=older["revision"],
        to_revision=newer["revision"],
        changed=bool(attachments) or any(t.change != "unchanged" for t in tasks),
        tasks=tasks,
        attachments=attachments,
    )


def _task(
    task_id: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> TaskDiff:
    old, new = before or {}, after or {}
    fields = []
    if old.get("status") != new.get("status"):
        fields.append(
            FieldChange(field="status", before=old.get("status"), after=new.get("status"))
        )
    for name in TEXT_FIELDS:
        was, now = old.get(name) or "", new.get(name) or ""
        if was != now:
            fields.append(FieldChange(field=name, before=was, after=now, lines=_lines(was, now)))
    indicators = _indicators(old.get("indicators") or [], new.get("indicators") or [])
    attachments = _attachments(old.get("attachments") or [], new.get("attachments") or [])
    if before is None:
        change: Change = "added"
    elif after is None:
        change = "removed"
    elif fields or attachments or any(i.change != "unchanged" for i in indicators):
        change = "changed"
    else:
        change = "unchanged"
    return TaskDiff(
        task_id=task_id,
        change=change,
        fields=fields,
        indicators=[i for i in indicators if i.change != "unchanged"],
        attachments=attachments,
    )


def _answer(indicator: Mapping[str, Any]) -> dict[str, Any]:
    """What a unit answered: a yes/no or a text carries a placeholder ``value`` (see the
    event's ``IndicatorValue``) that is not part of the answer."""
    if indicator.get("flag") is not None:
        return {"flag": indicator["flag"]}
    if indicator.get("text") is not None:
        return {"text": indicator["text"]}
    return {"value": indicator.get("value")}


def _indicators(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]
) -> list[IndicatorChange]:
    old = {i["code"]: _answer(i) for i in before}
    new = {i["code"]: _answer(i) for i in after}
    found = []
    for code in list(new) + [c for c in old if c not in new]:
        was, now = old.get(code), new.get(code)
        if was is None:
            change: Change = "added"
        elif now is None:
            change = "removed"
        else:
            change = "unchanged" if was == now else "changed"
        found.append(IndicatorChange(code=code, change=change, before=was, after=now))
    return found


def _attachments(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]
) -> list[AttachmentChange]:
    def key(a: Mapping[str, Any]) -> tuple[str, str]:
        return (str(a.get("attachment_id")), str(a.get("sha256", "")))

    old = {key(a): a for a in before}
    new = {key(a): a for a in after}
    removed = [_attachment(a, "removed") for k, a in old.items() if k not in new]
    return removed + [_attachment(a, "added") for k, a in new.items() if k not in old]


def _attachment(a: Mapping[str, Any], change: Literal["added", "removed"]) -> AttachmentChange:
    return AttachmentChange(
        attachment_id=str(a.get("attachment_id")),
        filename=str(a.get("filename", "")),
        change=change,
    )


def _lines(before: str, after: str) -> list[Line]:
    was, now = before.splitlines(), after.splitlines()
    found: list[Line] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=was, b=now, autojunk=False).get_opcodes():
        if op == "equal":
            found += [Line(op="equal", text=t) for t in was[i1:i2]]
            continue
        found += [Line(op="delete", text=t) for t in was[i1:i2]]
        found += [Line(op="insert", text=t) for t in now[j1:j2]]
    return found
