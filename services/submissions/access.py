"""Who may see and change which unit's reports, decided on the server for every request.

Another unit's report answers 404, exactly as a report that does not exist: an officer learns
nothing about other units, not even that an id is taken. Each such attempt goes to the audit
trail, so the office sees who tried.

Office staff act on the plans their unit consolidates (``Principal.acts_on``): another plan's
periods answer them as another unit's report answers an officer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.common.auth import Principal, Role
from services.common.errors import ApiProblem, not_ready
from services.submissions.audit import Action, AuditTrail


def not_found() -> ApiProblem:
    return ApiProblem(404, "not_found", "Không tìm thấy nội dung được yêu cầu.")


def report_not_found() -> ApiProblem:
    """A report that is not there, or not the caller's to see: one answer for both."""
    return ApiProblem(404, "submission_not_found", "Không tìm thấy báo cáo này.")


def _audit(request: Request) -> AuditTrail:
    found: AuditTrail | None = getattr(request.app.state, "audit", None)
    if found is None:
        raise not_ready()
    return found


AuditDep = Annotated[AuditTrail, Depends(_audit)]


async def deny(
    audit: AuditTrail,
    principal: Principal,
    request: Request,
    *,
    unit_id: str | None = None,
    period_id: str | None = None,
    reason: str,
    answer: ApiProblem | None = None,
) -> ApiProblem:
    """Record the refused attempt and return the 404 to raise: ``answer``, the route's own
    answer for a thing that does not exist, so that the two cannot be told apart."""
    await audit.record(
        Action.DENIED,
        actor=principal,
        request=request,
        unit_id=unit_id,
        period_id=period_id,
        outcome="denied",
        reason=reason,
    )
    return answer or not_found()


def serves_period(request: Request, principal: Principal, period_id: str) -> bool:
    """False only for office staff and a period of a plan their unit does not consolidate (a
    period of no plan is left to the route, which answers its own 404)."""
    if principal.role is not Role.OFFICE:
        return True
    intake = getattr(request.app.state, "intake", None)
    if intake is None:
        raise not_ready()
    plan = intake.catalog.plans.get(period_id.partition(".")[0])
    return plan is None or principal.acts_on(plan)


async def ensure_period(
    audit: AuditTrail,
    principal: Principal,
    request: Request,
    period_id: str,
    unit_id: str | None = None,
    *,
    missing: ApiProblem | None = None,
) -> None:
    """404 (audited) for office staff of another plan's period; everyone else passes."""
    if not serves_period(request, principal, period_id):
        raise await deny(
            audit,
            principal,
            request,
            unit_id=unit_id,
            period_id=period_id,
            reason="plan",
            answer=missing,
        )


async def ensure_reads(
    audit: AuditTrail,
    principal: Principal,
    request: Request,
    unit_id: str,
    period_id: str | None = None,
    *,
    missing: ApiProblem | None = None,
) -> None:
    """404 (audited; ``missing`` if given) unless ``principal`` may read ``unit_id``'s reports
    (of ``period_id``'s plan, for office staff)."""
    if not principal.can_read_unit(unit_id):
        raise await deny(
            audit,
            principal,
            request,
            unit_id=unit_id,
            period_id=period_id,
            reason="read",
            answer=missing,
        )
    if period_id is not None:
        await ensure_period(audit, principal, request, period_id, unit_id, missing=missing)


async def ensure_files(
    audit: AuditTrail,
    principal: Principal,
    request: Request,
    unit_id: str,
    period_id: str | None = None,
) -> None:
    """Only the unit's own officer (or its machine client) files; 404 for another unit, 403
    for a role that reads but never files (the office, admins, the province)."""
    if principal.can_file_for(unit_id):
        return
    if principal.role is Role.OFFICER:
        raise await deny(
            audit, principal, request, unit_id=unit_id, period_id=period_id, reason="file"
        )
    await audit.record(
        Action.DENIED,
        actor=principal,
        request=request,
        unit_id=unit_id,
        period_id=period_id,
        outcome="denied",
        reason="file_role",
    )
    raise ApiProblem(
        403,
        "forbidden",
        "Chỉ cán bộ của đơn vị mới gửi được báo cáo của đơn vị mình.",
    )
