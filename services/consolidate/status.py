"""A period's live status: who is expected, who reported (on time or late), who is missing,
whose report was returned; per unit and per task. Pure: built from a consolidation, the plan
and the office's decisions, as the report itself would count them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel

from contracts.events import ReportConsolidatedPayload
from contracts.plan import KIND_LABELS, Plan
from services.consolidate.domain import NO_TERMS, UnitTerms

UnitState = Literal["on_time", "late", "missing", "returned", "exception"]
STATE_LABELS: dict[str, str] = {
    "on_time": "Đúng hạn",
    "late": "Quá hạn",
    "missing": "Chưa báo cáo",
    "returned": "Trả lại để sửa",
    "exception": "Được nộp ngoại lệ",  # the submissions dashboard's words
}


class UnitLine(BaseModel):
    unit_id: str
    unit_name: str
    unit_kind: str
    state: UnitState
    receipt_no: str | None = None
    revision: int | None = None
    last_received_at: dt.datetime | None = None
    resubmit_by: dt.datetime | None = None
    """Only for a returned report: when the corrected version is due."""
    exception_until: dt.datetime | None = None
    """Only for a unit not received yet that may still file under an exception: until when."""


class TaskLine(BaseModel):
    task_id: str
    section: str
    title: str
    expected: int
    reported: int
    missing_units: list[str]
    status_counts: dict[str, int]


class PeriodStatus(BaseModel):
    period_id: str
    plan_id: str
    title: str
    due_at: dt.datetime
    as_of: dt.datetime
    expected: int
    received: int
    on_time: int
    late: int
    missing: int
    returned: int
    exception: int = 0
    """Of the ``missing``, those that may still file under an exception (shown apart)."""
    units: list[UnitLine]
    tasks: list[TaskLine]


def _state(status: str, revision: int | None, terms: UnitTerms, now: dt.datetime) -> UnitState:
    if revision is not None and revision in terms.returned:
        return "returned"  # the latest version is the one sent back: a correction is awaited
    if status == "missing":
        # As on the submissions dashboard: excused only while the exception is in force.
        in_force = terms.exception_until is not None and now < terms.exception_until
        return "exception" if in_force else "missing"
    return "on_time" if status == "on_time" else "late"


def period_status(
    payload: ReportConsolidatedPayload, plan: Plan, terms: Mapping[str, UnitTerms]
) -> PeriodStatus:
    kinds = {u.id: u.kind for u in plan.units}
    units = []
    for u in payload.units:
        unit_terms = terms.get(u.unit_id, NO_TERMS)
        state = _state(u.status, u.revision, unit_terms, payload.consolidated_at)
        units.append(
            UnitLine(
                unit_id=u.unit_id,
                unit_name=u.unit_name,
                unit_kind=KIND_LABELS[kinds[u.unit_id]] if u.unit_id in kinds else "",
                state=state,
                receipt_no=u.receipt_no,
                revision=u.revision,
                last_received_at=u.last_received_at,
                resubmit_by=(
                    unit_terms.returned.get(u.revision)
                    if state == "returned" and u.revision is not None
                    else None
                ),
                exception_until=unit_terms.exception_until if state == "exception" else None,
            )
        )
    expected_ids = {u.unit_id for u in payload.units}
    names = {u.unit_id: u.unit_name for u in payload.units}
    results = {t.task_id: t for t in payload.tasks}
    tasks = []
    for task in plan.tasks:
        assigned = [a.unit_id for a in plan.assignments(task.id) if a.unit_id in expected_ids]
        if not assigned:
            continue
        entries = results[task.id].entries if task.id in results else []
        reported = {e.unit_id for e in entries}
        tasks.append(
            TaskLine(
                task_id=task.id,
                section=task.section,
                title=task.title,
                expected=len(assigned),
                reported=len(reported & set(assigned)),
                missing_units=[names[u] for u in assigned if u not in reported],
                status_counts=dict(Counter(e.status for e in entries)),
            )
        )
    count = Counter(u.state for u in units)
    return PeriodStatus(
        period_id=payload.period_id,
        plan_id=payload.plan_id,
        title=payload.title,
        due_at=payload.due_at,
        as_of=payload.consolidated_at,
        expected=payload.expected,
        received=payload.received,
        on_time=payload.on_time,
        late=payload.late,
        missing=payload.missing,
        returned=count["returned"],
        exception=count["exception"],
        units=units,
        tasks=tasks,
    )
