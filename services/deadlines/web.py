"""HTTP edge for operators: the schedule as the service sees it, and a scan on demand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from pydantic import BaseModel

from services.common.auth import Admin, SignedIn
from services.common.clock import Clock
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


def build_router(
    catalog: Catalog, clock: Clock, run_scan: Callable[[], Awaitable[int]]
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

    @router.post("/scan")
    async def scan_now(_: Admin) -> ScanPublic:
        return ScanPublic(recorded=await run_scan())

    return router
