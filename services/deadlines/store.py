"""What the deadlines service keeps: who has reported, and which announcements it has decided.

Both collections are keyed so that writing twice is harmless: a redelivered submission event
changes nothing, and an announcement already decided cannot be decided again.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterable

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.common.mongo import Document, to_millis
from services.common.outbox import outbox_entry
from services.deadlines.domain import Emission


class DeadlinesStore(abc.ABC):
    @abc.abstractmethod
    async def record_submission(
        self, period_id: str, unit_id: str, received_at: dt.datetime
    ) -> bool:
        """Remember that ``unit_id`` reported for ``period_id``; False if already known."""

    @abc.abstractmethod
    async def submitted_units(self, period_ids: Iterable[str]) -> dict[str, set[str]]:
        """The units that have reported, by period id (periods without reports are absent)."""

    @abc.abstractmethod
    async def recorded_keys(self, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` already recorded as emissions."""

    @abc.abstractmethod
    async def record_emission(self, emission: Emission, *, recorded_at: dt.datetime) -> bool:
        """Record the decision and its event in one write; False if the key was recorded."""


class MongoDeadlinesStore(DeadlinesStore):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.submitted: AsyncCollection[Document] = db["submitted"]
        self.emissions: AsyncCollection[Document] = db["emissions"]
        """Also the outbox the relay publishes from."""

    async def create_indexes(self) -> None:
        await self.submitted.create_index([("period_id", 1), ("unit_id", 1)])
        await self.emissions.create_index([("period_id", 1), ("kind", 1)])

    async def record_submission(
        self, period_id: str, unit_id: str, received_at: dt.datetime
    ) -> bool:
        result = await self.submitted.update_one(
            {"_id": f"{period_id}|{unit_id}"},
            {
                "$setOnInsert": {
                    "period_id": period_id,
                    "unit_id": unit_id,
                    "first_received_at": to_millis(received_at),
                }
            },
            upsert=True,
        )
        return result.upserted_id is not None

    async def submitted_units(self, period_ids: Iterable[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        cursor = self.submitted.find(
            {"period_id": {"$in": list(period_ids)}}, {"period_id": 1, "unit_id": 1}
        )
        async for doc in cursor:
            found.setdefault(doc["period_id"], set()).add(doc["unit_id"])
        return found

    async def recorded_keys(self, keys: Iterable[str]) -> set[str]:
        cursor = self.emissions.find({"_id": {"$in": list(keys)}}, {"_id": 1})
        return {doc["_id"] async for doc in cursor}

    async def record_emission(self, emission: Emission, *, recorded_at: dt.datetime) -> bool:
        # _id is the emission key: the unique index every collection has makes "exactly one
        # decision per key" hold across restarts and replicas, without a transaction.
        try:
            await self.emissions.insert_one(
                {
                    "_id": emission.key,
                    "kind": emission.kind.value,
                    "period_id": emission.period_id,
                    "unit_id": emission.unit_id,
                    "due_since": to_millis(emission.event.occurred_at),
                    "recorded_at": to_millis(recorded_at),
                    "outbox": outbox_entry(emission.event),
                }
            )
        except DuplicateKeyError:
            return False
        return True
