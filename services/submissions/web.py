"""The JSON API units (and their tools) file reports through."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response

from contracts.plan import Indicator, IndicatorType
from services.common.admission import Busy
from services.common.errors import ApiProblem, not_ready
from services.common.mongo import Document
from services.common.periods import PeriodState, periods_around
from services.submissions import domain, handlers
from services.submissions.handlers import Intake
from services.submissions.models import SubmissionCreate, SubmissionReceipt, local_text


def _intake(request: Request) -> Intake:
    found: Intake | None = getattr(request.app.state, "intake", None)
    if found is None:
        raise not_ready()
    return found


IntakeDep = Annotated[Intake, Depends(_intake)]

router = APIRouter(prefix="/api/v1")


def _receipt(intake: Intake, doc: Document) -> SubmissionReceipt:
    plan = intake.catalog.plans[doc["plan_id"]]
    found = intake.catalog.period(doc["period_id"])
    title = found[1].title if found else doc["period_id"]
    unit = plan.unit(doc["unit_id"])
    unit_name = unit.name if unit else doc["unit_id"]
    correction = "" if doc["revision"] == 1 else f" (bổ sung lần {doc['revision'] - 1})"
    timing = "đúng hạn" if doc["on_time"] else "quá hạn"
    return SubmissionReceipt(
        submission_id=doc["_id"],
        receipt_no=doc["receipt_no"],
        period_id=doc["period_id"],
        unit_id=doc["unit_id"],
        revision=doc["revision"],
        received_at=doc["received_at"],
        received_at_local=local_text(doc["received_at"], plan.tz),
        due_at=doc["due_at"],
        on_time=doc["on_time"],
        server_time=intake.clock.now(),
        message=f"Đã tiếp nhận {title}{correction} của {unit_name} ({timing}). "
        f"Số tiếp nhận: {doc['receipt_no']}.",
    )


@router.post("/submissions", status_code=201, response_model=SubmissionReceipt)
async def create_submission(
    body: SubmissionCreate,
    response: Response,
    intake: IntakeDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=128)] = None,
) -> SubmissionReceipt:
    try:
        async with intake.admission.slot():
            doc, created = await handlers.submit(body, idempotency_key, intake)
    except Busy:
        raise ApiProblem(
            503,
            "busy",
            "Hệ thống đang nhận nhiều báo cáo cùng lúc; báo cáo chưa được lưu, vui lòng gửi "
            "lại sau ít giây.",
            headers={"Retry-After": "2"},
        ) from None
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/api/v1/periods/{doc['period_id']}/submissions/{doc['_id']}"
    return _receipt(intake, doc)


@router.post("/submissions/validate")
async def validate_submission(body: SubmissionCreate, intake: IntakeDep) -> dict[str, object]:
    """Check a report as filing would, storing nothing (forms, and the intake benchmark)."""
    _, period = domain.check(body, intake.catalog, intake.clock.now())
    return {"valid": True, "period_id": period.id, "unit_id": body.unit_id}


@router.get("/periods/{period_id}/submissions/{submission_id}", response_model=SubmissionReceipt)
async def get_submission(
    period_id: str, submission_id: str, intake: IntakeDep
) -> SubmissionReceipt:
    doc = await intake.store.get(period_id, submission_id)
    if doc is None:
        raise ApiProblem(404, "submission_not_found", "Không tìm thấy báo cáo này.")
    return _receipt(intake, doc)


@router.get("/periods")
async def open_periods(intake: IntakeDep) -> list[dict[str, object]]:
    """Periods that accept reports now, with each unit's tasks: what a form needs."""
    now = intake.clock.now()
    return [
        {
            "period_id": p.id,
            "title": p.title,
            "plan_id": plan.id,
            "due_at": p.due_at,
            "closes_at": p.closes_at,
            "due_local": f"trước ngày {p.due_at.astimezone(plan.tz):%d/%m/%Y}",
        }
        for plan in intake.catalog.plans.values()
        for p in periods_around(plan, now)
        if p.state(now) is PeriodState.OPEN
    ]


@router.get("/periods/{period_id}/units/{unit_id}/template")
async def template(period_id: str, unit_id: str, intake: IntakeDep) -> dict[str, object]:
    """A request body to fill in: the unit's tasks and the indicators each asks of this unit.

    Each indicator carries its answer field with a placeholder (``value`` 0 or the lower
    bound, ``flag`` false, ``text`` "") and ``about``: name, type, bounds, unit of measure,
    required. The body can be sent back as it is: ``about`` is accepted and ignored.
    """
    found = intake.catalog.period(period_id)
    if found is None:
        raise ApiProblem(404, "unknown_period", f"Không tìm thấy kỳ báo cáo “{period_id}”.")
    plan, period = found
    if plan.unit(unit_id) is None:
        raise ApiProblem(404, "unknown_unit", f"Đơn vị “{unit_id}” không có trong kế hoạch.")
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
