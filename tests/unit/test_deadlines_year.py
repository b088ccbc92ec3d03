"""A whole year of a plan with working-day ladders, travelled with the injectable clock.

Every emitted event is compared with a list written out by hand from the calendar (units,
rungs, instants), not computed by the code under test: Tết 2027, a due date on a Saturday, an
extension, a unit that reports part-way, a returned report, and a unit that never reports.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from contracts.events import DeadlineApproaching, DeadlineOverdue, DeadlineSummary
from contracts.plan import Plan
from contracts.plan.workdays import WorkingCalendar, load_day_changes
from services.common.clock import FixedClock
from services.common.periods import periods_around
from services.deadlines.domain import EmissionKind, UnitDue, due_emissions
from tests.support.plans import make_plan, report_kind, six_months, task, unit

pytestmark = pytest.mark.unit

VN = dt.timezone(dt.timedelta(hours=7))
TICK = dt.timedelta(hours=3)
"""From 01:00 UTC (08:00 local, when rungs are sent): 2,920 scans in the year."""
P = "kh-nam"


def vn(day: str, time: str = "08:00") -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=VN).astimezone(dt.UTC)


def year_plan() -> Plan:
    ladder: dict[str, Any] = {}
    return make_plan(
        plan_id=P,
        consolidating_unit_id="van-phong",
        effective_from="2026-06-01",
        units=[
            unit("van-phong", "Văn phòng", "specialised_office"),
            unit("xa-a", "UBND xã A", "commune"),
            unit("xa-b", "UBND xã B", "commune"),
        ],
        tasks=[task("nv-1", "II.1", "Nhiệm vụ", ["van-phong", "xa-a", "xa-b"], text="Làm")],
        schedule=[
            # Due before Monday 15/2/2027, right after Tết (4–10/2).
            report_kind(
                "tet",
                "Báo cáo tháng 1",
                due_before="02-15",
                data_from="01-01",
                data_to="01-31",
                opens_days_before_due=45,
                closes_days_after_due=10,
                reminders=ladder,
            ),
            # Due before Tuesday 15/6/2027; lock 30/6.
            six_months(opens_days_before_due=30, closes_days_after_due=15, reminders=ladder),
            # Due before Saturday 20/11/2027; lock 5/12.
            report_kind(
                "hang-nam",
                "Báo cáo năm",
                due_before="11-20",
                data_from="12-15",
                data_from_previous_year=True,
                data_to="11-14",
                opens_days_before_due=30,
                closes_days_after_due=15,
                reminders=ladder,
            ),
        ],
    )


UNITS = ("van-phong", "xa-a", "xa-b")

# Written from a 2027 wall calendar (Tết 4–10/2, 30/4, 1/5 observed 3/5, 2/9–3/9), 08:00 local.
TET = {  # due day Sunday 14/2 → Friday 12/2; the working days before it skip 4–10/2
    "b14": "2027-01-19",
    "b7": "2027-01-28",
    "b3": "2027-02-03",
    "b0": "2027-02-12",  # b1 is the same Friday: one reminder
    "a1": "2027-02-15",
    "a1+7d": "2027-02-22",
}
JUNE = {
    "b14": "2027-05-25",
    "b7": "2027-06-03",
    "b3": "2027-06-09",
    "b1": "2027-06-11",
    "b0": "2027-06-14",
    "a1": "2027-06-15",
    "a1+7d": "2027-06-22",
    "a1+14d": "2027-06-29",
}
NOVEMBER = {  # due day Friday 19/11 (due date a Saturday); opened 21/10, b14 is 1/11
    "b14": "2027-11-01",
    "b7": "2027-11-10",
    "b3": "2027-11-16",
    "b1": "2027-11-18",
    "b0": "2027-11-19",
    "a1": "2027-11-22",
    "a1+7d": "2027-11-29",
}
# xa-a reports the six-month report on 10/6 11:00 (after b3); van-phong is granted on 12/6 an
# extension to Wednesday 23/6 07:00 (lock 5/7): its moved ladder has b7 on 14/6 (the first rung
# after the decision), b3 18/6, b0 Tuesday 22/6 (08:00 on 23/6 is past the due instant), a1
# 24/6 and a1+7d 1/7.
EXTENDED_DUE = dt.datetime(2027, 6, 23, 7, 0, tzinfo=VN)
MOVED = {"b7": "2027-06-14", "b3": "2027-06-18", "b0": "2027-06-22", "a1": "2027-06-24"}
MOVED |= {"a1+7d": "2027-07-01"}


# xa-b files the annual report on 17/11 11:00 (after b3), which is returned for revision on
# 25/11 14:00 (after a1) and never sent again: it re-enters the ladder at the next rung, a1+7d
# on 29/11; a1+14d would be 6/12, after the lock.


def expected() -> list[tuple[str, str, str, dt.datetime]]:
    rows = []
    for unit_id in UNITS:
        rows += [(f"{P}.2027.tet", unit_id, r, vn(d)) for r, d in TET.items()]
    for unit_id in ("van-phong", "xa-a"):
        rows += [(f"{P}.2027.hang-nam", unit_id, r, vn(d)) for r, d in NOVEMBER.items()]
    back = ("b14", "b7", "b3", "a1+7d")
    rows += [(f"{P}.2027.hang-nam", "xa-b", r, vn(NOVEMBER[r])) for r in back]
    june = f"{P}.2027.6-thang"
    rows += [(june, "xa-b", r, vn(d)) for r, d in JUNE.items()]
    rows += [(june, "xa-a", r, vn(JUNE[r])) for r in ("b14", "b7", "b3")]
    rows += [(june, "van-phong", r, vn(JUNE[r])) for r in ("b14", "b7", "b3", "b1")]
    rows += [(june, "van-phong", r, vn(d)) for r, d in MOVED.items()]
    return sorted(rows, key=lambda row: (row[3], row[0], row[1]))


def test_a_year_of_rungs_matches_the_hand_written_list() -> None:
    plan = year_plan()
    calendar = WorkingCalendar(load_day_changes())
    june, year = f"{P}.2027.6-thang", f"{P}.2027.hang-nam"
    submitted: dict[str, set[str]] = {}
    returned: dict[str, dict[str, dt.datetime]] = {}
    extended: dict[str, dict[str, UnitDue]] = {}
    decided: set[str] = set()
    emitted: list[tuple[str, str, str, dt.datetime]] = []
    summaries: dict[tuple[str, str], DeadlineSummary] = {}
    now = dt.datetime(2027, 1, 1, 1, tzinfo=dt.UTC)
    while now < dt.datetime(2028, 1, 1, tzinfo=dt.UTC):
        if now == vn("2027-06-10", "11:00"):
            submitted[june] = {"xa-a"}
        if now == vn("2027-06-12", "14:00"):
            extended[june] = {
                "van-phong": UnitDue(
                    EXTENDED_DUE, EXTENDED_DUE + dt.timedelta(days=12), decided_at=now
                )
            }
        if now == vn("2027-11-17", "11:00"):
            submitted[year] = {"xa-b"}
        if now == vn("2027-11-25", "14:00"):
            returned[year] = {"xa-b": now}
        clock = FixedClock(now)
        for e in due_emissions(
            plan,
            periods_around(plan, clock.now()),
            submitted,
            clock.now(),
            catch_up=dt.timedelta(days=30),
            extended=extended,
            calendar=calendar,
            returned=returned,
        ):
            if e.kind is EmissionKind.SUMMARY and e.key not in decided:
                assert isinstance(e.event, DeadlineSummary)
                assert e.event.occurred_at == now, e.key
                summaries[(e.period_id, e.event.payload.rung)] = e.event
            if e.key in decided or e.kind not in (EmissionKind.REMINDER, EmissionKind.OVERDUE):
                decided.add(e.key)
                continue
            decided.add(e.key)
            event = e.event
            assert isinstance(event, DeadlineApproaching | DeadlineOverdue)
            rung = event.payload.rung
            assert rung is not None and e.unit_id is not None
            # Sent when due, not late: a tick falls on 08:00 local each day.
            assert event.occurred_at == now, e.key
            emitted.append((e.period_id, e.unit_id, rung, now))
        now += TICK
    assert emitted == expected()

    # One summary for the office on each of the period's rung days while someone owes.
    assert sorted(summaries) == sorted(
        [(f"{P}.2027.tet", r) for r in TET]
        + [(june, r) for r in JUNE]
        + [(year, r) for r in NOVEMBER]
    )

    def pending(period_id: str, rung: str) -> dict[str, tuple[bool, bool]]:
        payload = summaries[(period_id, rung)].payload
        return {u.unit_id: (u.overdue, u.returned) for u in payload.pending}

    assert pending(june, "b1") == {"van-phong": (False, False), "xa-b": (False, False)}
    assert pending(june, "a1") == {"van-phong": (False, False), "xa-b": (True, False)}
    assert summaries[(june, "a1")].payload.reaches == ["office", "leadership"]
    assert pending(year, "b1") == {"van-phong": (False, False), "xa-a": (False, False)}
    assert pending(year, "a1+7d") == {
        "van-phong": (True, False),
        "xa-a": (True, False),
        "xa-b": (True, True),
    }
