"""Format 1 plan files, converted to format 2 when they load (nothing to rewrite by hand).

Format 1 had no ``format`` key, indicator codes listed per task, indicators that were plain
summed figures, and one unit kind for the district People's Committee.
"""

from __future__ import annotations

from typing import Any


def is_v1(raw: object) -> bool:
    return isinstance(raw, dict) and "format" not in raw


def upgrade(raw: dict[str, Any]) -> dict[str, Any]:
    """The format 2 equivalent of a format 1 document (the input is left untouched)."""
    plan = {**raw, "format": 2}
    plan["units"] = [
        {**u, "kind": "district"} if u.get("kind") == "peoples_committee" else u
        for u in raw.get("units") or []
    ]
    plan["indicators"] = [
        # Format 1 summed any non-negative number: the same in format 2 terms.
        {"type": "number", "minimum": 0, **i}
        for i in raw.get("indicators") or []
    ]
    tasks = []
    for task in raw.get("tasks") or []:
        task = dict(task)
        codes = task.pop("indicator_codes", None) or []
        task.setdefault("indicators", [{"code": c} for c in codes])
        tasks.append(task)
    plan["tasks"] = tasks
    return plan
