"""Who may see and change which unit's reports, decided on the server for every request.

Another unit's report answers 404, exactly as a report that does not exist: an officer learns
nothing about other units, not even that an id is taken. Each such attempt goes to the audit
trail, so the office sees who tried.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.common.auth import Principal, Role
from services.common.errors import ApiProblem, not_ready
from services.submissions.audit import Action, AuditTrail


def not_found() -> ApiProblem:
    return ApiProblem(404, "not_found", "Không tìm thấy nội dung được yêu cầu.")


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
) -> ApiProblem:
    """Record the refused attempt and return the 404 to raise."""
    await audit.record(
        Action.DENIED,
        actor=principal,
        request=request,
        unit_id=unit_id,
        period_id=period_id,
        outcome="denied",
        reason=reason,
    )
    return not_found()


async def ensure_reads(
    audit: AuditTrail,
    principal: Principal,
    request: Request,
    unit_id: str,
    period_id: str | None = None,
) -> None:
    """404 (audited) unless ``principal`` may read ``unit_id``'s reports."""
    if not principal.can_read_unit(unit_id):
        raise await deny(
            audit, principal, request, unit_id=unit_id, period_id=period_id, reason="read"
        )


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
