"""P11: the deadlines rung-day tick for 100,000 units × 2 periods (issue 11).

Each repetition is a fresh ``python -m bench.deadlines_tick --json`` process, as a service's
start is: the plan generated and loaded, the collector told to leave it alone (``gc.freeze``),
then one scan decision on the worst day, every unit owing a rung, each emission carrying its
event's JSON as the outbox stores it. No I/O and no server: it times the decision the scan
makes before it stores each chunk (``bench/README.md``, "The deadlines tick").

A second row stores a rung day of ``p11_store_units`` communes on the real FerretDB as the
scan does, a chunk of 1,000 at a time (``record_emissions``: the intents, the decisions and
the ready copies each one ``insert_many``, then the superseded rungs), against the way before
it, each decision on its own (``record_emission``, three inserts, and its skipped rungs), over
the first 1,000. No goal of its own: the issue sets none for the storage.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
import time
from typing import Any

from bench.context import Run
from bench.deadlines_tick import rung_day
from bench.harness import Row, Spread, log
from bench.system import database_name
from services.common.clock import FixedClock
from services.common.mongo import connect
from services.common.outbox import Outbox
from services.deadlines.domain import emissions_due
from services.deadlines.handlers import SCAN_CHUNK, decision_chunks
from services.deadlines.store import EMISSIONS, MongoDeadlinesStore

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
        ),
        await _storage(run),
    ]


async def _storage(run: Run) -> Row:
    units = run.bounds.p11_store_units
    plan, periods, now, calendar = rung_day(units)
    emissions = [
        e
        for chunk in decision_chunks(
            emissions_due(plan, periods, {}, now, catch_up=dt.timedelta(days=30), calendar=calendar)
        )
        for e in chunk
    ]
    alone = emissions[:SCAN_CHUNK]
    skipped = sum(len(e.skipped) for e in emissions)
    client = connect(run.servers.mongo_uri)
    db = client[database_name(run.sub_namespace("p11"), "deadlines")]

    async def fresh() -> MongoDeadlinesStore:
        for name in await db.list_collection_names():
            await db.drop_collection(name)
        store = MongoDeadlinesStore(db, Outbox(db, FixedClock(now)))
        await store.create_indexes()
        return store

    async def batched() -> float:
        store = await fresh()
        began = time.perf_counter()
        for start in range(0, len(emissions), SCAN_CHUNK):
            chunk = emissions[start : start + SCAN_CHUNK]
            assert len(await store.record_emissions(chunk, recorded_at=now)) == len(chunk)
            await store.record_skipped(chunk, recorded_at=now)
        return len(emissions) / (time.perf_counter() - began)

    async def one_by_one() -> float:
        store = await fresh()
        began = time.perf_counter()
        for emission in alone:
            assert await store.record_emission(emission, recorded_at=now)
            await store.record_skipped([emission], recorded_at=now)
        return len(alone) / (time.perf_counter() - began)

    try:
        rates, baseline = [], []
        for rep in range(run.bounds.repetitions):
            rates.append(await batched())
            baseline.append(await one_by_one())
            log(f"P11 storage: repetition {rep + 1}: {rates[-1]:.0f} decisions/s in chunks, "
                f"{baseline[-1]:.0f}/s one by one")  # fmt: skip
        assert await db[EMISSIONS].count_documents({}) == len(alone) + sum(
            len(e.skipped) for e in alone
        )
    finally:
        await client.drop_database(db.name)
        await client.close()
    ours, theirs = Spread.of(rates), Spread.of(baseline)
    return Row(
        ID,
        f"deadlines rung-day storage, {len(emissions):,} decisions and {skipped:,} skipped "
        f"rungs, chunks of {SCAN_CHUNK:,} (FerretDB)",
        f"{ours.text('decisions/s', 0)}",
        f"{theirs.text('decisions/s', 0)} one by one (the first {len(alone):,})",
        f"{ours.median / theirs.median:.1f}×",
        figures={"batched_rates": rates, "one_by_one_rates": baseline},
    )


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
