"""HTTP: consolidate a period on request and list its reports."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, status

from services.common.auth import ReadsAll, Staff
from services.common.errors import ApiProblem, not_ready, problems
from services.consolidate.handlers import (
    Consolidation,
    PeriodNotOpen,
    UnknownPeriod,
    consolidate_now,
    preview,
)


def _consolidation(request: Request) -> Consolidation:
    found: Consolidation | None = getattr(request.app.state, "consolidation", None)
    if found is None:
        raise not_ready()
    return found


ConsolidationDep = Annotated[Consolidation, Depends(_consolidation)]

router = APIRouter(prefix="/api/v1")


def _period_not_found(period_id: str) -> ApiProblem:
    return ApiProblem(
        status.HTTP_404_NOT_FOUND,
        "period_not_found",
        f"Không tìm thấy kỳ báo cáo “{period_id}” trong các kế hoạch đang theo dõi.",
    )


UNKNOWN_PERIOD = {404: "Không có kỳ báo cáo này trong các kế hoạch đang theo dõi."}


@router.post(
    "/periods/{period_id}/consolidate",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(404, 409, why={**UNKNOWN_PERIOD, 409: "Kỳ báo cáo chưa mở."}),
)
async def consolidate_period(
    period_id: str,
    deps: ConsolidationDep,
    _: Staff,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> dict[str, Any]:
    """Consolidate now; 202 because the event is published by the outbox right after."""
    try:
        payload = await consolidate_now(
            period_id, c=deps, request_id=idempotency_key or str(uuid.uuid4())
        )
    except UnknownPeriod as error:
        raise _period_not_found(period_id) from error
    except PeriodNotOpen as error:
        raise ApiProblem(
            status.HTTP_409_CONFLICT,
            "period_not_open",
            f"Kỳ báo cáo “{period_id}” chưa mở nên chưa có gì để tổng hợp.",
        ) from error
    return payload.model_dump(mode="json")


@router.get("/periods/{period_id}/preview", responses=problems(404, why=UNKNOWN_PERIOD))
async def preview_period(period_id: str, deps: ConsolidationDep, _: ReadsAll) -> dict[str, Any]:
    """The consolidation as it would be now (who reported, on time or late), not published."""
    try:
        payload = await preview(period_id, c=deps)
    except UnknownPeriod as error:
        raise _period_not_found(period_id) from error
    return payload.model_dump(mode="json")


@router.get("/periods/{period_id}/reports", responses=problems(404, why=UNKNOWN_PERIOD))
async def list_reports(period_id: str, deps: ConsolidationDep, _: ReadsAll) -> dict[str, Any]:
    """The period's reports, latest version first."""
    if deps.catalog.period(period_id) is None:
        raise _period_not_found(period_id)
    reports = await deps.store.reports(period_id)
    return {
        "period_id": period_id,
        "reports": [{**r.payload.model_dump(mode="json"), "cause": r.cause} for r in reports],
    }
