"""The dashboard everyone lands on: an officer's unit and its periods, or every period for the
office, admins and the province."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response

from contracts.plan import Plan, Unit
from services.common.auth import Principal
from services.common.periods import Period, PeriodState
from services.submissions.calendar_api import CalendarLinks
from services.submissions.drafts import Draft
from services.submissions.handlers import Intake
from services.submissions.overview import (
    PERIOD_STATE_LABELS,
    REVIEW_LABELS,
    PeriodOverview,
    overview,
    review_decision,
    visible_periods,
)
from services.submissions.pages.base import HOME, DraftsDep, PageRoute, Viewer, render
from services.submissions.web import IntakeDep

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@dataclass(frozen=True)
class UnitPeriod:
    """One period as an officer's dashboard shows it."""

    plan: Plan
    period: Period
    state: PeriodState
    head: dict[str, Any] | None
    draft: Draft | None

    @property
    def state_label(self) -> str:
        return PERIOD_STATE_LABELS[self.state]

    @property
    def review_label(self) -> str:
        return REVIEW_LABELS[review_decision(self.head)] if self.head else ""

    @property
    def returned(self) -> bool:
        return bool(self.head) and review_decision(self.head or {}) == "returned"


@dataclass(frozen=True)
class OfficePeriod:
    plan: Plan
    period: Period
    state: PeriodState
    summary: PeriodOverview | None

    @property
    def state_label(self) -> str:
        return PERIOD_STATE_LABELS[self.state]


@router.get(HOME)
async def dashboard(
    request: Request, principal: Viewer, intake: IntakeDep, drafts: DraftsDep
) -> Response:
    if principal.unit_id and not principal.reads_all:
        return await _officer(request, principal, intake, drafts)
    return await _office(request, principal, intake)


async def _officer(
    request: Request, principal: Principal, intake: Intake, drafts: DraftsDep
) -> Response:
    unit_id = principal.unit_id or ""
    now = intake.clock.now()
    plans: list[tuple[Plan, Unit, list[UnitPeriod]]] = []
    for plan in intake.catalog.plans.values():
        unit = plan.unit(unit_id)
        if unit is None or unit not in plan.reporting_units():
            continue
        rows = [
            UnitPeriod(
                plan,
                period,
                period.state(now),
                await intake.store.head(period.id, unit_id),
                await drafts.get(period.id, unit_id),
            )
            for period in visible_periods(plan, now)
        ]
        plans.append((plan, unit, rows))
    # A fresh link at each visit (tokens are stateless); one already subscribed keeps working.
    links: CalendarLinks | None = getattr(request.app.state, "calendar_links", None)
    calendar_url = links.issue(principal, unit_id).url if links and plans else None
    return render(
        request,
        "dashboard_officer.html",
        title="Báo cáo của đơn vị",
        plans=plans,
        calendar_url=calendar_url,
    )


async def _office(request: Request, principal: Principal, intake: Intake) -> Response:
    now = intake.clock.now()
    plans: list[tuple[Plan, list[OfficePeriod]]] = []
    for plan in intake.catalog.plans.values():
        if not principal.acts_on(plan):
            continue  # office staff see the plans their unit consolidates
        rows = []
        for period in visible_periods(plan, now):
            state = period.state(now)
            summary = None
            if state is not PeriodState.UPCOMING:
                heads = {h["unit_id"]: h for h in await intake.store.period_heads(period.id)}
                summary = overview(plan, period, heads, now)
            rows.append(OfficePeriod(plan, period, state, summary))
        plans.append((plan, rows))
    return render(request, "dashboard_office.html", title="Các kỳ báo cáo", plans=plans)
