"""Deciding whether a report can be accepted, and what the accepted report is. Pure."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid

from contracts.events import (
    IndicatorValue,
    SubmissionReceived,
    SubmissionReceivedPayload,
    Submitter,
    TaskReport,
)
from contracts.plan import Plan
from services.common.errors import ApiProblem
from services.common.periods import Period, PeriodState
from services.common.reference import Catalog
from services.submissions.models import SubmissionCreate


class SubmissionRejected(ApiProblem):
    """The report cannot be accepted; ``code`` is for machines, the message for people."""


def check(request: SubmissionCreate, catalog: Catalog, now: dt.datetime) -> tuple[Plan, Period]:
    """The plan and period the report belongs to, or :class:`SubmissionRejected`."""
    found = catalog.period(request.period_id)
    if found is None:
        raise SubmissionRejected(
            422, "unknown_period", f"Không tìm thấy kỳ báo cáo “{request.period_id}”."
        )
    plan, period = found
    unit = plan.unit(request.unit_id)
    if unit is None:
        raise SubmissionRejected(
            422, "unknown_unit", f"Đơn vị “{request.unit_id}” không có trong kế hoạch."
        )
    if unit not in plan.reporting_units():
        raise SubmissionRejected(
            422, "unit_not_reporting", f"{unit.name} không thuộc diện báo cáo kế hoạch này."
        )
    state = period.state(now)
    if state is PeriodState.UPCOMING:
        raise SubmissionRejected(
            409,
            "period_not_open",
            f"{period.title} chưa mở; bắt đầu nhận báo cáo từ "
            f"{period.opens_at.astimezone(plan.tz):%d/%m/%Y}.",
        )
    if state is PeriodState.CLOSED:
        raise SubmissionRejected(
            409,
            "period_closed",
            f"{period.title} đã kết thúc nhận báo cáo từ "
            f"{period.closes_at.astimezone(plan.tz):%d/%m/%Y}.",
        )
    _check_tasks(request, plan)
    return plan, period


def _check_tasks(request: SubmissionCreate, plan: Plan) -> None:
    own = {t.id: t for t in plan.tasks_of(request.unit_id)}
    defined = {i.code for i in plan.indicators}
    seen: set[str] = set()
    for report in request.tasks:
        if report.task_id in seen:
            raise SubmissionRejected(
                422, "duplicate_task", f"Nhiệm vụ “{report.task_id}” được báo cáo hai lần."
            )
        seen.add(report.task_id)
        task = own.get(report.task_id)
        if task is None:
            raise SubmissionRejected(
                422,
                "task_not_assigned",
                f"Nhiệm vụ “{report.task_id}” không được giao cho đơn vị này.",
            )
        codes = [v.code for v in report.indicators]
        for code in codes:
            if code not in defined:
                raise SubmissionRejected(
                    422, "unknown_indicator", f"Chỉ tiêu “{code}” không có trong kế hoạch."
                )
            if code not in task.indicator_codes:
                raise SubmissionRejected(
                    422,
                    "indicator_not_for_task",
                    f"Chỉ tiêu “{code}” không thuộc nhiệm vụ “{task.id}”.",
                )
        if len(set(codes)) != len(codes):
            raise SubmissionRejected(
                422,
                "duplicate_indicator",
                f"Một chỉ tiêu được nhập hai lần ở nhiệm vụ “{task.id}”.",
            )


def fingerprint(request: SubmissionCreate) -> str:
    """What an Idempotency-Key is bound to: the request's content, canonically serialised."""
    canonical = json.dumps(
        request.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def receipt_no(received_at: dt.datetime, plan: Plan, sequence: int) -> str:
    return f"TN-{received_at.astimezone(plan.tz):%Y}-{sequence:06d}"


def accepted_event(
    request: SubmissionCreate,
    plan: Plan,
    period: Period,
    *,
    submission_id: uuid.UUID,
    receipt: str,
    revision: int,
    supersedes: str | None,
    received_at: dt.datetime,
) -> SubmissionReceived:
    return SubmissionReceived(
        occurred_at=received_at,
        producer="submissions",
        correlation_id=submission_id,
        payload=SubmissionReceivedPayload(
            submission_id=str(submission_id),
            receipt_no=receipt,
            plan_id=plan.id,
            period_id=period.id,
            unit_id=request.unit_id,
            revision=revision,
            supersedes=supersedes,
            received_at=received_at,
            due_at=period.due_at,
            on_time=period.on_time(received_at),
            submitted_by=Submitter(**request.submitted_by.model_dump())
            if request.submitted_by
            else None,
            tasks=[
                TaskReport(
                    task_id=t.task_id,
                    status=t.status,
                    results=t.results,
                    indicators=[IndicatorValue(code=v.code, value=v.value) for v in t.indicators],
                    difficulties=t.difficulties,
                    proposals=t.proposals,
                )
                for t in request.tasks
            ],
        ),
    )
