"""The live status of a period: per unit (returned included) and per task."""

from __future__ import annotations

import datetime as dt

import pytest

from contracts.events import TaskReport
from services.common.periods import find_period
from services.consolidate.domain import SubmissionRow, UnitTerms, consolidate
from services.consolidate.status import period_status
from tests.support.plans import make_plan, report_kind, task, unit

pytestmark = pytest.mark.unit

PLAN = make_plan(
    plan_id="kh-tt",
    consolidating_unit_id="phong-a",
    units=[
        unit("phong-a", "Phòng A", "specialised_office"),
        unit("xa-b", "UBND xã B", "commune"),
        unit("xa-c", "UBND xã C", "commune"),
        unit("xa-d", "UBND xã D", "commune"),
    ],
    tasks=[
        task("viec-1", "I", "Việc 1", ["phong-a", "xa-b", "xa-c", "xa-d"]),
        task("viec-2", "II", "Việc 2", ["xa-b", "xa-c"]),
    ],
    schedule=[
        report_kind("nam", "Báo cáo năm", due_before="11-20", data_from="01-01", data_to="11-19")
    ],
)
PERIOD = find_period(PLAN, "kh-tt.2026.nam")
assert PERIOD is not None
DUE = PERIOD.due_at


def row(unit_id: str, revision: int, at: dt.datetime, *task_ids: str) -> SubmissionRow:
    return SubmissionRow(
        submission_id=f"{unit_id}-{revision}",
        receipt_no=f"BC-{unit_id}-{revision}",
        unit_id=unit_id,
        revision=revision,
        received_at=at,
        tasks=tuple(TaskReport(task_id=t, status="completed", results="xong") for t in task_ids),
    )


def test_units_and_tasks_are_counted_and_a_returned_report_is_shown_as_returned() -> None:
    assert PERIOD is not None
    rows = [
        row("phong-a", 1, DUE - dt.timedelta(days=1), "viec-1"),
        row("xa-b", 1, DUE + dt.timedelta(hours=2), "viec-1", "viec-2"),
        row("xa-c", 1, DUE - dt.timedelta(days=2), "viec-1"),
    ]
    resubmit_by = DUE + dt.timedelta(days=3)
    terms = {"xa-c": UnitTerms(returned={1: resubmit_by})}
    payload = consolidate(
        PLAN,
        PERIOD,
        rows,
        now=DUE + dt.timedelta(days=1),
        trigger="requested",
        version=1,
        report_id="x",
        terms=terms,
    )
    s = period_status(payload, PLAN, terms)
    assert (s.expected, s.received, s.missing, s.returned) == (4, 3, 1, 1)
    states = {u.unit_id: u.state for u in s.units}
    assert states == {"phong-a": "on_time", "xa-b": "late", "xa-c": "returned", "xa-d": "missing"}
    assert [u.resubmit_by for u in s.units if u.unit_id == "xa-c"] == [resubmit_by]
    first, second = s.tasks
    assert (first.task_id, first.expected, first.reported, first.missing_units) == (
        "viec-1",
        4,
        3,
        ["UBND xã D"],
    )
    assert (second.reported, second.missing_units, second.status_counts) == (
        1,
        ["UBND xã C"],
        {"completed": 1},
    )
