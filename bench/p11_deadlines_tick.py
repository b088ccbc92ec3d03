"""P11: the deadlines rung-day tick for 100,000 units × 2 periods (issue 11).

Each repetition is a fresh ``python -m bench.deadlines_tick --json`` process, as a service's
start is: the plan generated and loaded, the collector told to leave it alone (``gc.freeze``),
then one scan decision on the worst day, every unit owing a rung, each emission carrying its
event's JSON as the outbox stores it. No I/O and no server: it times the decision the scan
makes before it stores each chunk (``bench/README.md``, "The deadlines tick").
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from bench.context import Run
from bench.harness import Row, Spread, log

ID = "P11"
GOAL_SECONDS = 1.0
GOAL_MB = 300.0


async def run(run: Run) -> list[Row]:
    units = run.bounds.p11_units
    figures = []
    for rep in range(run.bounds.repetitions):
        figures.append(await _one_tick(units))
        f = figures[-1]
        log(f"P11: repetition {rep + 1}: rung-day tick {f['first_seconds']:.2f} s "
            f"({f['first_cpu_seconds']:.2f} s CPU), peak {f['peak_traced_mb']:.0f} MB traced, "
            f"steady tick {f['steady_seconds']:.2f} s")  # fmt: skip
    first = Spread.of([f["first_seconds"] for f in figures])
    cpu = Spread.of([f["first_cpu_seconds"] for f in figures])
    steady = Spread.of([f["steady_seconds"] for f in figures])
    peak = max(f["peak_traced_mb"] for f in figures)
    rss_before = max(f["rss_before_mb"] for f in figures)
    rss_peak = max(f["rss_peak_mb"] for f in figures)
    met = first.median < GOAL_SECONDS and peak < GOAL_MB
    return [
        Row(
            ID,
            f"deadlines rung-day tick, {units:,} units × 2 periods "
            f"({figures[0]['emissions']:,} rungs decided and serialised)",
            f"{first.text('s', 2)}, CPU {cpu.text('s', 2)}; tick peak {peak:.0f} MB "
            f"(RSS {rss_before:.0f} → {rss_peak:.0f} MB, the plan loaded before); "
            f"steady tick {steady.text('s', 2)}",
            goal=f"< {GOAL_SECONDS:g} s, < {GOAL_MB:g} MB",
            met=met,
            figures={"runs": figures, "first_median": first.median},
        )
    ]


async def _one_tick(units: int) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.deadlines_tick",
        "--units",
        str(units),
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"bench.deadlines_tick exited {process.returncode}: {err.decode()}")
    figures: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return figures
