"""One deadlines scan decision (no I/O) for many units: ``python -m bench.deadlines_tick``.

Issue 11's goal: one tick for 100,000 units × 2 periods under 1 s and 300 MB on the 2-core
machine. The plan is generated (one office, N communes, the six-month and annual reports with
the default working-day ladder); the clock is 16/6/2027 09:00 local, one day after a1, with
nobody having reported, the worst case (every unit owes, every unit has a rung to send).
The decisions are taken as the scan takes them (``handlers.decision_chunks``): made lazily,
a chunk of ``SCAN_CHUNK`` at a time, each chunk let go before the next is made (the scan
stores it there). Prints the time, the peak memory that tracemalloc sees (Python
allocations) and the process's RSS before the tick (the plan loaded) and at its peak; with
``--json`` the figures, as ``make bench``'s P11 reads them (``bench/p11_deadlines_tick.py``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from contracts.plan import Plan
from contracts.plan.workdays import WorkingCalendar, load_day_changes
from services.common.periods import Period, periods_around
from services.deadlines.domain import Emission, emissions_due
from services.deadlines.handlers import decision_chunks
from tests.support.plans import make_plan, report_kind, six_months, task, unit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument(
        "--no-freeze",
        action="store_true",
        help="leave the plan to the collector's full passes (the service freezes it at start)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON (P11)")
    args = parser.parse_args()
    figures = measure(args.units, freeze=not args.no_freeze)
    if args.json:
        print(json.dumps(figures))
        return
    print(
        f"units={args.units} open_periods={figures['open_periods']} "
        f"emissions={figures['emissions']}: first tick (every unit owes a rung, every event "
        f"built) {figures['first_seconds']:.2f}s ({figures['first_cpu_seconds']:.2f}s CPU), "
        f"peak {figures['peak_traced_mb']:.0f}MB (traced), RSS {figures['rss_before_mb']:.0f}MB "
        f"with the plan → peak {figures['rss_peak_mb']:.0f}MB; steady tick (rungs already "
        f"sent) {figures['steady_seconds']:.2f}s with {figures['steady_new']} new (goal < 1 s, "
        f"< 300 MB); gc {'frozen' if figures['frozen'] else 'not frozen'}, load average "
        f"{figures['load_average']:.1f}"
    )


def rung_day(units: int) -> tuple[Plan, list[Period], dt.datetime, WorkingCalendar]:
    """The plan of ``units`` communes, its periods, the worst moment and the calendar."""
    ids = [f"xa-{n:06d}" for n in range(units)]
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
    calendar.is_working_day(now.date())  # loads the holidays library, as a service's start does
    return plan, periods_around(plan, now), now, calendar


def measure(units: int, *, freeze: bool = True) -> dict[str, Any]:
    """One rung-day tick and one steady tick for ``units`` communes, in this process."""
    plan, periods, now, calendar = rung_day(units)
    if freeze:
        gc.freeze()  # as the service's start does (services/deadlines/__main__.py)

    def tick(decided: Callable[[str], bool] | None = None) -> Iterator[list[Emission]]:
        return decision_chunks(
            emissions_due(
                plan,
                periods,
                {},
                now,
                catch_up=dt.timedelta(days=30),
                calendar=calendar,
                decided=decided,
            )
        )

    # Timed without tracemalloc (it slows allocation-heavy code several times over), then
    # once more under it for the peak. The keys are kept for the steady tick, as the service
    # remembers the keys it stored. The machine is shared: the CPU time and the load average
    # say how much of the wall time was ours. Each emission carries its event's JSON, the
    # outbox's entry but for the store's own fields: the tick is decisions and serialisation.
    rss_before = _status_mb("VmRSS")
    known: set[str] = set()
    started, cpu = time.perf_counter(), time.process_time()
    for chunk in tick():
        known.update(e.key for e in chunk)
    first, first_cpu = time.perf_counter() - started, time.process_time() - cpu
    rss_peak = _status_mb("VmHWM")
    # The steady state: the same scan again, every decision known to the process.
    started = time.perf_counter()
    again = sum(len(chunk) for chunk in tick(known.__contains__))
    steady = time.perf_counter() - started
    tracemalloc.start()
    for _ in tick():
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "units": units,
        "open_periods": sum(1 for p in periods if p.opens_at <= now < p.closes_at),
        "emissions": len(known),
        "first_seconds": first,
        "first_cpu_seconds": first_cpu,
        "steady_seconds": steady,
        "steady_new": again,
        "peak_traced_mb": peak / 1e6,
        "rss_before_mb": rss_before,
        "rss_peak_mb": rss_peak,
        "frozen": freeze,
        "load_average": os.getloadavg()[0],
    }


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (kB there), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1000
    return float("nan")


if __name__ == "__main__":
    main()
