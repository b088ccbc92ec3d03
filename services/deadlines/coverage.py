"""How far each open period is from complete, and how long until it locks: what the office's
alert on a period closing with units still missing reads. Pure: no I/O, no metrics."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass

from contracts.plan import Plan
from services.common.periods import Period, PeriodState


@dataclass(frozen=True)
class Coverage:
    plan_id: str
    period_id: str
    expected: int
    """Units that must report for the period."""
    missing: int
    """Of those, units that have not reported at all yet."""
    closes_in: dt.timedelta
    """Until the period's lock instant, by the service's clock."""


def open_coverage(
    plan: Plan, periods: Iterable[Period], submitted: Mapping[str, Set[str]], now: dt.datetime
) -> list[Coverage]:
    """One entry per period of ``plan`` open at ``now``; ``submitted`` maps a period id to the
    units that have reported for it."""
    expected = {unit.id for unit in plan.reporting_units()}
    return [
        Coverage(
            plan_id=plan.id,
            period_id=period.id,
            expected=len(expected),
            missing=len(expected - set(submitted.get(period.id, ()))),
            closes_in=period.closes_at - now,
        )
        for period in periods
        if period.state(now) is PeriodState.OPEN
    ]
