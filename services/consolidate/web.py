"""HTTP: consolidate a period on request and list its reports."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Request, Response, status
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from contracts.report_v2 import ReportConsolidatedV2Payload, ReportSummary
from services.common.auth import Principal, ReadsAll, Staff
from services.common.errors import ApiProblem, not_ready, problems
from services.consolidate import detail, docx_report, pdf, xlsx_annex
from services.consolidate.content import STATUS_LABELS
from services.consolidate.handlers import (
    Consolidation,
    PeriodNotOpen,
    UnknownPeriod,
    consolidate_now,
    live_status,
    preview,
)
from services.consolidate.status import STATE_LABELS, PeriodStatus


def _consolidation(request: Request) -> Consolidation:
    found: Consolidation | None = getattr(request.app.state, "consolidation", None)
    if found is None:
        raise not_ready()
    return found


ConsolidationDep = Annotated[Consolidation, Depends(_consolidation)]

router = APIRouter(prefix="/api/v1")
pages = APIRouter()
TEMPLATES = Jinja2Templates(directory=Path(__file__).with_name("templates"))


def _period_not_found(period_id: str) -> ApiProblem:
    return ApiProblem(
        status.HTTP_404_NOT_FOUND,
        "period_not_found",
        f"Không tìm thấy kỳ báo cáo “{period_id}” trong các kế hoạch đang theo dõi.",
    )


UNKNOWN_PERIOD = {404: "Không có kỳ báo cáo này trong các kế hoạch đang theo dõi."}


def _in_scope(deps: Consolidation, who: Principal, period_id: str) -> None:
    """Office staff of another plan learn nothing of this one: the same 404 as a period that
    does not exist (a period of no plan is left to the route, which answers that 404)."""
    found = deps.catalog.period(period_id)
    if found is not None and not who.acts_on(found[0]):
        raise _period_not_found(period_id)


@router.post(
    "/periods/{period_id}/consolidate",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(404, 409, why={**UNKNOWN_PERIOD, 409: "Kỳ báo cáo chưa mở."}),
)
async def consolidate_period(
    period_id: str,
    deps: ConsolidationDep,
    who: Staff,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> dict[str, Any]:
    """A draft version now (its document marked "DỰ THẢO"), recorded with who asked; 202
    because the event is published by the outbox right after. The answer is the version as
    ReportConsolidated v2 carries it (its per-unit detail in the file ``detail`` names)."""
    _in_scope(deps, who, period_id)
    try:
        payload = await consolidate_now(
            period_id,
            c=deps,
            request_id=idempotency_key or str(uuid.uuid4()),
            requested_by=who.subject,
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
async def preview_period(period_id: str, deps: ConsolidationDep, who: ReadsAll) -> dict[str, Any]:
    """The consolidation as it would be now (who reported, on time or late), not published."""
    _in_scope(deps, who, period_id)
    try:
        payload = await preview(period_id, c=deps)
    except UnknownPeriod as error:
        raise _period_not_found(period_id) from error
    return payload.model_dump(mode="json")


@router.get("/periods/{period_id}/reports", responses=problems(404, why=UNKNOWN_PERIOD))
async def list_reports(period_id: str, deps: ConsolidationDep, who: ReadsAll) -> dict[str, Any]:
    """The period's reports, latest version first."""
    _in_scope(deps, who, period_id)
    if deps.catalog.period(period_id) is None:
        raise _period_not_found(period_id)
    reports = await deps.store.reports(period_id)
    return {
        "period_id": period_id,
        "reports": [{**r.payload.model_dump(mode="json"), "cause": r.cause} for r in reports],
    }


NO_FILE = {404: "Không có kỳ báo cáo, phiên bản báo cáo hoặc tệp này."}


def _files_of(payload: ReportSummary) -> dict[str, str]:
    """The files a recorded version names, each with its SHA-256."""
    named = {}
    if payload.document is not None:
        named[payload.document.filename] = payload.document.sha256
        named.update({f.filename: f.sha256 for f in payload.document.files})
    if isinstance(payload, ReportConsolidatedV2Payload):
        named[payload.detail.filename] = payload.detail.sha256
    return named


@router.get(
    "/periods/{period_id}/reports/{report_id}/files/{name}",
    responses={
        **problems(404, why=NO_FILE),
        200: {
            "description": "the file (DOCX, XLSX, PDF, or the JSON of the per-unit detail)",
            "content": {
                **{
                    media_type: {"schema": {"type": "string", "format": "binary"}}
                    for media_type in (
                        docx_report.MEDIA_TYPE,
                        xlsx_annex.MEDIA_TYPE,
                        pdf.MEDIA_TYPE,
                    )
                },
                # The content of schemas/baocao.report-consolidated-detail.v2.json.
                detail.MEDIA_TYPE: {"schema": {"type": "object"}},
            },
        },
        304: {"description": "If-None-Match names this file's ETag: the copy held is current"},
    },
    response_class=Response,
)
async def download_file(
    period_id: str,
    report_id: str,
    name: str,
    deps: ConsolidationDep,
    who: ReadsAll,
    if_none_match: Annotated[str | None, Header(max_length=512)] = None,
) -> Response:
    """One file of a report version, as its DocumentRef or its v2 detail names it (the ETag is
    its SHA-256)."""
    _in_scope(deps, who, period_id)
    if deps.catalog.period(period_id) is None:
        raise _period_not_found(period_id)
    stored = await deps.store.report(period_id, report_id)
    sha256 = _files_of(stored.payload) if stored else {}
    found = None
    if stored is not None and name in sha256:
        if if_none_match and f'"{sha256[name]}"' in _etags(if_none_match):
            return Response(status_code=304, headers={"ETag": f'"{sha256[name]}"'})
        found = await deps.files.get(period_id, stored.event_id, name)
    if found is None:
        raise ApiProblem(
            status.HTTP_404_NOT_FOUND,
            "file_not_found",
            f"Không có tệp “{name}” của báo cáo này.",
        )
    return Response(
        found.data,
        media_type=found.media_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(found.filename)}",
            "ETag": f'"{found.sha256}"',
            "Cache-Control": "private, max-age=0",
        },
    )


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",")}


async def _status(period_id: str, deps: Consolidation) -> PeriodStatus:
    try:
        return await live_status(period_id, c=deps)
    except UnknownPeriod as error:
        raise _period_not_found(period_id) from error


@router.get("/periods/{period_id}/status", responses=problems(404, why=UNKNOWN_PERIOD))
async def period_status(period_id: str, deps: ConsolidationDep, who: ReadsAll) -> PeriodStatus:
    """Live: expected, received, on time, late, missing, returned; per unit; per task."""
    _in_scope(deps, who, period_id)
    return await _status(period_id, deps)


@pages.get(
    "/periods/{period_id}/status",
    response_class=HTMLResponse,
    responses=problems(404, why=UNKNOWN_PERIOD),
)
async def period_status_page(
    period_id: str, request: Request, deps: ConsolidationDep, who: Staff
) -> HTMLResponse:
    """The same for office staff, as a page."""
    _in_scope(deps, who, period_id)
    found = await _status(period_id, deps)
    plan = deps.catalog.period(period_id)
    tz = plan[0].tz if plan else dt.UTC
    return TEMPLATES.TemplateResponse(
        request,
        "period_status.html",
        {
            "s": found,
            "labels": STATE_LABELS,
            "task_labels": STATUS_LABELS,
            "local": lambda at: f"{at.astimezone(tz):%H:%M ngày %d/%m/%Y}",
            "portal_url": request.app.state.runtime.settings.portal_url.rstrip("/"),
            "json_url": f"/api/v1/periods/{period_id}/status",
        },
    )
