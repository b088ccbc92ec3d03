"""Consolidating a period: who reported, when, and what, from the plan and the submissions.

Pure: no I/O, no clock. Everything comes out in plan order so that two consolidations of the
same data are equal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from contracts.events import (
    IndicatorTotal,
    ReportConsolidatedPayload,
    TaskEntry,
    TaskReport,
    TaskResults,
    UnitStatus,
)
from contracts.plan import Plan, Unit
from services.common.periods import Period

Trigger = Literal["period_closed", "requested"]

REPORT_IDS = uuid.UUID("5d1c7a4e-8f0b-5c61-9a57-3f2e6b0c4d18")
"""uuid5 namespace of report ids: the same cause always yields the same report id."""


@dataclass(frozen=True)
class SubmissionRow:
    """One revision of a unit's report, as the projection keeps it."""

    submission_id: str
    receipt_no: str
    unit_id: str
    revision: int
    received_at: dt.datetime
    tasks: tuple[TaskReport, ...]


def report_id_for_closing(period_closed_event_id: uuid.UUID) -> str:
    """A redelivered PeriodClosed maps to the report its first delivery recorded."""
    return str(uuid.uuid5(REPORT_IDS, f"period-closed|{period_closed_event_id}"))


def report_id_for_amendment(submission_id: str) -> str:
    """A submission projected after the close amends the closing report once."""
    return str(uuid.uuid5(REPORT_IDS, f"amended|{submission_id}"))


_NOT_CONTENT = {"report_id", "version", "trigger", "consolidated_at", "supersedes", "content_hash"}


def content_hash(payload: ReportConsolidatedPayload) -> str:
    """What a report says, hashed: equal inputs give equal hashes, whatever the version."""
    content = payload.model_dump(mode="json", exclude=_NOT_CONTENT)
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def report_id_for_request(period_id: str, request_id: str) -> str:
    """A retried request (same idempotency key, same period) maps to the same report."""
    return str(uuid.uuid5(REPORT_IDS, f"requested|{period_id}|{request_id}"))


def consolidate(
    plan: Plan,
    period: Period,
    submissions: list[SubmissionRow],
    *,
    now: dt.datetime,
    trigger: Trigger,
    version: int,
    report_id: str,
) -> ReportConsolidatedPayload:
    expected = plan.reporting_units()
    expected_ids = {u.id for u in expected}
    revisions: dict[str, list[SubmissionRow]] = defaultdict(list)
    for row in submissions:
        if row.unit_id in expected_ids:  # a unit outside the plan has nothing to count toward
            revisions[row.unit_id].append(row)

    units = [_unit_status(unit, period, revisions.get(unit.id, [])) for unit in expected]
    latest = [_latest(revisions[u.id]) for u in expected if revisions.get(u.id)]
    on_time = sum(1 for u in units if u.status == "on_time")
    late = sum(1 for u in units if u.status == "late")
    return ReportConsolidatedPayload(
        report_id=report_id,
        version=version,
        trigger=trigger,
        plan_id=plan.id,
        period_id=period.id,
        report_kind=period.kind.code,
        year=period.year,
        title=period.title,
        due_at=period.due_at,
        consolidated_at=now,
        expected=len(expected),
        received=on_time + late,
        on_time=on_time,
        late=late,
        missing=len(expected) - on_time - late,
        units=units,
        indicator_totals=_indicator_totals(plan, latest),
        tasks=_task_results(plan, latest),
    )


def _first(rows: list[SubmissionRow]) -> SubmissionRow:
    return min(rows, key=lambda r: (r.received_at, r.revision))


def _latest(rows: list[SubmissionRow]) -> SubmissionRow:
    # A correction supersedes: the highest revision is the unit's current report.
    return max(rows, key=lambda r: (r.revision, r.received_at))


def _unit_status(unit: Unit, period: Period, rows: list[SubmissionRow]) -> UnitStatus:
    if not rows:
        return UnitStatus(unit_id=unit.id, unit_name=unit.name, status="missing")
    first, latest = _first(rows), _latest(rows)
    # Punctuality belongs to the first filing: a late correction does not make a unit late.
    return UnitStatus(
        unit_id=unit.id,
        unit_name=unit.name,
        status="on_time" if period.on_time(first.received_at) else "late",
        submission_id=latest.submission_id,
        receipt_no=latest.receipt_no,
        revision=latest.revision,
        first_received_at=first.received_at,
        last_received_at=latest.received_at,
    )


def _indicator_totals(plan: Plan, latest: list[SubmissionRow]) -> list[IndicatorTotal]:
    """Totals of the indicators at least one unit reported, in plan order."""
    totals: dict[str, float] = defaultdict(float)
    reporters: dict[str, set[str]] = defaultdict(set)
    for row in latest:
        for task in row.tasks:
            for value in task.indicators:
                totals[value.code] += value.value
                reporters[value.code].add(row.unit_id)
    return [
        IndicatorTotal(
            code=i.code,
            name=i.name,
            unit_of_measure=i.unit_of_measure,
            total=totals[i.code],
            reporting_units=len(reporters[i.code]),
        )
        for i in plan.indicators
        if i.code in reporters
    ]


def _task_results(plan: Plan, latest: list[SubmissionRow]) -> list[TaskResults]:
    """Every plan task in plan order, with the entries of the units that reported on it."""
    return [
        TaskResults(
            task_id=task.id,
            section=task.section,
            title=task.title,
            entries=[
                TaskEntry(
                    unit_id=row.unit_id,
                    status=report.status,
                    results=report.results,
                    difficulties=report.difficulties,
                    proposals=report.proposals,
                )
                for row in latest
                for report in row.tasks
                if report.task_id == task.id
            ],
        )
        for task in plan.tasks
    ]
