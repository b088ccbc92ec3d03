"""Reporting periods derived from a plan's schedule: pure functions, no I/O.

The days come from the schedule's rule (``contracts.plan.schedule``); here they become
instants in the plan's time zone. "Before 15/6" means by the start of 15 June, local time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from contracts.plan import Plan, ReportKind
from contracts.plan.schedule import Occurrence, occurrences


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
    """The lock instant: due + the kind's grace days; no report is accepted after it."""
    data_from: dt.date
    data_to: dt.date
    cutoff_at: dt.datetime
    """The end of the data window: local midnight after ``data_to``."""
    occurrence: Occurrence

    @cached_property
    def id(self) -> str:
        # Cached: a deadlines scan asks it for every unit of every period.
        return period_id(self.plan_id, self.year, self.kind.code, self.suffix)

    @property
    def suffix(self) -> str:
        return self.occurrence.suffix(self.kind.rule)

    @property
    def title(self) -> str:
        return self.occurrence.title(self.kind, self.year)

    def state(self, now: dt.datetime) -> PeriodState:
        if now < self.opens_at:
            return PeriodState.UPCOMING
        return PeriodState.OPEN if now < self.closes_at else PeriodState.CLOSED

    def on_time(self, received_at: dt.datetime) -> bool:
        return received_at < self.due_at


def period_id(plan_id: str, year: int, kind_code: str, suffix: str = "") -> str:
    return f"{plan_id}.{year}.{kind_code}" + (f".{suffix}" if suffix else "")


def _local_midnight(day: dt.date, plan: Plan) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), plan.tz).astimezone(dt.UTC)


def _period(plan: Plan, kind: ReportKind, year: int, occurrence: Occurrence) -> Period:
    due_at = _local_midnight(occurrence.due_day, plan)
    # Opening and lock count whole local days from the due day, whatever DST would do.
    opens_day = occurrence.due_day - dt.timedelta(days=kind.opens_days_before_due)
    closes_day = occurrence.due_day + dt.timedelta(days=kind.closes_days_after_due)
    return Period(
        plan_id=plan.id,
        kind=kind,
        year=year,
        opens_at=_local_midnight(opens_day, plan),
        due_at=due_at,
        closes_at=_local_midnight(closes_day, plan),
        data_from=occurrence.data_from,
        data_to=occurrence.data_to,
        cutoff_at=_local_midnight(occurrence.data_to + dt.timedelta(days=1), plan),
        occurrence=occurrence,
    )


def periods_of_kind(plan: Plan, kind: ReportKind, year: int) -> list[Period]:
    return [_period(plan, kind, year, o) for o in occurrences(kind, year)]


def period_of(plan: Plan, kind: ReportKind, year: int) -> Period:
    """The one period of a once-a-year kind about ``year``."""
    (period,) = periods_of_kind(plan, kind, year)
    return period


def periods_of(plan: Plan, first_year: int, last_year: int) -> list[Period]:
    """Every period of the plan about a year in [first_year, last_year], in due order."""
    found = [
        period
        for year in range(first_year, last_year + 1)
        for kind in plan.schedule
        for period in periods_of_kind(plan, kind, year)
        if _in_force(plan, period)
    ]
    return sorted(found, key=lambda p: (p.due_at, p.kind.code))


def periods_around(plan: Plan, now: dt.datetime) -> list[Period]:
    """The periods that can be upcoming, open or just closed at ``now``."""
    return periods_of(plan, now.year - 1, now.year + 1)


def find_period(plan: Plan, period_id_: str) -> Period | None:
    parts = period_id_.split(".")
    if len(parts) not in (3, 4) or parts[0] != plan.id or not _year(parts[1]):
        return None
    kind = next((k for k in plan.schedule if k.code == parts[2]), None)
    if kind is None:
        return None
    for period in periods_of_kind(plan, kind, int(parts[1])):
        if period.id == period_id_ and _in_force(plan, period):
            return period
    return None


def _year(text: str) -> bool:
    """A year a period can be computed for (its data may start the year before and its due
    fall the year after): an id from a URL is not trusted to be one ('²', '0', '99999')."""
    return text.isascii() and text.isdigit() and dt.MINYEAR < int(text) < dt.MAXYEAR


def _in_force(plan: Plan, period: Period) -> bool:
    local_due = period.due_at.astimezone(plan.tz).date()
    if plan.effective_from is not None and local_due < plan.effective_from:
        return False
    return plan.effective_until is None or period.opens_at.astimezone(plan.tz).date() <= (
        plan.effective_until
    )
