"""Where each expected unit stands in a period, and the period's rates, as dashboards show them.

Pure: the heads of the period's reports (one per unit), the exceptions granted and the clock
in, rows and rates out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from contracts.plan import Plan, Unit
from services.common.periods import Period, PeriodState, periods_around

PERIOD_STATE_LABELS = {
    PeriodState.UPCOMING: "Chưa mở",
    PeriodState.OPEN: "Đang nhận báo cáo",
    PeriodState.CLOSED: "Đã khóa sổ",
}


class UnitState(StrEnum):
    ON_TIME = "on_time"
    LATE = "late"
    RETURNED = "returned"
    EXCEPTION = "exception"
    """Not filed, but allowed to file after the lock."""
    MISSING = "missing"
    """Not filed, and due already."""
    WAITING = "waiting"
    """Not filed, not due yet."""


UNIT_STATE_LABELS = {
    UnitState.ON_TIME: "Đúng hạn",
    UnitState.LATE: "Quá hạn",
    UnitState.RETURNED: "Trả lại, chờ sửa",
    UnitState.EXCEPTION: "Được nộp ngoại lệ",
    UnitState.MISSING: "Chưa nộp (đã quá hạn)",
    UnitState.WAITING: "Chưa nộp (chưa đến hạn)",
}


@dataclass(frozen=True)
class UnitRow:
    unit: Unit
    state: UnitState
    head: Mapping[str, Any] | None
    """The unit's latest version (``heads.<period>``), if it filed."""
    exception_until: dt.datetime | None = None

    @property
    def label(self) -> str:
        return UNIT_STATE_LABELS[self.state]

    @property
    def filed(self) -> bool:
        return self.head is not None


@dataclass(frozen=True)
class PeriodOverview:
    rows: list[UnitRow]

    @property
    def expected(self) -> int:
        return len(self.rows)

    @property
    def filed(self) -> int:
        return sum(r.filed for r in self.rows)

    @property
    def on_time(self) -> int:
        return sum(bool(r.head and r.head.get("on_time")) for r in self.rows)

    def count(self, state: UnitState) -> int:
        return sum(r.state is state for r in self.rows)

    @property
    def completeness(self) -> float:
        """Units that filed, of those expected."""
        return self.filed / self.expected if self.expected else 0.0

    @property
    def on_time_rate(self) -> float:
        """Units that filed on time, of those expected."""
        return self.on_time / self.expected if self.expected else 0.0


REVIEW_LABELS = {
    "submitted": "Chờ xem xét",
    "accepted": "Đã chấp nhận",
    "returned": "Trả lại để chỉnh sửa",
}


def review_decision(head: Mapping[str, Any]) -> str:
    """``submitted`` until the office decides about the latest version (the head's hint)."""
    review = head.get("review") or {}
    if review.get("revision") == head.get("revision") and review.get("decision"):
        return str(review["decision"])
    return "submitted"


def returned(head: Mapping[str, Any]) -> bool:
    """The office returned the unit's latest version."""
    return review_decision(head) == "returned"


def visible_periods(plan: Plan, now: dt.datetime) -> list[Period]:
    """The periods a dashboard lists: open ones first (soonest due first), then those opening
    within 60 days, then closed ones (latest first)."""
    horizon = now + dt.timedelta(days=60)
    shown = [p for p in periods_around(plan, now) if p.opens_at <= horizon]
    order = {PeriodState.OPEN: 0, PeriodState.UPCOMING: 1, PeriodState.CLOSED: 2}
    return sorted(
        shown,
        key=lambda p: (
            order[p.state(now)],
            -p.due_at.timestamp() if p.state(now) is PeriodState.CLOSED else p.due_at.timestamp(),
        ),
    )


def unit_state(
    head: Mapping[str, Any] | None,
    period: Period,
    now: dt.datetime,
    exception_until: dt.datetime | None = None,
    due_at: dt.datetime | None = None,
) -> UnitState:
    """``due_at``: the unit's own due instant when an extension moved it."""
    if head is not None:
        if returned(head):
            return UnitState.RETURNED
        return UnitState.ON_TIME if head.get("on_time") else UnitState.LATE
    if exception_until is not None and now < exception_until:
        return UnitState.EXCEPTION
    return UnitState.MISSING if now >= (due_at or period.due_at) else UnitState.WAITING


def overview(
    plan: Plan,
    period: Period,
    heads: Mapping[str, Mapping[str, Any]],
    now: dt.datetime,
    exceptions: Mapping[str, dt.datetime] | None = None,
    due: Mapping[str, dt.datetime] | None = None,
) -> PeriodOverview:
    """Every unit the plan expects a report of, with its state; ``exceptions``: until when
    each unit may file after the lock; ``due``: extended due instants, by unit."""
    exceptions, due = exceptions or {}, due or {}
    return PeriodOverview(
        [
            UnitRow(
                unit=unit,
                state=unit_state(
                    heads.get(unit.id), period, now, exceptions.get(unit.id), due.get(unit.id)
                ),
                head=heads.get(unit.id),
                exception_until=exceptions.get(unit.id),
            )
            for unit in plan.reporting_units()
        ]
    )
