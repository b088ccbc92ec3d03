"""The deadline decisions: what is due at a given moment, and under which key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from contracts.events import DeadlineApproaching, DeadlineOverdue, PeriodClosed, PeriodOpened
from contracts.plan import Plan
from services.common.clock import FixedClock
from services.common.periods import Period, find_period, periods_around
from services.common.reference import load_plan
from services.deadlines.domain import Emission, due_emissions, period_correlation_id
from tests.support.plans import make_plan, six_months, task, unit

pytestmark = pytest.mark.unit

SEED_PLAN = Path(__file__).resolve().parents[2] / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"
CATCH_UP = dt.timedelta(days=30)
DAY = dt.timedelta(days=1)


def small_plan(**kind: Any) -> Plan:
    """Two reporting units, one that only receives the plan, one with no task; one report kind."""
    return make_plan(
        plan_id="kh-thu",
        consolidating_unit_id="van-phong",
        effective_from="2025-01-01",
        units=[
            unit("ubnd", "UBND huyện", "peoples_committee", reports=False),
            unit("van-phong", "Văn phòng", "specialised_office"),
            unit("xa-a", "UBND xã A", "commune"),
            unit("xa-b", "UBND xã B", "commune"),
        ],
        tasks=[
            task(
                "nv-1",
                "II.1",
                "Nhiệm vụ",
                ["xa-a", "xa-b", "ubnd"],
                cooperating=["xa-b"],
                text="Làm việc",
            )
        ],
        schedule=[six_months(**kind)],
    )


def period_2027(plan: Plan) -> Period:
    period = find_period(plan, f"{plan.id}.2027.6-thang")
    assert period is not None
    return period


def decide(
    plan: Plan, at: dt.datetime, submitted: dict[str, set[str]] | None = None
) -> list[Emission]:
    now = FixedClock(at).now()
    return due_emissions(plan, periods_around(plan, now), submitted or {}, now, catch_up=CATCH_UP)


def keys(emissions: list[Emission]) -> list[str]:
    return [e.key for e in emissions]


def test_nothing_is_due_before_the_period_opens() -> None:
    plan = small_plan()
    assert decide(plan, period_2027(plan).opens_at - dt.timedelta(seconds=1)) == []


def test_the_period_opens_at_opens_at_for_the_reporting_units_only() -> None:
    plan = small_plan()
    period = period_2027(plan)

    [emission] = decide(plan, period.opens_at)

    assert emission.key == f"opened|{period.id}"
    event = emission.event
    assert isinstance(event, PeriodOpened)
    assert event.occurred_at == period.opens_at
    assert event.producer == "deadlines"
    assert event.correlation_id == period_correlation_id(period.id)
    # ubnd only receives the plan, van-phong has no task: neither is expected to report
    assert event.payload.expected_unit_ids == ["xa-a", "xa-b"]
    assert event.payload.period_id == period.id
    assert event.payload.due_at == period.due_at
    assert event.payload.closes_at == period.closes_at


@pytest.mark.parametrize("days_before", [7, 3, 1])
def test_a_reminder_is_due_at_each_offset_for_units_without_a_report(days_before: int) -> None:
    plan = small_plan()
    period = period_2027(plan)
    moment = period.due_at - days_before * DAY

    assert f"reminder|{period.id}|xa-a|{days_before}" not in keys(
        decide(plan, moment - dt.timedelta(seconds=1))
    )
    reminders = [e for e in decide(plan, moment) if isinstance(e.event, DeadlineApproaching)]

    assert keys(reminders) == [
        f"reminder|{period.id}|xa-a|{days_before}",
        f"reminder|{period.id}|xa-b|{days_before}",
    ]
    for reminder in reminders:
        assert isinstance(reminder.event, DeadlineApproaching)
        assert reminder.event.occurred_at == moment  # when it became due, not when decided
        assert reminder.event.payload.reminder_at == moment
        assert reminder.event.payload.days_before == days_before
        assert reminder.event.correlation_id == period_correlation_id(period.id)


def test_no_reminder_or_overdue_for_a_unit_that_reported() -> None:
    plan = small_plan()
    period = period_2027(plan)
    submitted = {period.id: {"xa-a"}}

    for at in (period.due_at - 7 * DAY, period.due_at - DAY, period.due_at):
        unit_keys = [e.key for e in decide(plan, at, submitted) if e.unit_id is not None]
        assert unit_keys
        assert all("|xa-b" in key for key in unit_keys), unit_keys


def test_after_a_long_gap_only_the_latest_reminder_is_due() -> None:
    plan = small_plan()
    period = period_2027(plan)

    # the service was down from before the 7-day reminder until 12 hours before the due date
    reminders = [
        e
        for e in decide(plan, period.due_at - dt.timedelta(hours=12))
        if e.key.startswith("reminder|")
    ]

    assert keys(reminders) == [f"reminder|{period.id}|xa-a|1", f"reminder|{period.id}|xa-b|1"]


def test_reminders_that_fall_before_the_opening_are_left_to_the_opening() -> None:
    plan = small_plan(opens_days_before_due=5)
    period = period_2027(plan)

    at_opening = decide(plan, period.opens_at)

    assert keys(at_opening) == [f"opened|{period.id}"]
    assert f"reminder|{period.id}|xa-a|3" in keys(decide(plan, period.due_at - 3 * DAY))


def test_units_are_overdue_from_the_due_date_until_the_period_closes() -> None:
    plan = small_plan()
    period = period_2027(plan)

    at_due = decide(plan, period.due_at)
    assert keys(at_due) == [
        f"opened|{period.id}",
        f"overdue|{period.id}|xa-a",
        f"overdue|{period.id}|xa-b",
    ]
    overdue = at_due[1].event
    assert isinstance(overdue, DeadlineOverdue)
    assert overdue.occurred_at == period.due_at
    assert overdue.payload.unit_id == "xa-a"
    assert not any(k.startswith("reminder|") for k in keys(at_due))

    before_closing = keys(decide(plan, period.closes_at - dt.timedelta(seconds=1)))
    assert f"overdue|{period.id}|xa-b" in before_closing
    assert f"closed|{period.id}" not in before_closing


def test_the_period_closes_at_closes_at() -> None:
    plan = small_plan()
    period = period_2027(plan)

    emissions = decide(plan, period.closes_at)

    assert keys(emissions) == [f"opened|{period.id}", f"closed|{period.id}"]
    closed = emissions[-1].event
    assert isinstance(closed, PeriodClosed)
    assert closed.occurred_at == closed.payload.closed_at == period.closes_at
    assert closed.correlation_id == emissions[0].event.correlation_id


def test_periods_closed_longer_than_the_catch_up_window_are_ignored() -> None:
    plan = small_plan()
    period = period_2027(plan)

    assert keys(decide(plan, period.closes_at + 30 * DAY)) == [
        f"opened|{period.id}",
        f"closed|{period.id}",
    ]
    assert decide(plan, period.closes_at + 30 * DAY + dt.timedelta(seconds=1)) == []


def test_a_first_deployment_does_not_announce_old_periods() -> None:
    plan = small_plan()  # in force since 2025: 2025 and 2026 periods exist but are long past
    now = FixedClock(dt.datetime(2027, 3, 1, tzinfo=dt.UTC)).now()
    periods = [
        p
        for y in (2025, 2026)
        for p in [find_period(plan, f"{plan.id}.{y}.6-thang")]
        if p is not None
    ]
    assert len(periods) == 2

    assert due_emissions(plan, periods, {}, now, catch_up=CATCH_UP) == []


def test_keys_and_event_ids_are_deterministic_and_unique() -> None:
    plan = small_plan()
    period = period_2027(plan)
    step = dt.timedelta(hours=6)
    moments = [
        period.opens_at + n * step
        for n in range(int((period.closes_at - period.opens_at) / step) + 1)
    ]

    seen: dict[str, Emission] = {}
    for at in moments:
        first, again = decide(plan, at), decide(plan, at)
        assert first == again  # same input, same keys, same events (event_id included)
        assert len(set(keys(first))) == len(first)
        for emission in first:
            seen.setdefault(emission.key, emission)
            assert seen[emission.key].event.event_id == emission.event.event_id

    assert len({e.event.event_id for e in seen.values()}) == len(seen)
    # the whole lifecycle: open, 3 reminders and overdue per unit, close
    assert len(seen) == 1 + 2 * 4 + 1


def test_emissions_come_oldest_first() -> None:
    plan = small_plan()
    period = period_2027(plan)

    emissions = decide(plan, period.due_at - DAY)
    moments = [e.event.occurred_at for e in emissions]

    assert moments == sorted(moments)
    assert emissions[0].key == f"opened|{period.id}"


@pytest.mark.skipif(not SEED_PLAN.exists(), reason="the seed plan is not written yet")
def test_seed_plan_due_date_is_midnight_local_time() -> None:
    plan = load_plan(SEED_PLAN)
    period = find_period(plan, "kh-nq35-ngoc-hoi.2027.6-thang")
    assert period is not None

    assert period.due_at == dt.datetime(2027, 6, 14, 17, 0, tzinfo=dt.UTC)
    assert period.due_at.astimezone(plan.tz).isoformat() == "2027-06-15T00:00:00+07:00"

    [opened] = decide(plan, period.opens_at)  # last year's periods are out of the window
    assert isinstance(opened.event, PeriodOpened)
    assert opened.event.payload.expected_unit_ids == [u.id for u in plan.reporting_units()]
    assert len(opened.event.payload.expected_unit_ids) >= 2

    # The seed plan's ladder counts working days before the due day, Monday 14/6/2027: three
    # working days before it is Wednesday 9/6, at 08:00 local.
    b3 = dt.datetime(2027, 6, 9, 1, 0, tzinfo=dt.UTC)
    assert b3.astimezone(plan.tz).isoformat() == "2027-06-09T08:00:00+07:00"
    reminders = [e.event for e in decide(plan, b3) if isinstance(e.event, DeadlineApproaching)]
    assert len(reminders) == len(plan.reporting_units())
    assert {(r.payload.rung, r.payload.working_days_before) for r in reminders} == {("b3", 3)}
    assert {r.occurred_at for r in reminders} == {b3}
    assert set(reminders[0].payload.reaches) == {"officer", "unit_head"}

    # Overdue from the first working day after the due day, 08:00, escalated.
    a1 = dt.datetime(2027, 6, 15, 1, 0, tzinfo=dt.UTC)
    assert not [e for e in decide(plan, a1 - dt.timedelta(minutes=1)) if e.kind == "overdue"]
    overdue = [e.event for e in decide(plan, a1) if isinstance(e.event, DeadlineOverdue)]
    assert len(overdue) == len(plan.reporting_units())
    assert {o.payload.rung for o in overdue} == {"a1"}
    assert "leadership" in overdue[0].payload.reaches
