"""HTTP edge: the schedule as the service sees it, a unit's own due instant, a scan on demand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from pydantic import BaseModel

from services.common.auth import Admin, SignedIn
from services.common.clock import Clock
from services.common.errors import ApiProblem, problems
from services.common.mongo import Document
from services.common.periods import PeriodState, periods_around
from services.common.reference import Catalog


class PeriodPublic(BaseModel):
    plan_id: str
    period_id: str
    title: str
    report_kind: str
    year: int
    timezone: str
    opens_at: dt.datetime
    opens_at_local: dt.datetime
    due_at: dt.datetime
    due_at_local: dt.datetime
    """The first instant that is late: 'before 15/6' is midnight starting 15 June, local time."""
    closes_at: dt.datetime
    closes_at_local: dt.datetime
    state: PeriodState


class PeriodsPublic(BaseModel):
    now: dt.datetime
    periods: list[PeriodPublic]


class ScanPublic(BaseModel):
    recorded: int


class UnitDuePublic(BaseModel):
    """One unit's deadlines in a period, as this service schedules its announcements."""

    plan_id: str
    period_id: str
    unit_id: str
    timezone: str
    due_at: dt.datetime
    """The unit's due instant: an approved extension's, else the period's."""
    due_at_local: dt.datetime
    closes_at: dt.datetime
    closes_at_local: dt.datetime
    period_due_at: dt.datetime
    extended: bool
    extension_request_id: str | None = None
    exception_until: dt.datetime | None = None
    exception_reason: str | None = None


UnitTermsReader = Callable[[str, str], Awaitable[tuple[Document | None, Document | None]]]
"""(period id, unit id) -> (the unit's approved extension, its filing exception)."""


def _not_found() -> ApiProblem:
    return ApiProblem(404, "not_found", "Không tìm thấy kỳ báo cáo hoặc đơn vị này.")


def build_router(
    catalog: Catalog,
    clock: Clock,
    run_scan: Callable[[], Awaitable[int]],
    unit_terms: UnitTermsReader | None = None,
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["deadlines"])

    @router.get("/periods")
    async def list_periods(_: SignedIn) -> PeriodsPublic:
        now = clock.now()
        found = []
        for plan in catalog.plans.values():
            tz = plan.tz
            for period in periods_around(plan, now):
                found.append(
                    PeriodPublic(
                        plan_id=plan.id,
                        period_id=period.id,
                        title=period.title,
                        report_kind=period.kind.code,
                        year=period.year,
                        timezone=plan.timezone,
                        opens_at=period.opens_at,
                        opens_at_local=period.opens_at.astimezone(tz),
                        due_at=period.due_at,
                        due_at_local=period.due_at.astimezone(tz),
                        closes_at=period.closes_at,
                        closes_at_local=period.closes_at.astimezone(tz),
                        state=period.state(now),
                    )
                )
        return PeriodsPublic(now=now, periods=found)

    @router.get(
        "/periods/{period_id}/units/{unit_id}",
        response_model=UnitDuePublic,
        responses=problems(401, 404, 503),
    )
    async def unit_due(period_id: str, unit_id: str, principal: SignedIn) -> UnitDuePublic:
        """The unit's due and lock instants (moved by an approved extension) and its filing
        exception; an officer sees only their own unit (404 for another)."""
        found = catalog.period(period_id)
        if found is None or not principal.can_read_unit(unit_id):
            raise _not_found()
        plan, period = found
        if not any(u.id == unit_id for u in plan.reporting_units()):
            raise _not_found()
        extension, exception = await unit_terms(period.id, unit_id) if unit_terms else (None, None)
        due_at = extension["due_at"] if extension else period.due_at
        closes_at = max(extension["closes_at"], period.closes_at) if extension else period.closes_at
        tz = plan.tz
        return UnitDuePublic(
            plan_id=plan.id,
            period_id=period.id,
            unit_id=unit_id,
            timezone=plan.timezone,
            due_at=due_at,
            due_at_local=due_at.astimezone(tz),
            closes_at=closes_at,
            closes_at_local=closes_at.astimezone(tz),
            period_due_at=period.due_at,
            extended=extension is not None,
            extension_request_id=extension["request_id"] if extension else None,
            exception_until=exception["until"] if exception else None,
            exception_reason=exception["reason"] if exception else None,
        )

    @router.post("/scan")
    async def scan_now(_: Admin) -> ScanPublic:
        return ScanPublic(recorded=await run_scan())

    return router
