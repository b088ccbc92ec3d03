"""One deadlines scan decision (no I/O) for many units: ``python -m bench.deadlines_tick``.

Issue 11's goal: one tick for 100,000 units × 2 periods under 1 s and 300 MB on the 2-core
machine. The plan is generated (one office, N communes, the six-month and annual reports with
the default working-day ladder); the clock is 16/6/2027 09:00 local, one day after a1, with
nobody having reported, the worst case (every unit owes, every unit has a rung to send).
Prints the time and the peak memory that tracemalloc sees (Python allocations).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import tracemalloc
from collections.abc import Callable

from contracts.plan.workdays import WorkingCalendar, load_day_changes
from services.common.periods import periods_around
from services.deadlines.domain import Emission, due_emissions
from tests.support.plans import make_plan, report_kind, six_months, task, unit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=100_000)
    args = parser.parse_args()
    ids = [f"xa-{n:06d}" for n in range(args.units)]
    plan = make_plan(
        plan_id="kh-bench",
        consolidating_unit_id="van-phong",
        effective_from="2026-01-01",
        units=[unit("van-phong", "Văn phòng", "specialised_office")]
        + [unit(i, f"UBND xã {i}", "commune") for i in ids],
        tasks=[task("nv-1", "II.1", "Nhiệm vụ", ["van-phong", *ids], text="Làm")],
        schedule=[
            six_months(reminders={}),
            report_kind(
                "hang-nam",
                "Báo cáo năm",
                due_before="07-20",
                data_from="12-15",
                data_from_previous_year=True,
                data_to="07-14",
                opens_days_before_due=60,
                reminders={},
            ),
        ],
    )
    calendar = WorkingCalendar(load_day_changes())
    now = dt.datetime(2027, 6, 16, 9, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    periods = periods_around(plan, now)
    calendar.is_working_day(now.date())  # loads the holidays library, as a service's start does

    def tick(decided: Callable[[str], bool] | None = None) -> list[Emission]:
        return due_emissions(
            plan,
            periods,
            {},
            now,
            catch_up=dt.timedelta(days=30),
            calendar=calendar,
            decided=decided,
        )

    # Timed without tracemalloc (it slows allocation-heavy code several times over), then
    # once more under it for the peak.
    started = time.perf_counter()
    emissions = tick()
    first = time.perf_counter() - started
    # The steady state: the same scan again, every decision known to the process.
    known = {e.key for e in emissions}
    started = time.perf_counter()
    again = tick(known.__contains__)
    steady = time.perf_counter() - started
    del emissions
    tracemalloc.start()
    tick()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    open_periods = sum(1 for p in periods if p.opens_at <= now < p.closes_at)
    print(
        f"units={args.units} open_periods={open_periods} emissions={len(known)}: "
        f"first tick (every unit owes a rung, every event built) {first:.2f}s, "
        f"peak {peak / 1e6:.0f}MB (traced); steady tick (rungs already sent) {steady:.2f}s "
        f"with {len(again)} new (goal < 1 s, < 300 MB)"
    )


if __name__ == "__main__":
    main()
