"""P0: does filing a report get slower as the years of reports pile up?

The submissions service alone, in its own namespace. At each level (0, 1,000, 10,000 and
100,000 reports already stored, see ``bench/seeding.py``) it files reports one at a time into
the open period and measures the POST (to its 201) and the relay delay (201 → the event read
from Kafka by a plain consumer here). Levels are cumulative; the service is stopped while the
store is seeded and started again to measure, so it reads the grown store from scratch.
"""

from __future__ import annotations

import time

from bench.context import Run
from bench.events_seen import EventsSeen
from bench.harness import Row, Spread, log, percentile
from bench.http import Connection
from bench.seeding import seed_reports
from bench.system import database_name
from bench.workload import Workload
from contracts.topics import SUBMISSION_RECEIVED
from services.common.mongo import connect

ID = "P0"
INTAKE = "/api/v1/submissions"
GOAL_FACTOR = 2.0
WARM_UP = 5
EVENT_TIMEOUT = 10.0


async def run(run: Run) -> list[Row]:
    b = run.bounds
    services = ("submissions",)
    system = run.start_system("p0", services)
    db_client = connect(run.servers.mongo_uri)
    db = db_client[database_name(system.namespace, "submissions")]
    seen = EventsSeen(run.servers.kafka, system.topic(SUBMISSION_RECEIVED.name))
    await seen.start()
    rows: list[Row] = []
    baseline_p50: float | None = None
    stored = 0
    try:
        for level in b.p0_levels:
            if level > stored:
                run.stop_system(system)
                began = time.perf_counter()
                await seed_reports(db, stored, level - stored)
                seeded_in = time.perf_counter() - began
                log(f"P0: seeded {level - stored} reports in {seeded_in:.0f} s (now {level})")
                stored = level
                system = run.start_system("p0", services)
            else:
                seeded_in = 0.0
            latency, delay, missing = await _measure(run, system.port("submissions"), seen)
            baseline_p50 = baseline_p50 or latency.median
            factor = latency.median / baseline_p50
            last = level == b.p0_levels[-1]
            log(
                f"P0: {level:>7} stored: POST p50 {latency.text('ms')}, "
                f"relay p50 {delay.text('ms')}, events missing {missing}"
            )
            rows.append(
                Row(
                    ID,
                    f"intake POST p50 / relay delay p50, {level:,} reports stored",
                    f"{latency.text('ms')} / {delay.median:.1f} ms ({delay.low:.1f}–"
                    f"{delay.high:.1f})",
                    ratio=f"{factor:.2f}× of 0",
                    goal=f"p50 at {b.p0_levels[-1]:,} ≤ {GOAL_FACTOR:.0f}× p50 at 0"
                    if last
                    else "—",
                    met=(factor <= GOAL_FACTOR and missing == 0) if last else None,
                    figures={
                        "stored": level,
                        "post_p50_ms": latency.samples,
                        "relay_delay_p50_ms": delay.samples,
                        "events_missing": missing,
                        "seed_seconds": round(seeded_in, 1),
                    },
                )
            )
    finally:
        await seen.stop()
        run.stop_system(system)
        await db_client.close()
    return rows


async def _measure(run: Run, port: int, seen: EventsSeen) -> tuple[Spread, Spread, int]:
    """Per repetition, the p50 of the POST latency and of the relay delay (ms)."""
    b = run.bounds
    workload = await Workload.fetch(port)
    connection = Connection(port)
    deadline = time.monotonic() + b.p0_seconds_per_level
    latencies, delays, missing, i = [], [], 0, 0
    try:
        for rep in range(b.repetitions + 1):  # the first is the warm-up
            posts, relays = [], []
            for _ in range(WARM_UP if rep == 0 else b.p0_posts_per_repetition):
                sent = time.perf_counter()
                status, answer = await connection.post_json(
                    INTAKE, workload.body(i), workload.headers(i)
                )
                answered = time.perf_counter()
                i += 1
                if status != 201:
                    raise RuntimeError(f"POST answered {status}: {answer}")
                arrived = await seen.wait_for(answer["submission_id"], EVENT_TIMEOUT)
                posts.append((answered - sent) * 1000)
                if arrived is None:
                    missing += 1
                else:
                    relays.append((arrived - answered) * 1000)
                if time.monotonic() > deadline:
                    break
            if rep:
                latencies.append(percentile(posts, 50))
                delays.append(percentile(relays, 50))
            if time.monotonic() > deadline:
                log("P0: time bound reached, fewer repetitions at this level")
                break
    finally:
        await connection.close()
    return Spread.of(latencies), Spread.of(delays), missing
