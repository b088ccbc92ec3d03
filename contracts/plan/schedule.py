"""The calendar days a report kind's rule gives in a year: due day and data window.

Pure date arithmetic on the plan's data (no time zones, no clock): ``services.common.periods``
turns these days into instants in the plan's time zone, and the plan's own validation uses
them to refuse, at load time, a schedule whose dates are out of order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from contracts.plan.model import MONTHS_PER_OCCURRENCE, OCCURRENCES, ReportKind, ScheduleRule

ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}


@dataclass(frozen=True)
class Occurrence:
    """One period of a kind in a year: which one, when it is due, what data it covers."""

    number: int | None
    """1-4 for quarters, 1-2 for halves, 1-12 for months; None for a once-a-year report."""
    due_day: dt.date
    """The report must arrive *before* this local day."""
    data_from: dt.date
    data_to: dt.date

    def suffix(self, rule: ScheduleRule) -> str:
        """What tells this period from the kind's others in the same year ('q2', 'm03')."""
        if self.number is None:
            return ""
        return {
            ScheduleRule.QUARTERLY: f"q{self.number}",
            ScheduleRule.SIX_MONTHLY: f"h{self.number}",
            ScheduleRule.MONTHLY: f"m{self.number:02d}",
        }[rule]

    def title(self, kind: ReportKind, year: int) -> str:
        """'Báo cáo quý II năm 2027', 'Báo cáo 6 tháng đầu năm 2027', 'Báo cáo năm 2027'."""
        if kind.rule is ScheduleRule.QUARTERLY and self.number:
            return f"{kind.title} {ROMAN[self.number]} năm {year}"
        if kind.rule is ScheduleRule.SIX_MONTHLY and self.number:
            return f"{kind.title} {'đầu' if self.number == 1 else 'cuối'} năm {year}"
        if kind.rule is ScheduleRule.MONTHLY and self.number:
            return f"{kind.title} {self.number} năm {year}"
        # "Báo cáo năm" + 2027 reads "Báo cáo năm 2027", not "Báo cáo năm năm 2027".
        joint = " " if kind.title.endswith(" năm") else " năm "
        return f"{kind.title}{joint}{year}"


def occurrences(kind: ReportKind, year: int) -> list[Occurrence]:
    """The periods of ``kind`` about ``year``, in order."""
    if kind.rule is ScheduleRule.YEARLY:
        assert kind.due_before is not None
        assert kind.data_from is not None
        assert kind.data_to is not None
        return [
            Occurrence(
                number=None,
                due_day=_month_day(kind.due_before, year + kind.due_in_following_year),
                data_from=_month_day(kind.data_from, year - kind.data_from_previous_year),
                data_to=_month_day(kind.data_to, year),
            )
        ]
    if kind.rule is ScheduleRule.ONCE:
        assert kind.due_on is not None
        assert kind.data_from_date is not None
        assert kind.data_to_date is not None
        if kind.due_on.year != year:
            return []
        return [Occurrence(None, kind.due_on, kind.data_from_date, kind.data_to_date)]
    months = MONTHS_PER_OCCURRENCE[kind.rule]
    assert kind.due_day is not None
    found = []
    for number in kind.occurrences or OCCURRENCES[kind.rule]:
        last = _month(year, number * months)
        previous_last = _month(year, number * months - months)
        due = _month(year, number * months + (1 if kind.due_month == "following" else 0))
        found.append(
            Occurrence(
                number=number,
                due_day=dt.date(due[0], due[1], kind.due_day),
                # Decree 09/2019/NĐ-CP: from the day after the cut-off of the previous
                # period's last month to the cut-off day of this period's last month. The day
                # after, not day cutoff_day + 1: a cut-off on 28/02 is followed by 01/03.
                data_from=dt.date(previous_last[0], previous_last[1], kind.cutoff_day)
                + dt.timedelta(days=1),
                data_to=dt.date(last[0], last[1], kind.cutoff_day),
            )
        )
    return found


def order_problem(kind: ReportKind, occurrence: Occurrence) -> str | None:
    """Why this occurrence's days are out of order, if they are.

    The order is: the data window opens ≤ the cut-off (the end of the window) ≤ the due day
    ≤ the lock; intake opens at the latest on the due day (``opens_days_before_due`` ≥ 0), and
    may open after the cut-off, once the figures are final.
    """
    cutoff = occurrence.data_to + dt.timedelta(days=1)  # the data window ends at its start
    if occurrence.data_from > occurrence.data_to:
        return "kỳ số liệu bắt đầu sau khi kết thúc"
    if cutoff > occurrence.due_day:
        return (
            f"ngày chốt số liệu ({occurrence.data_to:%d/%m}) phải trước hạn nộp "
            f"({occurrence.due_day:%d/%m})"
        )
    return None


def _month(year: int, month: int) -> tuple[int, int]:
    """(year, month) for a month number counted from January of ``year`` (0 = December before)."""
    shifted = year * 12 + month - 1
    return shifted // 12, shifted % 12 + 1


def _month_day(text: str, year: int) -> dt.date:
    month, day = (int(x) for x in text.split("-"))
    return dt.date(year, month, day)
