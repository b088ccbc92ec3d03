"""The Vietnamese working calendar: which local days an office works (pure, no clock).

A day is a working day unless it is a Saturday or a Sunday or a public holiday, with two
kinds of exceptions decided year by year:

- public holidays, the lunar ones included (Tết Nguyên Đán, Giỗ Tổ Hùng Vương) and the days off
  that compensate a holiday falling on a weekend, come from the ``holidays`` package (its
  Vietnam calendar, which also carries the swaps it knows of);
- the government's yearly decisions to swap a working day with a weekend day (e.g. Monday
  27/01/2025 off, Saturday 08/02/2025 worked) come from a data file,
  ``data/calendar/vn-working-days.yaml``, and a plan may add its own days
  (``working_calendar`` in the plan file).

What a decision or a plan says wins over the library; a day named both off and working is
refused when the data is read.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import holidays
import yaml

from contracts.plan.model import Plan
from contracts.plan.schedule import Occurrence

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "data" / "calendar" / "vn-working-days.yaml"
"""The swaps decided so far, kept with the code (a deployment may point elsewhere)."""
WEEKEND = frozenset({5, 6})
"""Saturday and Sunday, as ``date.weekday()`` numbers them (Monday is 0)."""
_SEARCH_LIMIT = 366
"""No run of days off is longer than a year: a search past it is a mistake in the data."""


class CalendarDataError(ValueError):
    """A calendar data file that cannot be read as day changes."""


@dataclass(frozen=True)
class DayChanges:
    """Days that differ from the weekend-and-holidays rule, by decision."""

    days_off: frozenset[dt.date] = frozenset()
    working_days: frozenset[dt.date] = frozenset()

    def __post_init__(self) -> None:
        both = self.days_off & self.working_days
        if both:
            days = ", ".join(f"{d:%d/%m/%Y}" for d in sorted(both))
            raise CalendarDataError(f"ngày vừa là ngày nghỉ vừa là ngày làm việc: {days}")

    def __or__(self, other: DayChanges) -> DayChanges:
        """Both sets of decisions; ``other``'s win where they disagree (a plan over the state)."""
        return DayChanges(
            days_off=(self.days_off - other.working_days) | other.days_off,
            working_days=(self.working_days - other.days_off) | other.working_days,
        )


def read_day_changes(text: str, *, source: str = "<text>") -> DayChanges:
    """Day changes from YAML: ``days_off`` and ``working_days``, lists of dates or of
    ``{date, reason}`` mappings."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise CalendarDataError(f"{source}: không đọc được YAML: {error}") from error
    if not isinstance(data, dict) or set(data) - {"days_off", "working_days"}:
        raise CalendarDataError(f"{source}: chỉ có thể có days_off và working_days")
    return DayChanges(
        days_off=frozenset(_dates(data.get("days_off"), source)),
        working_days=frozenset(_dates(data.get("working_days"), source)),
    )


def load_day_changes(path: Path = DEFAULT_FILE) -> DayChanges:
    return read_day_changes(path.read_text(encoding="utf-8"), source=str(path))


def _dates(entries: object, source: str) -> Iterable[dt.date]:
    if entries is None:
        return
    if not isinstance(entries, list):
        raise CalendarDataError(f"{source}: days_off và working_days phải là danh sách ngày")
    for entry in entries:
        day = entry.get("date") if isinstance(entry, dict) else entry
        if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
            raise CalendarDataError(f"{source}: “{entry}” không phải một ngày (YYYY-MM-DD)")
        yield day


@functools.cache
def _public_holidays(year: int) -> tuple[frozenset[dt.date], frozenset[dt.date]]:
    """The library's Vietnamese holidays of ``year`` and the weekend days it makes working."""
    found = holidays.country_holidays("VN", years=year)
    return frozenset(found), frozenset(found.weekend_workdays)


class WorkingCalendar:
    """Working days in Vietnam, with the decided changes on top of the library's holidays."""

    def __init__(self, changes: DayChanges = DayChanges()) -> None:
        self.changes = changes

    def with_changes(self, changes: DayChanges) -> WorkingCalendar:
        """This calendar with more decisions (a plan's days) on top."""
        return WorkingCalendar(self.changes | changes)

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.changes.working_days:
            return True
        if day in self.changes.days_off:
            return False
        off, worked = _public_holidays(day.year)
        if day in worked:
            return True
        return day.weekday() not in WEEKEND and day not in off

    def previous_working_day(self, day: dt.date) -> dt.date:
        """The last working day strictly before ``day``."""
        return self._step(day, -1)

    def next_working_day(self, day: dt.date) -> dt.date:
        """The first working day strictly after ``day``."""
        return self._step(day, 1)

    def on_or_before(self, day: dt.date) -> dt.date:
        """``day`` if it is a working day, else the working day before it."""
        return day if self.is_working_day(day) else self.previous_working_day(day)

    def working_days_before(self, day: dt.date, count: int) -> dt.date:
        """The working day ``count`` working days before ``day`` (``day`` itself not counted,
        worked or not): 1 is the last working day before it."""
        for _ in range(count):
            day = self.previous_working_day(day)
        return day

    def working_days_after(self, day: dt.date, count: int) -> dt.date:
        """The working day ``count`` working days after ``day``: 1 is the next working day."""
        for _ in range(count):
            day = self.next_working_day(day)
        return day

    def count_working_days(self, first: dt.date, last: dt.date) -> int:
        """Working days from ``first`` to ``last``, both included (0 if ``last`` < ``first``)."""
        days = (last - first).days + 1
        return sum(self.is_working_day(first + dt.timedelta(days=n)) for n in range(days))

    def _step(self, day: dt.date, direction: int) -> dt.date:
        for _ in range(_SEARCH_LIMIT):
            day += dt.timedelta(days=direction)
            if self.is_working_day(day):
                return day
        raise CalendarDataError(f"không có ngày làm việc nào trong một năm kể từ {day:%d/%m/%Y}")


def plan_calendar(plan: Plan, national: DayChanges | None = None) -> WorkingCalendar:
    """The calendar a plan's deadlines follow: the national one (``national``, by default the
    data file's swaps) with the plan's own days on top."""
    changes = load_day_changes() if national is None else national
    own = plan.working_calendar
    return WorkingCalendar(
        changes | DayChanges(frozenset(own.days_off), frozenset(own.working_days))
    )


def working_days_after_cutoff(calendar: WorkingCalendar, occurrence: Occurrence) -> int:
    """The working days a unit has between the data cut-off and the due day, counted as
    Decree 09/2019/NĐ-CP counts them from the cut-off: the days after the cut-off day up to
    the due day. The decree asks for at least one."""
    return calendar.count_working_days(
        occurrence.data_to + dt.timedelta(days=1), occurrence.due_day
    )
