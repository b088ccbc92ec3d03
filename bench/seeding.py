"""Reports already stored, as years of use would leave them in the submissions database.

Written straight into the store's layout (``services/submissions/store.py``): each report is a
revision in the history of one of the plan's *closed* periods (``submissions.<period_id>``),
with its head, and took a receipt number from the one global sequence. The open period is not
touched, so every P0 row files into a period of the same shape; what grows is everything else.
Inserts go in batches of at most 100 documents (larger ``insert_many`` calls misbehave on
FerretDB) and the service must not run meanwhile: it keeps the receipt counter in memory.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from bench.events import RESULTS
from bench.system import CLOCK_START, SEED_PLAN
from contracts.plan import Plan
from services.common.periods import Period, PeriodState, periods_of
from services.common.reference import load_plan
from services.submissions.domain import receipt_no
from services.submissions.store import HEADS, HISTORY

BATCH = 100
PARALLEL = 3


def closed_periods(plan: Plan) -> list[Period]:
    now = dt.datetime.fromisoformat(CLOCK_START)
    return [p for p in periods_of(plan, 2019, now.year) if p.state(now) is PeriodState.CLOSED]


async def seed_reports(db: AsyncDatabase[Any], start: int, count: int) -> None:
    """Add reports number ``start`` .. ``start + count - 1`` (0-based over the whole run)."""
    plan = load_plan(SEED_PLAN)
    periods = closed_periods(plan)
    units = plan.reporting_units()
    tasks = {
        u.id: [
            {
                "task_id": t.id,
                "status": "completed",
                "results": RESULTS,
                "indicators": [{"code": c, "value": 4.0} for c in t.indicator_codes],
                "difficulties": "",
                "proposals": "",
            }
            for t in plan.tasks_of(u.id)
        ]
        for u in units
    }
    for period in periods:
        # What the service created when these periods were open: inserts maintain it.
        await db[HISTORY + period.id].create_index(
            [("unit_id", 1), ("revision", 1)], unique=True, name="one_document_per_revision"
        )
    first_number = await _next_number(db)
    heads: dict[tuple[str, str], dict[str, Any]] = {}
    batches: dict[str, list[dict[str, Any]]] = {}
    pending: list[tuple[str, list[dict[str, Any]]]] = []
    for k in range(start, start + count):
        # Round-robin over periods, then units: every period's history grows alike.
        period = periods[k % len(periods)]
        unit = units[(k // len(periods)) % len(units)]
        revision = k // (len(periods) * len(units)) + 1
        received = period.opens_at + dt.timedelta(minutes=k % 10_000)
        number = first_number + (k - start)
        doc = {
            "_id": str(uuid.uuid4()),
            "receipt_no": receipt_no(received, plan, number),
            "plan_id": plan.id,
            "period_id": period.id,
            "unit_id": unit.id,
            "revision": revision,
            "supersedes": None,
            "received_at": received,
            "due_at": period.due_at,
            "on_time": True,
            "submitted_by": {"name": "Nguyễn Thị Hà", "email": None},
            "tasks": tasks[unit.id],
            "attachments": [],
            "idempotency_id": None,
            "event_id": str(uuid.uuid4()),
        }
        heads[(period.id, unit.id)] = doc
        batch = batches.setdefault(HISTORY + period.id, [])
        batch.append(doc)
        if len(batch) == BATCH:
            pending.append((HISTORY + period.id, batches.pop(HISTORY + period.id)))
        if len(pending) == PARALLEL:
            await _insert(db, pending)
            pending = []
    pending.extend(batches.items())
    await _insert(db, pending)
    await _numbers(db, first_number, count)
    for (period_id, unit_id), doc in heads.items():
        head = {k: v for k, v in doc.items() if k not in ("_id", "tasks")}
        head["submission_id"] = doc["_id"]
        await db[HEADS + period_id].replace_one({"_id": unit_id}, head, upsert=True)


async def _insert(db: AsyncDatabase[Any], batches: list[tuple[str, list[dict[str, Any]]]]) -> None:
    await asyncio.gather(*(db[name].insert_many(docs, ordered=False) for name, docs in batches))


async def _next_number(db: AsyncDatabase[Any]) -> int:
    # The service checkpoints the end of every block of numbers it reserves.
    checkpoint = await db["counters"].find_one({"_id": "receipt"})
    return int(checkpoint["n"]) + 1 if checkpoint else 1


async def _numbers(db: AsyncDatabase[Any], first: int, count: int) -> None:
    """The receipt numbers the seeded reports took, and the checkpoint the service reads."""
    numbers = [{"_id": f"receipt|{n}", "n": n} for n in range(first, first + count)]
    for i in range(0, len(numbers), BATCH * PARALLEL):
        chunk = numbers[i : i + BATCH * PARALLEL]
        await asyncio.gather(
            *(
                db["receipt_numbers"].insert_many(chunk[j : j + BATCH], ordered=False)
                for j in range(0, len(chunk), BATCH)
            )
        )
    last = first + count - 1
    await db["counters"].replace_one({"_id": "receipt"}, {"_id": "receipt", "n": last}, upsert=True)
