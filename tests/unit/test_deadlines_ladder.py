"""The reminder ladder in working days: where each rung of a unit's period falls."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.plan import Audience, Plan, ReminderLadder
from contracts.plan.workdays import DayChanges, WorkingCalendar
from services.common.periods import Period, find_period
from services.deadlines.domain import UnitDue, unit_period
from services.deadlines.ladder import RungAt, rungs
from tests.support.plans import make_plan, report_kind, six_months, task, unit

pytestmark = pytest.mark.unit

VN = dt.timezone(dt.timedelta(hours=7))
CALENDAR = WorkingCalendar()


def plan_with(kind: dict[str, Any]) -> Plan:
    return make_plan(
        plan_id="kh-thang",
        consolidating_unit_id="van-phong",
        effective_from="2025-01-01",
        units=[
            unit("van-phong", "Văn phòng", "specialised_office"),
            unit("xa-a", "Xã A", "commune"),
        ],
        tasks=[task("nv-1", "II.1", "Nhiệm vụ", ["van-phong", "xa-a"], text="Làm việc")],
        schedule=[kind],
    )


def period(plan: Plan, period_id: str) -> Period:
    found = find_period(plan, period_id)
    assert found is not None
    return found


def local(r: RungAt) -> tuple[str, str]:
    return r.rung_id, r.at.astimezone(VN).strftime("%a %d/%m/%Y %H:%M")


def ladder_of(p: Period, plan: Plan, calendar: WorkingCalendar = CALENDAR) -> list[RungAt]:
    assert p.kind.reminders is not None
    return rungs(p, p.kind.reminders, calendar, plan.tz)


def test_the_default_ladder_on_an_ordinary_june() -> None:
    """Due before Tuesday 15/6/2027: the due day is Monday 14/6; lock 30/6."""
    plan = plan_with(six_months(reminders={}))
    found = ladder_of(period(plan, "kh-thang.2027.6-thang"), plan)
    assert [local(r) for r in found] == [
        ("b14", "Tue 25/05/2027 08:00"),
        ("b7", "Thu 03/06/2027 08:00"),
        ("b3", "Wed 09/06/2027 08:00"),
        ("b1", "Fri 11/06/2027 08:00"),
        ("b0", "Mon 14/06/2027 08:00"),
        ("a1", "Tue 15/06/2027 08:00"),
        ("a1+7d", "Tue 22/06/2027 08:00"),
        ("a1+14d", "Tue 29/06/2027 08:00"),
    ]
    assert [r.overdue for r in found] == [False] * 5 + [True] * 3
    assert found[0].reaches == (Audience.OFFICER,)
    assert Audience.LEADERSHIP in found[-1].reaches and Audience.OFFICE in found[-1].reaches


def test_a_due_day_on_a_sunday_moves_to_friday_and_meets_the_rung_before() -> None:
    """Due before Monday 15/6/2026: the due day is Sunday 14/6; b0 and b1 are both Friday."""
    plan = plan_with(six_months(reminders={}))
    found = ladder_of(period(plan, "kh-thang.2026.6-thang"), plan)
    assert [local(r) for r in found][:5] == [
        ("b14", "Tue 26/05/2026 08:00"),
        ("b7", "Thu 04/06/2026 08:00"),
        ("b3", "Wed 10/06/2026 08:00"),
        ("b0", "Fri 12/06/2026 08:00"),
        ("a1", "Mon 15/06/2026 08:00"),
    ]


def test_tet_2027_pushes_rungs_around_the_holiday() -> None:
    """Due before Monday 15/2/2027: Tết is 4–10/2, so the week before has two working days."""
    plan = plan_with(
        report_kind(
            "thang-1",
            "Báo cáo tháng 1",
            due_before="02-15",
            data_from="01-01",
            data_to="01-31",
            opens_days_before_due=45,
            closes_days_after_due=10,
            reminders={
                "rungs": [{"working_days_before_due": n} for n in (7, 3, 1, 0)]
                + [{"working_days_after_due": 1, "reaches": ["officer", "office"]}]
            },
        )
    )
    found = ladder_of(period(plan, "kh-thang.2027.thang-1"), plan)
    assert [local(r) for r in found] == [
        ("b7", "Thu 28/01/2027 08:00"),
        ("b3", "Wed 03/02/2027 08:00"),
        ("b0", "Fri 12/02/2027 08:00"),
        ("a1", "Mon 15/02/2027 08:00"),
        ("a1+7d", "Mon 22/02/2027 08:00"),
    ]


def test_a_weekend_due_date_in_november() -> None:
    """Due before Saturday 20/11/2027: the due day is Friday 19/11."""
    plan = plan_with(
        report_kind(
            "hang-nam",
            "Báo cáo năm",
            due_before="11-20",
            data_from="12-15",
            data_from_previous_year=True,
            data_to="11-14",
            reminders={"send_at": "07:30", "overdue_every_days": 0},
        )
    )
    found = ladder_of(period(plan, "kh-thang.2027.hang-nam"), plan)
    assert [local(r) for r in found][-3:] == [
        ("b1", "Thu 18/11/2027 07:30"),
        ("b0", "Fri 19/11/2027 07:30"),
        ("a1", "Mon 22/11/2027 07:30"),
    ]


def test_an_extension_moves_the_rungs_and_a_morning_due_keeps_them_before_it() -> None:
    plan = plan_with(six_months(reminders={}))
    base = period(plan, "kh-thang.2027.6-thang")
    extended = dt.datetime(2027, 6, 23, 7, 0, tzinfo=VN)  # Wednesday, 07:00
    own = unit_period(base, UnitDue(due_at=extended, closes_at=extended + dt.timedelta(days=10)))
    found = {r.rung_id: local(r)[1] for r in ladder_of(own, plan)}
    # The due day is Wednesday 23/6, but 08:00 on it is after the due instant: Tuesday.
    assert found["b0"] == "Tue 22/06/2027 08:00"
    assert "b1" not in found  # the same instant as b0: one reminder
    assert found["a1"] == "Thu 24/06/2027 08:00"


def test_a_plans_own_day_off_moves_a_rung() -> None:
    plan = plan_with(six_months(reminders={}))
    calendar = CALENDAR.with_changes(DayChanges(days_off=frozenset({dt.date(2027, 6, 14)})))
    found = {
        r.rung_id: local(r)[1]
        for r in ladder_of(period(plan, "kh-thang.2027.6-thang"), plan, calendar)
    }
    assert found["b0"] == "Fri 11/06/2027 08:00"
    assert "b1" not in found  # also Friday 11/6: one reminder
    assert found["b3"] == "Wed 09/06/2027 08:00"


def test_a_ladder_without_its_rungs_repeated_or_half_said_is_refused() -> None:
    with pytest.raises(ValidationError, match="không được trùng"):
        ReminderLadder.model_validate({"rungs": [{"working_days_before_due": 1}] * 2})
    with pytest.raises(ValidationError, match="đúng một"):
        ReminderLadder.model_validate({"rungs": [{"reaches": ["officer"]}]})
    with pytest.raises(ValidationError, match="đúng một"):
        ReminderLadder.model_validate(
            {"rungs": [{"working_days_before_due": 1, "working_days_after_due": 1}]}
        )


def test_a_kind_without_a_ladder_keeps_its_calendar_day_reminders() -> None:
    plan = plan_with(six_months())
    kind = period(plan, "kh-thang.2027.6-thang").kind
    assert kind.reminders is None
    assert kind.reminder_days_before_due == [7, 3, 1]


def test_a_filing_exception_reopens_the_ladder_past_the_lock_for_that_unit() -> None:
    from services.deadlines.domain import Reopened, due_emissions

    plan = plan_with(six_months(reminders={}))
    p = period(plan, "kh-thang.2027.6-thang")  # locks 30/6; a1+14d was 29/6

    def rung_keys(at: dt.datetime, reopened: dict[str, dict[str, Reopened]]) -> set[str]:
        emissions = due_emissions(
            plan,
            [p],
            {},
            at,
            catch_up=dt.timedelta(days=30),
            calendar=CALENDAR,
            reopened=reopened,
        )
        return {e.key for e in emissions if e.key.startswith("rung|")}

    tuesday = dt.datetime(2027, 7, 6, 9, tzinfo=VN)  # a1+21d would be 6/7 08:00
    assert rung_keys(tuesday, {}) == set()
    granted = dt.datetime(2027, 7, 2, 10, tzinfo=VN)
    exception = {
        p.id: {"xa-a": Reopened(until=dt.datetime(2027, 7, 16, tzinfo=VN), granted_at=granted)}
    }
    assert rung_keys(tuesday, exception) == {f"rung|{p.id}|xa-a|a1+21d"}
    # Between the grant and the next rung nothing is sent late (29/6 was while it was locked).
    assert rung_keys(dt.datetime(2027, 7, 3, 9, tzinfo=VN), exception) == set()
    # The last rung before the exception ends, and none after.
    assert rung_keys(dt.datetime(2027, 7, 13, 9, tzinfo=VN), exception) == {
        f"rung|{p.id}|xa-a|a1+28d"
    }
    assert rung_keys(dt.datetime(2027, 7, 17, 9, tzinfo=VN), exception) == set()
