"""The Vietnamese working calendar: weekends, public holidays (lunar ones included), the
government's swaps from the data file, a plan's own days, and the cut-off check."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from contracts.plan.loading import load, warnings
from contracts.plan.workdays import (
    DEFAULT_FILE,
    CalendarDataError,
    DayChanges,
    WorkingCalendar,
    load_day_changes,
    plan_calendar,
    read_day_changes,
)

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"
D = dt.date


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return WorkingCalendar(load_day_changes())


def _off(calendar: WorkingCalendar, first: dt.date, last: dt.date) -> list[dt.date]:
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    return [d for d in days if not calendar.is_working_day(d)]


def test_weekends_are_off_and_ordinary_weekdays_are_worked(calendar: WorkingCalendar) -> None:
    assert calendar.is_working_day(D(2027, 6, 15))  # a Tuesday
    assert not calendar.is_working_day(D(2027, 6, 12))  # Saturday
    assert not calendar.is_working_day(D(2027, 6, 13))  # Sunday


def test_tet_2027_is_off_from_29_tet_to_mung_5(calendar: WorkingCalendar) -> None:
    """Tết Đinh Mùi: mùng 1 is Saturday 6/2/2027; the weekend days are compensated."""
    assert _off(calendar, D(2027, 2, 1), D(2027, 2, 14)) == [
        D(2027, 2, 4),
        D(2027, 2, 5),
        D(2027, 2, 6),
        D(2027, 2, 7),
        D(2027, 2, 8),
        D(2027, 2, 9),
        D(2027, 2, 10),
        D(2027, 2, 13),
        D(2027, 2, 14),
    ]
    assert calendar.previous_working_day(D(2027, 2, 10)) == D(2027, 2, 3)
    assert calendar.next_working_day(D(2027, 2, 3)) == D(2027, 2, 11)


def test_hung_kings_day_follows_the_lunar_calendar(calendar: WorkingCalendar) -> None:
    assert not calendar.is_working_day(D(2027, 4, 16))  # 10/3 âm lịch, a Friday
    assert calendar.is_working_day(D(2027, 4, 15))
    # 2026: 10/3 âm lịch is Sunday 26/4, compensated on Monday 27/4.
    assert not calendar.is_working_day(D(2026, 4, 27))
    assert calendar.is_working_day(D(2026, 4, 28))


def test_30_4_and_1_5_with_a_weekend_day_compensated(calendar: WorkingCalendar) -> None:
    # 2027: 30/4 Friday, 1/5 Saturday, compensated on Monday 3/5.
    assert _off(calendar, D(2027, 4, 29), D(2027, 5, 4)) == [
        D(2027, 4, 30),
        D(2027, 5, 1),
        D(2027, 5, 2),
        D(2027, 5, 3),
    ]


def test_national_day_is_two_days(calendar: WorkingCalendar) -> None:
    assert _off(calendar, D(2027, 9, 1), D(2027, 9, 6)) == [
        D(2027, 9, 2),
        D(2027, 9, 3),
        D(2027, 9, 4),
        D(2027, 9, 5),
    ]
    assert _off(calendar, D(2026, 8, 31), D(2026, 9, 3)) == [D(2026, 9, 1), D(2026, 9, 2)]


def test_the_data_files_swaps_move_a_working_day_to_a_saturday(
    calendar: WorkingCalendar,
) -> None:
    assert not calendar.is_working_day(D(2025, 1, 27))  # Monday before Tết Ất Tỵ, off
    assert calendar.is_working_day(D(2025, 2, 8))  # Saturday worked instead
    assert not calendar.is_working_day(D(2025, 5, 2))
    assert calendar.is_working_day(D(2025, 4, 26))
    # Without the file, only the library: those days are ordinary.
    bare = WorkingCalendar()
    assert bare.is_working_day(D(2025, 5, 2))
    assert not bare.is_working_day(D(2025, 2, 8))
    assert not bare.is_working_day(D(2025, 4, 26))


def test_the_librarys_own_swaps_count_too() -> None:
    # 2024: Monday 29/4 off for Saturday 4/5 worked (known to the library).
    bare = WorkingCalendar()
    assert not bare.is_working_day(D(2024, 4, 29))
    assert bare.is_working_day(D(2024, 5, 4))


def test_counting_and_stepping_in_working_days(calendar: WorkingCalendar) -> None:
    assert calendar.working_days_before(D(2027, 2, 15), 1) == D(2027, 2, 12)
    assert calendar.working_days_before(D(2027, 2, 15), 3) == D(2027, 2, 3)
    assert calendar.working_days_after(D(2027, 2, 3), 1) == D(2027, 2, 11)
    assert calendar.on_or_before(D(2027, 11, 20)) == D(2027, 11, 19)  # a Saturday
    assert calendar.on_or_before(D(2027, 11, 19)) == D(2027, 11, 19)
    assert calendar.count_working_days(D(2027, 2, 1), D(2027, 2, 14)) == 5
    assert calendar.count_working_days(D(2027, 2, 2), D(2027, 2, 1)) == 0


def test_a_plans_days_win_over_the_national_ones() -> None:
    plan = load(SEED)
    own = plan.model_copy(
        update={
            "working_calendar": plan.working_calendar.model_copy(
                update={"days_off": [D(2027, 6, 14)], "working_days": [D(2025, 5, 2)]}
            )
        }
    )
    calendar = plan_calendar(own)
    assert not calendar.is_working_day(D(2027, 6, 14))
    assert calendar.is_working_day(D(2025, 5, 2))  # off nationally, worked by this plan
    assert calendar.is_working_day(D(2025, 2, 8))  # the national swap still holds


def test_day_changes_read_dates_or_mappings_and_refuse_the_rest() -> None:
    changes = read_day_changes(
        "days_off: [2030-01-02, {date: 2030-01-03, reason: x}]\nworking_days: [2030-01-05]"
    )
    assert changes.days_off == {D(2030, 1, 2), D(2030, 1, 3)}
    assert changes.working_days == {D(2030, 1, 5)}
    assert read_day_changes("") == DayChanges()
    for bad in (
        "days_off: [tomorrow]",
        "holidays: []",
        "days_off: [2030-01-02]\nworking_days: [2030-01-02]",
        "days_off: [2030-01-02T08:00:00]",
        "[: x",
    ):
        with pytest.raises(CalendarDataError):
            read_day_changes(bad)


def test_the_data_file_reads() -> None:
    changes = load_day_changes(DEFAULT_FILE)
    assert changes.days_off and changes.working_days
    assert all(d.weekday() >= 5 for d in changes.working_days)
    assert all(d.weekday() < 5 for d in changes.days_off)


def test_every_entry_of_the_data_file_says_whether_it_is_decided() -> None:
    """An assumption must stay visibly one until the year's notice confirms it."""
    data = yaml.safe_load(DEFAULT_FILE.read_text(encoding="utf-8"))
    entries = data["days_off"] + data["working_days"]
    assert {e["status"] for e in entries} <= {"decided", "assumption"}
    assert all(e["reason"].strip() for e in entries)
    years = {e["date"].year for e in entries}
    assert {2025, 2026, 2027} <= years


def test_new_years_day_2026_is_joined_to_the_weekend(calendar: WorkingCalendar) -> None:
    assert _off(calendar, D(2026, 1, 1), D(2026, 1, 4)) == [
        D(2026, 1, 1),
        D(2026, 1, 2),
        D(2026, 1, 3),
        D(2026, 1, 4),
    ]
    assert calendar.is_working_day(D(2026, 1, 10))  # Saturday worked instead
    assert _off(calendar, D(2026, 2, 14), D(2026, 2, 22)) == [
        D(2026, 2, 14) + dt.timedelta(days=n) for n in range(9)
    ]


def test_check_warns_when_no_working_day_separates_cut_off_and_due(tmp_path: Path) -> None:
    """The seed plan: cut-off 14/6, due 15/6; 15/6/2030 is a Saturday, 15/6/2031 a Sunday."""
    plan = load(SEED)
    assert warnings(SEED, plan, today=D(2026, 11, 27)) == []
    (warning,) = warnings(SEED, plan, today=D(2030, 1, 1))
    assert warning.warning
    assert warning.path == "schedule.0"
    assert "15/06/2030" in warning.message and "15/06/2031" in warning.message
    assert (
        warning.line == SEED.read_text(encoding="utf-8").splitlines().index("  - code: 6-thang") + 1
    )
    # A plan that works that Saturday has its working day back.
    text = SEED.read_text(encoding="utf-8") + (
        "working_calendar:\n  working_days: [2030-06-15, 2031-06-15]\n"
    )
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    assert warnings(path, load(path), today=D(2030, 1, 1)) == []
