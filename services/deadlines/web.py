"""HTTP edge: the periods as the service sees them, a unit's own due instant, each unit's reminder
schedule of a period, a unit's calendar feed, a scan on demand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from services.common.auth import Admin, InvalidToken, ReadsAll, SignedIn
from services.common.clock import Clock
from services.common.errors import ApiProblem, not_ready, problems
from services.common.feed_tokens import verify_feed_token
from services.common.mongo import Document
from services.common.periods import PeriodState, periods_around
from services.common.reference import Catalog
from services.deadlines.schedule import RungStatus, UnitSchedule


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


class RungPublic(BaseModel):
    key: str
    """The decision's key in the store (what makes it happen once)."""
    rung: str
    status: RungStatus
    overdue: bool
    at: dt.datetime | None
    """When the rung is (or was) due to be sent, UTC; null for a skipped rung of an earlier
    ladder (before an extension or a return moved it)."""
    at_local: dt.datetime | None
    reaches: list[str]
    recorded_at: dt.datetime | None = None
    """When a scan decided it (emitted) or recorded it as skipped."""
    recorded_at_local: dt.datetime | None = None


class UnitSchedulePublic(BaseModel):
    unit_id: str
    owes: bool
    """Has not reported, or its report was returned and not sent again."""
    due_at: dt.datetime
    due_at_local: dt.datetime
    closes_at: dt.datetime
    closes_at_local: dt.datetime
    emitted: int
    skipped: int
    pending: int
    rungs: list[RungPublic]


class SchedulePublic(BaseModel):
    plan_id: str
    period_id: str
    title: str
    timezone: str
    now: dt.datetime
    now_local: dt.datetime
    units: list[UnitSchedulePublic]


ScheduleReader = Callable[[str], Awaitable[list[UnitSchedule] | None]]
"""period id -> each unit's rungs (None: no such period)."""
FeedReader = Callable[[str], Awaitable[bytes | None]]
"""unit id -> its calendar feed (None: no plan has the unit report)."""

UnitTermsReader = Callable[[str, str], Awaitable[tuple[Document | None, Document | None]]]
"""(period id, unit id) -> (the unit's approved extension, its filing exception)."""


def _not_found() -> ApiProblem:
    return ApiProblem(404, "not_found", "Không tìm thấy kỳ báo cáo hoặc đơn vị này.")


def _bad_feed_token() -> ApiProblem:
    return ApiProblem(
        401,
        "invalid_feed_token",
        "Liên kết lịch không hợp lệ hoặc đã hết hạn; vui lòng lấy liên kết mới trên trang "
        "của đơn vị.",
        headers={"WWW-Authenticate": 'Bearer realm="baocao-calendar"'},
    )


def _schedule_public(units: list[UnitSchedule], tz: dt.tzinfo) -> list[UnitSchedulePublic]:
    def local(moment: dt.datetime | None) -> dt.datetime | None:
        return moment.astimezone(tz) if moment else None

    found = []
    for u in units:
        count = {s: sum(r.status is s for r in u.rungs) for s in RungStatus}
        found.append(
            UnitSchedulePublic(
                unit_id=u.unit_id,
                owes=u.owes,
                due_at=u.due_at,
                due_at_local=u.due_at.astimezone(tz),
                closes_at=u.closes_at,
                closes_at_local=u.closes_at.astimezone(tz),
                emitted=count[RungStatus.EMITTED],
                skipped=count[RungStatus.SKIPPED],
                pending=count[RungStatus.PENDING],
                rungs=[
                    RungPublic(
                        key=r.key,
                        rung=r.rung,
                        status=r.status,
                        overdue=r.overdue,
                        at=r.at,
                        at_local=local(r.at),
                        reaches=list(r.reaches),
                        recorded_at=r.recorded_at,
                        recorded_at_local=local(r.recorded_at),
                    )
                    for r in u.rungs
                ],
            )
        )
    return found


def build_router(
    catalog: Catalog,
    clock: Clock,
    run_scan: Callable[[], Awaitable[int]],
    unit_terms: UnitTermsReader | None = None,
    *,
    schedule: ScheduleReader | None = None,
    feed: FeedReader | None = None,
    feed_key: Ed25519PublicKey | None = None,
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["deadlines"])

    @router.get("/periods")
    async def list_periods(principal: SignedIn) -> PeriodsPublic:
        now = clock.now()
        found = []
        for plan in catalog.plans.values():
            if not principal.acts_on(plan):
                continue  # office staff see the plans their unit consolidates
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
        if not principal.acts_on(found[0]):
            raise _not_found()  # office staff of another plan: as if there were no such period
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

    @router.get(
        "/periods/{period_id}/schedule",
        response_model=SchedulePublic,
        responses=problems(404),
        summary="Each unit's reminder rungs of a period: emitted, skipped, pending",
    )
    async def period_schedule(period_id: str, principal: ReadsAll) -> SchedulePublic:
        """From this service's own store (what was decided) and the plan (the ladder on the
        working calendar, moved by each unit's extension or return), in UTC and local time."""
        if schedule is None:
            raise not_ready()
        found = catalog.period(period_id)
        if found is not None and not principal.acts_on(found[0]):
            found = None  # office staff of another plan: as if there were no such period
        units = await schedule(period_id) if found is not None else None
        if found is None or units is None:
            raise ApiProblem(404, "not_found", "Không tìm thấy kỳ báo cáo này.")
        plan, period = found
        now = clock.now()
        return SchedulePublic(
            plan_id=plan.id,
            period_id=period.id,
            title=period.title,
            timezone=plan.timezone,
            now=now,
            now_local=now.astimezone(plan.tz),
            units=_schedule_public(units, plan.tz),
        )

    @router.get(
        "/units/{unit_id}/calendar.ics",
        response_class=Response,
        responses={
            200: {"content": {"text/calendar": {}}, "description": "iCalendar (RFC 5545)"},
            **problems(401, 404),
        },
        summary="A unit's deadlines as a calendar feed, opened by its feed token (?token=)",
    )
    async def unit_calendar(
        unit_id: str,
        token: Annotated[
            str, Query(max_length=4096, description="the unit's calendar feed token")
        ] = "",
    ) -> Response:
        """Calendar apps send no header, so the unit's feed token (issued by submissions,
        ``POST /api/v1/units/{unit}/calendar-token``) rides in the query string. A sign-in
        token is refused here, as a feed token is everywhere else."""
        if feed is None or feed_key is None:
            raise not_ready()
        try:
            grant = verify_feed_token(feed_key, token, clock.now())
        except InvalidToken:
            raise _bad_feed_token() from None
        if grant.unit_id != unit_id:
            raise ApiProblem(404, "not_found", "Không tìm thấy lịch của đơn vị này.")
        body = await feed(unit_id)
        if body is None:
            raise ApiProblem(404, "not_found", "Không tìm thấy lịch của đơn vị này.")
        return Response(
            body,
            media_type="text/calendar; charset=utf-8",
            headers={
                "Content-Disposition": f'inline; filename="{unit_id}.ics"',
                # The link is a credential: no shared cache keeps the answer.
                "Cache-Control": "private, max-age=3600",
            },
        )

    @router.post("/scan")
    async def scan_now(_: Admin) -> ScanPublic:
        return ScanPublic(recorded=await run_scan())

    return router
