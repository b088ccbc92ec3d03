"""When each reminder of a unit's period is sent: the plan's ladder on the working calendar.

Pure date arithmetic: the period (with the unit's extension, if any), the kind's
``ReminderLadder`` and the working calendar give every rung's instant, in order. The due day
is the last local day a report is on time (a report due "before 15/6" is on time on 14/6).
Every rung is sent at the ladder's local time on a working day; a rung that would fall on a
day off moves to the working day before it, and one that would fall after the due instant
(an extension ending in the morning) moves to the working day before that.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from contracts.plan import Audience, ReminderLadder
from contracts.plan.workdays import WorkingCalendar
from services.common.periods import Period

_INSTANT = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class RungAt:
    """One rung of one unit's period, placed in time."""

    rung_id: str
    """'b14' … 'b0' before the due day, 'a1' after it, 'a1+7d', 'a1+14d' for the repeats."""
    at: dt.datetime
    """UTC."""
    overdue: bool
    working_days: int
    """Working days before the due day (0: on it), or after it for an overdue rung."""
    reaches: tuple[Audience, ...]


def due_day(period: Period, tz: zoneinfo.ZoneInfo) -> dt.date:
    """The last local day a report is on time."""
    return (period.due_at - _INSTANT).astimezone(tz).date()


def rungs(
    period: Period, ladder: ReminderLadder, calendar: WorkingCalendar, tz: zoneinfo.ZoneInfo
) -> list[RungAt]:
    """Every rung of ``period`` before its lock, oldest first; two rungs on the same instant
    are one, the one nearer the due day."""

    def at(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, ladder.send_at, tz).astimezone(dt.UTC)

    last_day = due_day(period, tz)
    found: dict[dt.datetime, RungAt] = {}
    for rung in sorted(ladder.rungs, key=lambda r: (r.overdue, -(r.working_days_before_due or 0))):
        if rung.working_days_before_due is not None:
            n = rung.working_days_before_due
            day = (
                calendar.working_days_before(last_day, n) if n else calendar.on_or_before(last_day)
            )
            while at(day) >= period.due_at:
                day = calendar.previous_working_day(day)
            found[at(day)] = RungAt(rung.id, at(day), False, n, tuple(rung.reaches))
        else:
            n = rung.working_days_after_due or 1
            day = calendar.working_days_after(last_day, n)
            while at(day) < period.due_at:
                day = calendar.next_working_day(day)
            found.setdefault(at(day), RungAt(rung.id, at(day), True, n, tuple(rung.reaches)))
    overdue = [r for r in found.values() if r.overdue]
    if overdue and ladder.overdue_every_days:
        last = max(overdue, key=lambda r: r.at)
        first_day = last.at.astimezone(tz).date()
        step = 1
        while True:
            days = step * ladder.overdue_every_days
            day = calendar.on_or_before(first_day + dt.timedelta(days=days))
            if at(day) >= period.closes_at:
                break
            if at(day) > last.at:
                found.setdefault(
                    at(day),
                    RungAt(
                        f"{last.rung_id}+{days}d", at(day), True, last.working_days, last.reaches
                    ),
                )
            step += 1
    return sorted((r for r in found.values() if r.at < period.closes_at), key=lambda r: r.at)
