"""Deciding whether a report can be accepted, and what the accepted report is. Pure."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Sequence

from contracts.events import (
    AttachmentRef,
    IndicatorValue,
    SubmissionReceived,
    SubmissionReceivedPayload,
    Submitter,
    TaskReport,
)
from contracts.plan import KIND_LABELS, Indicator, IndicatorType, Plan, Task
from services.common.errors import ApiProblem
from services.common.periods import Period, PeriodState
from services.common.reference import Catalog
from services.submissions.models import IndicatorValueCreate, SubmissionCreate
from services.submissions.review import NO_TERMS, UnitTerms


class SubmissionRejected(ApiProblem):
    """The report cannot be accepted; ``code`` is for machines, the message for people."""


def check(
    request: SubmissionCreate, catalog: Catalog, now: dt.datetime, terms: UnitTerms = NO_TERMS
) -> tuple[Plan, Period]:
    """The plan and period the report belongs to, or :class:`SubmissionRejected`.

    ``terms``: what office staff granted the unit (an extension moves its lock, an exception
    lets it file after the lock), see ``review``.
    """
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
    if state is PeriodState.CLOSED and not terms.may_file(period, now):
        raise SubmissionRejected(
            409,
            "period_closed",
            f"{period.title} đã kết thúc nhận báo cáo từ "
            f"{terms.lock(period).astimezone(plan.tz):%d/%m/%Y}; sau thời điểm khóa chỉ nhận "
            "báo cáo khi Cơ quan tổng hợp cho phép nộp ngoại lệ.",
        )
    _check_tasks(request, plan)
    return plan, period


def _check_tasks(request: SubmissionCreate, plan: Plan) -> None:
    own = {t.id: t for t in plan.tasks_of(request.unit_id)}
    defined = {i.code: i for i in plan.indicators}
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
        asked = {i.code: i for i in plan.indicators_for(task, request.unit_id)}
        codes = [v.code for v in report.indicators]
        for answer in report.indicators:
            code = answer.code
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
            if code not in asked:
                raise SubmissionRejected(
                    422,
                    "indicator_not_for_unit",
                    f"{_named(defined[code], task)} {_whom(plan, task, code)}; "
                    "đơn vị này không nhập chỉ tiêu này.",
                )
            _check_answer(answer, defined[code], task)
        if len(set(codes)) != len(codes):
            raise SubmissionRejected(
                422,
                "duplicate_indicator",
                f"Một chỉ tiêu được nhập hai lần ở nhiệm vụ “{task.id}”.",
            )
        answered = {v.code for v in report.indicators if v.text is None or v.text.strip()}
        for wanted in asked.values():
            if wanted.required and wanted.code not in answered:
                raise SubmissionRejected(
                    422,
                    "indicator_required",
                    f"{_named(defined[wanted.code], task)} là chỉ tiêu bắt buộc đối với đơn vị "
                    "này nhưng chưa được nhập.",
                )


_ROLE_NAMES = {"lead": "chủ trì", "cooperating": "phối hợp"}
_FIELD_OF = {
    IndicatorType.COUNT: "value",
    IndicatorType.NUMBER: "value",
    IndicatorType.PERCENTAGE: "value",
    IndicatorType.BOOLEAN: "flag",
    IndicatorType.TEXT: "text",
}
_EXPECTED = {
    IndicatorType.COUNT: "một số nguyên không âm ghi ở trường “value” (ví dụ 4)",
    IndicatorType.NUMBER: "một số ghi ở trường “value” (ví dụ 4 hoặc 2.5)",
    IndicatorType.PERCENTAGE: "một tỷ lệ phần trăm ghi ở trường “value” (ví dụ 87.5)",
    IndicatorType.BOOLEAN: "true hoặc false ghi ở trường “flag”",
    IndicatorType.TEXT: "một đoạn văn bản ghi ở trường “text”",
}


def _whom(plan: Plan, task: Task, code: str) -> str:
    """Whom the task asks this indicator of, in words."""
    asked = next(i for i in task.indicators if i.code == code)
    roles = " hoặc ".join(_ROLE_NAMES[r] for r in asked.roles)
    whom = f"chỉ dành cho đơn vị {roles}"
    if asked.unit_kinds:
        whom += " thuộc loại: " + ", ".join(KIND_LABELS[k] for k in asked.unit_kinds)
    return whom


def _named(indicator: Indicator, task: Task) -> str:
    return f"Chỉ tiêu “{indicator.name}” ({indicator.code}) ở nhiệm vụ {task.section}"


def _number(x: float) -> str:
    """A figure as the user typed it: 250, not 250.0."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(float(x))


def _check_answer(answer: IndicatorValueCreate, indicator: Indicator, task: Task) -> None:
    """The answer is of the indicator's type and within its bounds and length."""
    given = answer.given()
    if given != [_FIELD_OF[indicator.type]]:
        raise SubmissionRejected(
            422,
            "indicator_wrong_type",
            f"{_named(indicator, task)} cần {_EXPECTED[indicator.type]}"
            + (f"; đã nhập ở trường {', '.join(f'“{g}”' for g in given)}." if given else "."),
        )
    if answer.text is not None and len(answer.text) > indicator.max_length:
        raise SubmissionRejected(
            422,
            "indicator_too_long",
            f"{_named(indicator, task)} dài tối đa {indicator.max_length} ký tự; "
            f"đã nhập {len(answer.text)} ký tự.",
        )
    if answer.value is None:
        return
    value = answer.value
    if indicator.type is IndicatorType.COUNT and not float(value).is_integer():
        raise SubmissionRejected(
            422,
            "indicator_not_whole",
            f"{_named(indicator, task)} là số đếm, phải là số nguyên; đã nhập {_number(value)}.",
        )
    low, high = indicator.bounds
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            allowed = f"từ {_number(low)} đến {_number(high)}"
        elif low is not None:
            allowed = f"từ {_number(low)} trở lên"
        else:
            allowed = f"không lớn hơn {_number(high or 0)}"
        raise SubmissionRejected(
            422,
            "indicator_out_of_bounds",
            f"{_named(indicator, task)} phải {allowed}; đã nhập {_number(value)}.",
        )


_ANSWER_FIELDS = {"value", "flag", "text"}


def fingerprint(request: SubmissionCreate) -> str:
    """What an Idempotency-Key is bound to: the request's content, canonically serialised."""
    content = request.model_dump(mode="json")
    if not content.get("attachments"):
        del content["attachments"]  # a body from before attachments keeps its fingerprint
    for task in content["tasks"]:
        # Only the answer fields given: a body from before flag/text keeps its fingerprint.
        task["indicators"] = [
            {k: v for k, v in i.items() if v is not None or k not in _ANSWER_FIELDS}
            for i in task["indicators"]
        ]
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
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
    due_at: dt.datetime | None = None,
    on_time: bool | None = None,
    attachments: Sequence[AttachmentRef] = (),
) -> SubmissionReceived:
    """``due_at``: the unit's due instant (an extension's, else the period's); ``on_time``:
    as ``review.on_time`` judged it (else against ``due_at``)."""
    due_at = due_at or period.due_at
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
            due_at=due_at,
            on_time=received_at < due_at if on_time is None else on_time,
            submitted_by=Submitter(**request.submitted_by.model_dump())
            if request.submitted_by
            else None,
            tasks=[
                TaskReport(
                    task_id=t.task_id,
                    status=t.status,
                    results=t.results,
                    indicators=[_indicator_value(v) for v in t.indicators],
                    difficulties=t.difficulties,
                    proposals=t.proposals,
                )
                for t in request.tasks
            ],
            attachments=list(attachments),
        ),
    )


def _indicator_value(answer: IndicatorValueCreate) -> IndicatorValue:
    """The event's form: ``value`` stays a figure for readers that know nothing else."""
    if answer.flag is not None:
        return IndicatorValue(code=answer.code, value=1 if answer.flag else 0, flag=answer.flag)
    if answer.text is not None:
        return IndicatorValue(code=answer.code, value=0, text=answer.text)
    return IndicatorValue(code=answer.code, value=answer.value or 0)
