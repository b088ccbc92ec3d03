"""The JSON API units (and their tools) file reports through."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response

from contracts.plan import Plan
from services.common.admission import Busy
from services.common.auth import Principal, Role, SignedIn
from services.common.errors import ApiProblem, not_ready, problems
from services.common.mongo import Document
from services.common.periods import PeriodState, periods_around
from services.submissions import domain, handlers
from services.submissions.access import AuditDep, ensure_files, ensure_reads, report_not_found
from services.submissions.audit import Action
from services.submissions.handlers import Intake
from services.submissions.models import (
    SubmissionCreate,
    SubmissionReceipt,
    SubmitterCreate,
    local_text,
)
from services.submissions.template import blank_report


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


FILING_PROBLEMS = problems(
    403,
    404,
    409,
    422,
    why={
        403: "Chỉ cán bộ của đơn vị mới gửi báo cáo của đơn vị mình (forbidden), hoặc thiếu "
        "mã CSRF (csrf_failed).",
        404: "Đơn vị khác với đơn vị của tài khoản (not_found; được ghi vào nhật ký).",
        409: "Kỳ báo cáo chưa mở hoặc đã đóng, yêu cầu cùng Idempotency-Key đang được xử lý, "
        "hoặc báo cáo đang được cập nhật đồng thời.",
        422: "Dữ liệu không hợp lệ; kỳ, đơn vị, nhiệm vụ, chỉ tiêu hay tệp đính kèm không khớp "
        "với kế hoạch; hoặc khóa Idempotency-Key đã dùng cho nội dung khác. details nêu từng "
        "trường.",
    },
)


@router.post(
    "/submissions",
    status_code=201,
    response_model=SubmissionReceipt,
    responses={
        200: {
            "model": SubmissionReceipt,
            "description": "Đã nhận từ trước (cùng Idempotency-Key).",
        },
        **FILING_PROBLEMS,
        **problems(413, why={413: "Nội dung gửi lên hoặc báo cáo quá lớn để chuyển đi."}),
    },
)
async def create_submission(
    body: SubmissionCreate,
    request: Request,
    response: Response,
    intake: IntakeDep,
    principal: SignedIn,
    audit: AuditDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=128)] = None,
) -> SubmissionReceipt:
    await ensure_files(audit, principal, request, body.unit_id, body.period_id)
    body = _signed(body, principal)
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
    # Recorded on the repeat too: if the first answer failed at this record (after the report
    # was stored), the client's retry with the same Idempotency-Key writes it; once per report.
    await audit.record(
        Action.SUBMISSION,
        actor=principal,
        request=request,
        unit_id=doc["unit_id"],
        period_id=doc["period_id"],
        once=f"submission:{doc['_id']}",
        submission_id=str(doc["_id"]),
        revision=doc["revision"],
        receipt_no=doc["receipt_no"],
    )
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/api/v1/periods/{doc['period_id']}/submissions/{doc['_id']}"
    return _receipt(intake, doc)


@router.post("/submissions/validate", responses=FILING_PROBLEMS)
async def validate_submission(
    body: SubmissionCreate,
    request: Request,
    intake: IntakeDep,
    principal: SignedIn,
    audit: AuditDep,
) -> dict[str, object]:
    """Check a report as filing would, storing nothing (forms, and the intake benchmark)."""
    await ensure_files(audit, principal, request, body.unit_id, body.period_id)
    now = intake.clock.now()
    terms = await handlers.terms_for(body, now, intake)
    _, period = domain.check(body, intake.catalog, now, terms)
    return {"valid": True, "period_id": period.id, "unit_id": body.unit_id}


@router.get(
    "/periods/{period_id}/submissions/{submission_id}",
    response_model=SubmissionReceipt,
    responses=problems(404, why={404: "Không có báo cáo này (hoặc của đơn vị khác)."}),
)
async def get_submission(
    period_id: str,
    submission_id: str,
    request: Request,
    intake: IntakeDep,
    principal: SignedIn,
    audit: AuditDep,
) -> SubmissionReceipt:
    # A period no plan has is not looked up: its id would name a collection ('$' is refused).
    known = intake.catalog.period(period_id) is not None
    doc = await intake.store.get(period_id, submission_id) if known else None
    if doc is None:
        raise report_not_found()
    await ensure_reads(
        audit, principal, request, doc["unit_id"], period_id, missing=report_not_found()
    )
    return _receipt(intake, doc)


@router.get("/periods")
async def open_periods(intake: IntakeDep, principal: SignedIn) -> list[dict[str, object]]:
    """Periods that accept reports now; an officer sees those of plans their unit reports to."""
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
        if _concerns(plan, principal)
        for p in periods_around(plan, now)
        if p.state(now) is PeriodState.OPEN
    ]


def _concerns(plan: Plan, principal: Principal) -> bool:
    if principal.role is Role.OFFICE:
        return principal.acts_on(plan)
    return principal.reads_all or any(u.id == principal.unit_id for u in plan.reporting_units())


def _signed(body: SubmissionCreate, principal: Principal) -> SubmissionCreate:
    """Who filed is who signed in: the name comes from the account when the body has none."""
    if body.submitted_by is not None or not principal.name:
        return body
    return body.model_copy(update={"submitted_by": SubmitterCreate(name=principal.name)})


@router.get(
    "/periods/{period_id}/units/{unit_id}/template",
    responses=problems(404, why={404: "Kỳ báo cáo hay đơn vị không có (hoặc đơn vị khác)."}),
)
async def template(
    period_id: str,
    unit_id: str,
    request: Request,
    intake: IntakeDep,
    principal: SignedIn,
    audit: AuditDep,
) -> dict[str, object]:
    """A request body to fill in: the unit's tasks and the indicators each asks of this unit.

    Each indicator carries its answer field with a placeholder (``value`` 0 or the lower
    bound, ``flag`` false, ``text`` "") and ``about``: name, type, bounds, unit of measure,
    required. The body can be sent back as it is: ``about`` is accepted and ignored.
    """
    found = intake.catalog.period(period_id)
    if found is None:
        raise ApiProblem(404, "unknown_period", f"Không tìm thấy kỳ báo cáo “{period_id}”.")
    plan, period = found
    await ensure_reads(audit, principal, request, unit_id, period_id)
    if plan.unit(unit_id) is None:
        raise ApiProblem(404, "unknown_unit", f"Đơn vị “{unit_id}” không có trong kế hoạch.")
    return blank_report(plan, period, unit_id)
