"""P6: from the 201 of a report to its receipt in the inbox, at a steady 100 reports/s.

The whole system runs: submissions stores and relays, notify consumes and sends over SMTP to
Mailpit. The delay is Mailpit's own arrival time of each receipt minus the moment the 201 was
read; the 60 s are measured as five consecutive 12 s windows (the repetitions).
"""

from __future__ import annotations

import time

from bench.context import Run
from bench.harness import Row, Spread, log, percentile
from bench.http import Connection
from bench.load import LoadResult, open_loop
from bench.mail_seen import MailSeen
from bench.resources import snapshot
from bench.workload import Workload

ID = "P6"
INTAKE = "/api/v1/submissions"
GOAL_P99_S = 2.0
GRACE_SECONDS = 60.0


async def run(run: Run) -> list[Row]:
    b = run.bounds
    system = run.shared_system()
    port = system.port("submissions")
    workload = await Workload.fetch(port)
    mail = MailSeen(system.servers.mailpit_api, system.sender)
    mail.start()
    try:
        posted: dict[str, tuple[float, str]] = {}
        """receipt number -> (Unix time the 201 was read, unit)"""

        async def send(connection: Connection, i: int) -> bool:
            status, answer = await connection.post_json(
                INTAKE, workload.body(i), workload.headers(i)
            )
            if status != 201:
                return False
            posted[answer["receipt_no"]] = (time.time(), workload.unit(i))
            return True

        def wanted() -> dict[str, int]:
            return {r: workload.receipts_per_report[unit] for r, (_, unit) in posted.items()}

        def expected() -> int:
            return sum(wanted().values())

        log("P6: warming up (3 s at the same rate)")
        await open_loop(port, send, rate=b.p6_rate, seconds=3.0)
        await mail.wait_for(wanted(), GRACE_SECONDS)
        posted.clear()
        mail.reset()

        windows: list[tuple[LoadResult, list[str]]] = []
        for w in range(b.repetitions):
            before = set(posted)
            load = await open_loop(port, send, rate=b.p6_rate, seconds=b.p6_seconds / b.repetitions)
            windows.append((load, [r for r in posted if r not in before]))
            log(
                f"P6: window {w + 1}: {load.rate:.0f} req/s, POST p99 {load.p(99):.0f} ms, "
                f"{load.errors} errors; {mail.missing(wanted())} of {expected()} receipts "
                "not in yet"
            )
        complete = await mail.wait_for(wanted(), GRACE_SECONDS)
        log(f"P6: {mail.missing(wanted())} of {expected()} receipts missing (all in: {complete})")
        run.samples["after P6"] = await snapshot(system, 5.0)
    finally:
        await mail.stop()

    def delays(receipts: list[str]) -> list[float]:
        return [created - posted[r][0] for r in receipts for created in mail.arrived.get(r, [])]

    everything = delays(list(posted))
    p99 = Spread.of([percentile(delays(receipts), 99) for _, receipts in windows])
    p50 = Spread.of([percentile(delays(receipts), 50) for _, receipts in windows])
    missing = mail.missing(wanted())
    post_errors = sum(load.errors for load, _ in windows)
    sent = sum(load.completed for load, _ in windows)
    admitted = Spread.of([load.rate for load, _ in windows])
    return [
        Row(
            ID,
            f"HTTP 201 → receipt in Mailpit, {b.p6_rate:.0f} reports/s for {b.p6_seconds:.0f} s",
            f"p99 {p99.text('s', 2)}; p50 {p50.median:.2f} s; missing {missing} of {expected()}; "
            # Admission control answers what intake cannot take 503 at once: the delays are
            # those of the reports admitted, and the row says how many were.
            f"admitted {admitted.text('reports/s', 0)}, {post_errors} POSTs refused",
            goal=f"p99 < {GOAL_P99_S:.0f} s, nothing missing",
            met=p99.median < GOAL_P99_S and missing == 0 and post_errors == 0,
            figures={
                "reports_accepted": sent,
                "post_errors": post_errors,
                "receipts_expected": expected(),
                "receipts_missing": missing,
                "unmatched_messages": mail.unmatched,
                "delay_p50_s": p50.samples,
                "delay_p99_s": p99.samples,
                "delay_p99_all_s": percentile(everything, 99),
                "delay_max_s": max(everything, default=float("nan")),
                "post_p99_ms": [load.p(99) for load, _ in windows],
                "achieved_rate": [load.rate for load, _ in windows],
            },
        )
    ]
