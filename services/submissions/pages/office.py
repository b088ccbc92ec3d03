"""Office staff's view of a period: every unit expected to report, where it stands, the rates,
and the way to the consolidated report."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request, Response

from services.common.auth import Role
from services.common.errors import ApiProblem
from services.submissions.access import AuditDep, ensure_period
from services.submissions.consolidated import ConsolidatedReports, version_of
from services.submissions.overview import (
    PERIOD_STATE_LABELS,
    REVIEW_LABELS,
    UnitState,
    overview,
    review_decision,
)
from services.submissions.pages.base import PageRoute, Viewer, allow, local, render, settings_of
from services.submissions.review import terms_from
from services.submissions.review_api import OfficeDep
from services.submissions.review_handlers import Office
from services.submissions.web import IntakeDep

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def status_path(period_id: str) -> str:
    return f"/periods/{period_id}/status"


def consolidated_url(request: Request, period_id: str) -> str:
    return f"{settings_of(request).consolidate_url.rstrip('/')}/api/v1/periods/{period_id}/reports"


@router.get("/periods/{period_id}/status")
async def period_status(
    period_id: str,
    request: Request,
    principal: Viewer,
    intake: IntakeDep,
    office: OfficeDep,
    audit: AuditDep,
) -> Response:
    allow(principal, Role.OFFICE, Role.ADMIN, Role.READER)
    await ensure_period(audit, principal, request, period_id)
    found = intake.catalog.period(period_id)
    if found is None:
        raise ApiProblem(404, "unknown_period", f"Không tìm thấy kỳ báo cáo “{period_id}”.")
    plan, period = found
    now = intake.clock.now()
    heads = {h["unit_id"]: h for h in await intake.store.period_heads(period.id)}
    exceptions, due, pending = await _decisions(office, period.id)
    summary = overview(plan, period, heads, now, exceptions, due)
    reports: ConsolidatedReports = request.app.state.consolidated
    consolidate_url = settings_of(request).consolidate_url
    versions = [version_of(d, consolidate_url) for d in await reports.latest(period.id)]
    return render(
        request,
        "period_status.html",
        title=f"{period.title}: tình hình báo cáo",
        plan=plan,
        period=period,
        state_label=PERIOD_STATE_LABELS[period.state(now)],
        summary=summary,
        states=UnitState,
        review_labels=REVIEW_LABELS,
        review_decision=review_decision,
        local=local,
        consolidated=consolidated_url(request, period.id),
        versions=versions,
        pending=pending,
        due=due,
    )


async def _decisions(
    office: Office, period_id: str
) -> tuple[dict[str, dt.datetime], dict[str, dt.datetime], set[str]]:
    """Per unit: until when it may file after the lock, its extended due instant, and whether
    it waits for a decision on an extension."""
    exceptions = {d["unit_id"]: d for d in await office.store.exceptions(period_id)}
    extensions = {d["unit_id"]: d for d in await office.store.extensions(period_id)}
    terms = {
        unit: terms_from(extensions.get(unit), exceptions.get(unit))
        for unit in exceptions.keys() | extensions.keys()
    }
    pending = {
        unit for unit, d in extensions.items() if (d.get("request") or {}).get("state") == "pending"
    }
    return (
        {u: t.exception_until for u, t in terms.items() if t.exception_until},
        {u: t.due_at for u, t in terms.items() if t.due_at},
        pending,
    )
