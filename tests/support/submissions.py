"""Reports as a unit would file them against the seed plan, and an intake wired to a database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.common.clock import Clock
from services.common.mongo import Document
from services.common.outbox import Outbox
from services.common.reference import Catalog
from services.submissions.handlers import Intake
from services.submissions.models import SubmissionCreate
from services.submissions.store import MongoSubmissionsStore

SEED = Path(__file__).resolve().parents[2] / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"
SEED_PERIOD = "kh-nq35-ngoc-hoi.2027.6-thang"
SEED_OPEN_AT = dt.datetime(2027, 6, 1, 3, 0, tzinfo=dt.UTC)
"""Inside the seed plan's 2027 six-month period (open 15 May to 29 June), before its due date."""


def report(
    results: str = "Tổ chức 4 buổi quán triệt Nghị quyết 35-NQ/TW.",
    *,
    unit_id: str = "xa-bo-y",
    period_id: str = SEED_PERIOD,
    **fields: Any,
) -> SubmissionCreate:
    """A valid one-task report of ``unit_id`` (xã Bờ Y by default) for the seed plan."""
    return SubmissionCreate.model_validate(
        {
            "period_id": period_id,
            "unit_id": unit_id,
            "submitted_by": {"name": "Nguyễn Thị Hà"},
            "tasks": [
                {
                    "task_id": "ii-1-1-tuyen-truyen-giao-duc",
                    "status": "completed",
                    "results": results,
                    "indicators": [{"code": "so-buoi-tuyen-truyen", "value": 4}],
                }
            ],
            **fields,
        }
    )


async def intake(
    db: AsyncDatabase[Document], clock: Clock, *, wakes: list[int] | None = None
) -> Intake:
    """The submissions service's intake on ``db`` with the seed plan; ``wakes`` counts wakes."""
    store = MongoSubmissionsStore(db)
    await store.create_indexes()

    def wake() -> None:
        if wakes is not None:
            wakes.append(1)

    return Intake(Catalog.load([SEED]), store, Outbox(db, clock), clock, wake)
