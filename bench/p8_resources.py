"""P8: memory and CPU of each service idle, after intake load (twice) and after P6.

``prepare`` runs before P6 on the shared system: an idle sample, then the same intake burst
twice (the P1 shape: concurrent clients, every receipt mailed), each followed by a sample once
the mail is all in. Memory that keeps growing from the first burst to the identical second
one is what a leak looks like; the first burst itself may grow the heap once.
"""

from __future__ import annotations

import time

from bench.context import Run
from bench.harness import Row, Spread, log
from bench.http import Connection
from bench.load import closed_loop
from bench.mail_seen import MailSeen
from bench.resources import snapshot
from bench.workload import Workload

ID = "P8"
INTAKE = "/api/v1/submissions"
GOAL_RSS_MB = 120.0
GOAL_IDLE_CPU = 2.0
GROWTH_TOLERANCE = 0.05
"""RSS may move this much (5 %) between two identical bursts and still count as no growth."""
IDLE_WINDOW_SECONDS = 10.0


async def prepare(run: Run) -> None:
    system = run.shared_system()
    log(f"P8: letting the services settle, then sampling idle ({run.bounds.repetitions} × 10 s)")
    await snapshot(system, 5.0)
    idle = [await snapshot(system, IDLE_WINDOW_SECONDS) for _ in range(run.bounds.repetitions)]
    run.samples["idle"] = {
        name: {
            "rss_mb": max(s[name]["rss_mb"] for s in idle),
            "cpu_percent": Spread.of([s[name]["cpu_percent"] for s in idle]).median,
            "cpu_percent_low": min(s[name]["cpu_percent"] for s in idle),
            "cpu_percent_high": max(s[name]["cpu_percent"] for s in idle),
        }
        for name in system.processes
    }
    port = system.port("submissions")
    workload = await Workload.fetch(port)
    for burst in (1, 2):
        await _burst(run, port, workload, system.servers.mailpit_api, system.sender)
        run.samples[f"after load #{burst}"] = await snapshot(system, 5.0)
        log(f"P8: sampled after load #{burst}")


async def _burst(run: Run, port: int, workload: Workload, api: str, sender: str) -> None:
    wanted: dict[str, int] = {}

    async def send(connection: Connection, i: int) -> bool:
        status, answer = await connection.post_json(INTAKE, workload.body(i), workload.headers(i))
        if status == 201:
            wanted[answer["receipt_no"]] = workload.receipts_per_report[workload.unit(i)]
        return status == 201

    mail = MailSeen(api, sender)
    mail.start()
    try:
        began = time.monotonic()
        load = await closed_loop(
            port, send, clients=8, seconds=30.0, max_requests=run.bounds.p8_burst_requests
        )
        drained = await mail.wait_for(wanted, 60.0)
        log(
            f"P8: burst of {load.completed} reports ({load.rate:.0f} req/s), "
            f"{mail.missing(wanted)} of {sum(wanted.values())} receipts missing after "
            f"{time.monotonic() - began:.0f} s" + ("" if drained else " (gave up waiting)")
        )
    finally:
        await mail.stop()


async def run(run: Run) -> list[Row]:
    idle = run.samples.get("idle")
    if idle is None:
        await prepare(run)
        idle = run.samples["idle"]
    first, second = run.samples["after load #1"], run.samples["after load #2"]
    after_p6 = run.samples.get("after P6", {})
    rows = []
    for name, now in idle.items():
        growth = (second[name]["rss_mb"] - first[name]["rss_mb"]) / first[name]["rss_mb"]
        p6_text = f"; after P6 {after_p6[name]['rss_mb']:.0f} MB" if name in after_p6 else ""
        rows.append(
            Row(
                ID,
                f"{name}: RSS and CPU idle",
                f"{now['rss_mb']:.0f} MB, {now['cpu_percent']:.2f} % "
                f"({now['cpu_percent_low']:.2f}–{now['cpu_percent_high']:.2f})",
                goal=f"< {GOAL_RSS_MB:.0f} MB, < {GOAL_IDLE_CPU:.0f} % of a core",
                met=now["rss_mb"] < GOAL_RSS_MB and now["cpu_percent"] < GOAL_IDLE_CPU,
                figures={"idle": now},
            )
        )
        rows.append(
            Row(
                ID,
                f"{name}: RSS after two identical loads{' and P6' if p6_text else ''}",
                f"#1 {first[name]['rss_mb']:.0f} MB → #2 {second[name]['rss_mb']:.0f} MB" + p6_text,
                ratio=f"{growth * 100:+.1f} %",
                goal=f"no growth (≤ +{GROWTH_TOLERANCE:.0%}), < {GOAL_RSS_MB:.0f} MB",
                # The memory goal holds after P6 too: an overload must not leave a bloated heap.
                met=growth <= GROWTH_TOLERANCE
                and max(
                    first[name]["rss_mb"],
                    second[name]["rss_mb"],
                    after_p6.get(name, {}).get("rss_mb", 0.0),
                )
                < GOAL_RSS_MB,
                figures={
                    "after_load_1": first[name],
                    "after_load_2": second[name],
                    "after_p6": after_p6.get(name),
                },
            )
        )
    return rows
