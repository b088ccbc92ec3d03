"""Format 1 plan files, converted to format 2 when they load (nothing to rewrite by hand).

Format 1 had no ``format`` key, indicator codes listed per task, indicators that were plain
summed figures, and one unit kind for the district People's Committee.
"""

from __future__ import annotations

from typing import Any


def is_v1(raw: object) -> bool:
    return isinstance(raw, dict) and "format" not in raw


def upgrade(raw: dict[str, Any]) -> dict[str, Any]:
    """The format 2 equivalent of a format 1 document (the input is left untouched).

    A part of the wrong shape (``units: abc``) is passed through unchanged: the format 2
    model then refuses it with its path and line, instead of the conversion crashing.
    """
    plan = {**raw, "format": 2}
    plan["units"] = _each(
        raw.get("units"),
        lambda u: {**u, "kind": "district"} if u.get("kind") == "peoples_committee" else u,
    )
    # Format 1 summed any non-negative number: the same in format 2 terms.
    plan["indicators"] = _each(
        raw.get("indicators"), lambda i: {"type": "number", "minimum": 0, **i}
    )
    plan["tasks"] = _each(raw.get("tasks"), _task)
    return plan


def _task(task: dict[str, Any]) -> dict[str, Any]:
    task = dict(task)
    codes = task.pop("indicator_codes", None) or []
    if isinstance(codes, list):
        task.setdefault("indicators", [{"code": c} for c in codes])
    else:
        task.setdefault("indicators", codes)
    return task


def _each(items: object, convert: Any) -> Any:
    """``convert`` applied to every mapping of a list; anything else as it was."""
    if items is None:
        return []
    if not isinstance(items, list):
        return items
    return [convert(item) if isinstance(item, dict) else item for item in items]
