"""P1: how many reports the intake takes per second, against the same app only validating.

Both endpoints parse and validate the same body in the same process; the difference is what
the intake adds: numbering, the store with its outbox entry, and the relay publishing it.
Only the submissions service runs (its own namespace), so the figure is the intake's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.context import Run
from bench.harness import Row, Spread, log, ratio_text
from bench.http import Connection
from bench.load import LoadResult, Send, closed_loop, open_loop
from bench.workload import Workload

ID = "P1"
WHAT = "intake POST, concurrency sweep"
INTAKE = "/api/v1/submissions"
ECHO = "/api/v1/submissions/validate"
GOAL_SHARE = 0.30
GOAL_P99_MS = 50.0


@dataclass(frozen=True)
class Level:
    clients: int
    rate: Spread
    p50: Spread
    p99: Spread
    errors: int


async def run(run: Run) -> list[Row]:
    system = run.start_system("p1", services=("submissions",))
    try:
        port = system.port("submissions")
        workload = await Workload.fetch(port)
        return await _measure(run, port, workload)
    finally:
        run.stop_system(system)


async def _measure(run: Run, port: int, workload: Workload) -> list[Row]:
    b = run.bounds

    async def intake(connection: Connection, i: int) -> bool:
        status, _ = await connection.request("POST", INTAKE, workload.body(i), workload.headers(i))
        return status == 201

    async def echo(connection: Connection, i: int) -> bool:
        status, _ = await connection.request("POST", ECHO, workload.body(i), workload.headers(i))
        return status == 200

    has_echo = await _answers(port, echo)
    if not has_echo:
        log(f"P1: {ECHO} is not served yet: the baseline is missing")
    paths: dict[str, Send] = {"intake": intake, **({"echo": echo} if has_echo else {})}

    log("P1: warming up")
    for send in paths.values():
        await closed_loop(port, send, clients=4, seconds=1.0, max_requests=b.p1_max_requests)

    sweep: dict[str, list[Level]] = {name: [] for name in paths}
    for clients in b.p1_clients:
        runs: dict[str, list[LoadResult]] = {name: [] for name in paths}
        for _ in range(b.repetitions):
            # Interleaved, so that drift (a growing collection, a busy neighbour) hits both.
            for name, send in paths.items():
                runs[name].append(
                    await closed_loop(
                        port,
                        send,
                        clients=clients,
                        seconds=b.p1_seconds,
                        max_requests=b.p1_max_requests,
                    )
                )
        for name, results in runs.items():
            level = _level(clients, results)
            sweep[name].append(level)
            log(
                f"P1: {name:<6} c={clients:<3} {level.rate.text('req/s')}, "
                f"p50 {level.p50.median:.1f} ms, p99 {level.p99.median:.1f} ms, "
                f"errors {level.errors}"
            )

    intake_peak = max(sweep["intake"], key=lambda lv: lv.rate.median)
    echo_peak = max(sweep["echo"], key=lambda lv: lv.rate.median) if has_echo else None
    share = (
        Spread.paired(intake_peak.rate.samples, echo_peak.rate.samples)
        if echo_peak
        else Spread.of([])
    )

    half = intake_peak.rate.median / 2
    log(f"P1: intake at half its peak, {half:.0f} req/s")
    steady = [
        await open_loop(port, intake, rate=half, seconds=b.p1_seconds * 1.5)
        for _ in range(b.repetitions)
    ]
    p99 = Spread.of([r.p(99) for r in steady])
    steady_errors = sum(r.errors for r in steady)

    figures = {
        "sweep": {
            name: [
                {
                    "clients": lv.clients,
                    "rate": lv.rate.samples,
                    "p50_ms": lv.p50.samples,
                    "p99_ms": lv.p99.samples,
                    "errors": lv.errors,
                }
                for lv in levels
            ]
            for name, levels in sweep.items()
        },
        "echo_path": ECHO if has_echo else None,
    }
    throughput = Row(
        ID,
        "intake POST peak req/s (validate, store with outbox) vs validate-only echo",
        f"{intake_peak.rate.text('req/s', 0)} at c={intake_peak.clients}",
        f"{echo_peak.rate.text('req/s', 0)} at c={echo_peak.clients}"
        if echo_peak
        else f"n/a ({ECHO} missing)",
        ratio_text(share),
        f"≥ {GOAL_SHARE:.0%} of echo peak",
        None
        if math.isnan(share.median)
        else share.median >= GOAL_SHARE and intake_peak.errors == 0,
        figures,
    )
    latency = Row(
        ID,
        f"intake POST p99 at half its peak ({half:.0f} req/s, open loop)",
        p99.text("ms"),
        goal=f"p99 < {GOAL_P99_MS:.0f} ms",
        met=p99.median < GOAL_P99_MS and steady_errors == 0,
        figures={
            "rate": half,
            "p99_ms": p99.samples,
            "p50_ms": [r.p(50) for r in steady],
            "errors": steady_errors,
        },
    )
    return [throughput, latency]


def _level(clients: int, results: list[LoadResult]) -> Level:
    return Level(
        clients,
        Spread.of([r.rate for r in results]),
        Spread.of([r.p(50) for r in results]),
        Spread.of([r.p(99) for r in results]),
        sum(r.errors for r in results),
    )


async def _answers(port: int, send: Send) -> bool:
    connection = Connection(port)
    try:
        return await send(connection, 0)
    finally:
        await connection.close()
