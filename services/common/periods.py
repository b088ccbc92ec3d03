"""Reporting periods derived from a plan's schedule: pure functions, no I/O."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from contracts.plan import Plan, ReportKind


class PeriodState(StrEnum):
    UPCOMING = "upcoming"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class Period:
    plan_id: str
    kind: ReportKind
    year: int
    """The year the report is about (not always the year it is due)."""
    opens_at: dt.datetime
    due_at: dt.datetime
    closes_at: dt.datetime
    data_from: dt.date
    data_to: dt.date

    @property
    def id(self) -> str:
        return period_id(self.plan_id, self.year, self.kind.code)

    @property
    def title(self) -> str:
        # "Báo cáo năm" + 2027 reads "Báo cáo năm 2027", not "Báo cáo năm năm 2027".
        joint = " " if self.kind.title.endswith(" năm") else " năm "
        return f"{self.kind.title}{joint}{self.year}"

    def state(self, now: dt.datetime) -> PeriodState:
        if now < self.opens_at:
            return PeriodState.UPCOMING
        return PeriodState.OPEN if now < self.closes_at else PeriodState.CLOSED

    def on_time(self, received_at: dt.datetime) -> bool:
        return received_at < self.due_at


def period_id(plan_id: str, year: int, kind_code: str) -> str:
    return f"{plan_id}.{year}.{kind_code}"


def _month_day(text: str, year: int) -> dt.date:
    month, day = (int(x) for x in text.split("-"))
    return dt.date(year, month, day)


def period_of(plan: Plan, kind: ReportKind, year: int) -> Period:
    due_day = _month_day(kind.due_before, year + 1 if kind.due_in_following_year else year)
    # "Before 15/6" means the report must be in by the start of 15 June, local time.
    due_at = dt.datetime.combine(due_day, dt.time(0), plan.tz).astimezone(dt.UTC)
    return Period(
        plan_id=plan.id,
        kind=kind,
        year=year,
        opens_at=due_at - dt.timedelta(days=kind.opens_days_before_due),
        due_at=due_at,
        closes_at=due_at + dt.timedelta(days=kind.closes_days_after_due),
        data_from=_month_day(kind.data_from, year - 1 if kind.data_from_previous_year else year),
        data_to=_month_day(kind.data_to, year),
    )


def periods_of(plan: Plan, first_year: int, last_year: int) -> list[Period]:
    """Every period of the plan about a year in [first_year, last_year], in due order."""
    found = []
    for year in range(first_year, last_year + 1):
        for kind in plan.schedule:
            period = period_of(plan, kind, year)
            if _in_force(plan, period):
                found.append(period)
    return sorted(found, key=lambda p: (p.due_at, p.kind.code))


def periods_around(plan: Plan, now: dt.datetime) -> list[Period]:
    """The periods that can be upcoming, open or just closed at ``now``."""
    return periods_of(plan, now.year - 1, now.year + 1)


def find_period(plan: Plan, period_id_: str) -> Period | None:
    prefix, _, rest = period_id_.partition(".")
    year_text, _, code = rest.partition(".")
    if prefix != plan.id or not year_text.isdigit():
        return None
    kind = next((k for k in plan.schedule if k.code == code), None)
    if kind is None:
        return None
    period = period_of(plan, kind, int(year_text))
    return period if _in_force(plan, period) else None


def _in_force(plan: Plan, period: Period) -> bool:
    local_due = period.due_at.astimezone(plan.tz).date()
    if local_due < plan.effective_from:
        return False
    return plan.effective_until is None or period.opens_at.astimezone(plan.tz).date() <= (
        plan.effective_until
    )
