"""``python -m bench [--only P0,P3]``: run the benchmarks, print one table, write the results.

Servers that are not running are started and stopped again at the end; the services under
test run as separate processes in the run's own namespace (``bench<random>``), whose databases
and topics are dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import logging
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import (
    p0_intake_growth,
    p1_intake_concurrency,
    p2_subscriber,
    p3_outbox_relay,
    p6_receipt_mail,
    p8_resources,
    p9_mail_pool,
    p10_consolidation,
    p11_deadlines_tick,
    results,
)
from bench.context import Bounds, Run
from bench.harness import Row, failed_row, log, render_table
from bench.system import local_servers

Benchmark = Callable[[Run], Awaitable[list[Row]]]
# Run in this order: P8's idle sample and bursts come right before P6, on the same processes.
BENCHMARKS: dict[str, tuple[str, Benchmark]] = {
    "P0": ("intake latency and relay delay as reports pile up", p0_intake_growth.run),
    "P1": ("intake POST, concurrency sweep", p1_intake_concurrency.run),
    "P2": ("subscriber with manual ack and idempotent store", p2_subscriber.run),
    "P3": ("outbox relay", p3_outbox_relay.run),
    "P6": ("HTTP 201 → receipt in Mailpit", p6_receipt_mail.run),
    "P8": ("RSS and CPU per service", p8_resources.run),
    "P9": ("e-mails through notify's SMTP pool", p9_mail_pool.run),
    "P10": ("consolidation of 1,000 to 100,000 submissions", p10_consolidation.run),
    "P11": ("deadlines rung-day tick for 100,000 units", p11_deadlines_tick.run),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", help="comma-separated ids, e.g. P1 or P0,P3")
    parser.add_argument("--quick", action="store_true", help="smaller bounds (tries the bench)")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    parser.add_argument(
        "--p9-mails", type=int, help="P9's e-mails per path and mode (default 10,000; 300 quick)"
    )
    args = parser.parse_args(argv)
    # aiokafka warns about leader elections of the run's new topics: noise in the progress.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    chosen = [i.strip().upper() for i in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = [i for i in chosen if i not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}")
    chosen = [i for i in BENCHMARKS if i in chosen]
    bounds = Bounds.quick() if args.quick else Bounds()
    if args.p9_mails:
        bounds = dataclasses.replace(bounds, p9_mails=args.p9_mails)

    started_at = dt.datetime.now().astimezone()
    # The services run from the working tree: record the commit they started from.
    git_at_start = results.git_state()
    began = time.monotonic()
    # SIGTERM (a timeout, a CI cancel) unwinds like Ctrl-C: the clean-up below still runs.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with local_servers() as servers:
        log_root = Path(tempfile.mkdtemp(prefix="baocao-bench-"))
        run = Run(servers, bounds, log_root)
        log(
            f"namespace {run.namespace}; FerretDB on {servers.layout.ferretdb_backend}; "
            f"benchmarks {', '.join(chosen)}; logs {log_root}"
        )
        try:
            rows = asyncio.run(_run_all(run, chosen))
        finally:
            for system in run.systems:  # already stopped unless the run was interrupted
                system.stop()
        env = results.environment(servers.layout, asyncio.run(_ferretdb_version(run)))
        env["git"] = git_at_start
    table = render_table(rows)
    print(table)
    if not args.no_save and not args.quick:
        path = results.write(rows, env, started_at, time.monotonic() - began)
        log(f"results written to {path.relative_to(results.ROOT)}")
    log(f"done in {time.monotonic() - began:.0f} s")
    # A missed goal is a finding, not a failure; a benchmark that could not run is.
    return 1 if any("error" in row.figures for row in rows) else 0


async def _run_all(run: Run, chosen: list[str]) -> list[Row]:
    rows: list[Row] = []
    try:
        for bench_id in chosen:
            what, benchmark = BENCHMARKS[bench_id]
            if bench_id == "P6" and "P8" in chosen:
                await _guarded(rows, "P8", "idle and load samples", _prepare_p8, run)
            log(f"{bench_id}: {what}")
            began = time.monotonic()
            await _guarded(rows, bench_id, what, benchmark, run)
            log(f"{bench_id}: finished in {time.monotonic() - began:.0f} s")
    finally:
        await run.clean_up()
    return rows


async def _prepare_p8(run: Run) -> list[Row]:
    await p8_resources.prepare(run)
    return []


async def _guarded(
    rows: list[Row], bench_id: str, what: str, benchmark: Benchmark, run: Run
) -> None:
    """A benchmark that fails is reported in its row; the others still run."""
    try:
        rows.extend(await benchmark(run))
    except Exception as error:
        log(f"{bench_id} failed: {type(error).__name__}: {error}")
        rows.append(failed_row(bench_id, what, error))


async def _ferretdb_version(run: Run) -> str | None:
    from services.common.mongo import connect

    client = connect(run.servers.mongo_uri)
    try:
        info = await client.admin.command("buildInfo")
        return f"{info.get('ferretdbVersion', '?')} (MongoDB wire {info.get('version')})"
    except Exception:  # the version is nice to have; the stack's pin says the same
        return None
    finally:
        await client.close()


if __name__ == "__main__":
    sys.exit(main())
