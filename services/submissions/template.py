"""The report a unit is asked for, blank: its tasks and each task's indicators with bounds."""

from __future__ import annotations

import math

from contracts.plan import Indicator, IndicatorType, Plan
from services.common.periods import Period


def blank_report(plan: Plan, period: Period, unit_id: str) -> dict[str, object]:
    """A request body to fill in (see ``web.template``); the form is drawn from it too."""
    return {
        "period_id": period.id,
        "unit_id": unit_id,
        "submitted_by": {"name": "", "email": None},
        "tasks": [
            {
                "task_id": t.id,
                "status": "in_progress",
                "results": "",
                "indicators": [
                    _blank(indicator, asked.required)
                    for asked in plan.indicators_for(t, unit_id)
                    if (indicator := plan.indicator(asked.code)) is not None
                ],
                "difficulties": "",
                "proposals": "",
            }
            for t in plan.tasks_of(unit_id)
        ],
    }


def _blank(indicator: Indicator, required: bool) -> dict[str, object]:
    low, high = indicator.bounds
    about: dict[str, object] = {
        "name": indicator.name,
        "type": indicator.type.value,
        "unit_of_measure": indicator.unit_of_measure,
        "minimum": low,
        "maximum": high,
        "required": required,
    }
    answer: dict[str, object]
    if indicator.type is IndicatorType.BOOLEAN:
        answer = {"flag": False}
    elif indicator.type is IndicatorType.TEXT:
        answer = {"text": ""}
        about = {**about, "minimum": None, "maximum": None, "max_length": indicator.max_length}
    else:
        start = max(low or 0.0, 0.0)
        whole = indicator.type is IndicatorType.COUNT or start.is_integer()
        answer = {"value": math.ceil(start) if whole else start}
    return {"code": indicator.code, **answer, "about": about}
