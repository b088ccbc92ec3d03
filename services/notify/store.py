"""The delivery ledger: one document per notification, its state, and its outgoing event."""

from __future__ import annotations

import abc
import datetime as dt
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from contracts.envelope import Event
from services.common.mongo import Document, to_millis
from services.common.outbox import outbox_entry
from services.notify.domain import Outgoing

SENT, FAILED, PENDING = "sent", "failed", "pending"


class Ledger(abc.ABC):
    @abc.abstractmethod
    async def claim(self, message: Outgoing, now: dt.datetime) -> Document:
        """The ledger entry for this message, created pending if it is new."""

    @abc.abstractmethod
    async def attempted(self, notification_id: str, error: str) -> int:
        """Record a failed attempt; returns the attempts so far."""

    @abc.abstractmethod
    async def finish(
        self, notification_id: str, status: str, event: Event, now: dt.datetime
    ) -> None:
        """Mark sent or failed, storing the event that says so in the same write."""

    @abc.abstractmethod
    async def list(self, limit: int) -> list[Document]: ...


class MongoLedger(Ledger):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.notifications: AsyncCollection[Document] = db["notifications"]

    async def create_indexes(self) -> None:
        await self.notifications.create_index([("status", 1), ("created_at", 1)])
        await self.notifications.create_index("cause_event_id")

    async def claim(self, message: Outgoing, now: dt.datetime) -> Document:
        fields: dict[str, Any] = {
            "status": PENDING,
            "attempts": 0,
            "channel": message.channel,
            "template": message.template,
            "recipient": message.recipient,
            "subject": message.subject,
            "unit_id": message.unit_id,
            "plan_id": message.plan_id,
            "period_id": message.period_id,
            "cause_event_id": str(message.cause.event_id),
            "cause_event_type": message.cause.event_type,
            "created_at": to_millis(now),
        }
        await self.notifications.update_one(
            {"_id": message.notification_id}, {"$setOnInsert": fields}, upsert=True
        )
        entry = await self.notifications.find_one({"_id": message.notification_id})
        assert entry is not None
        return entry

    async def attempted(self, notification_id: str, error: str) -> int:
        await self.notifications.update_one(
            {"_id": notification_id}, {"$inc": {"attempts": 1}, "$set": {"last_error": error}}
        )
        entry = await self.notifications.find_one({"_id": notification_id}, {"attempts": 1})
        return int(entry["attempts"]) if entry else 0

    async def finish(
        self, notification_id: str, status: str, event: Event, now: dt.datetime
    ) -> None:
        await self.notifications.update_one(
            {"_id": notification_id},
            {
                "$set": {
                    "status": status,
                    "finished_at": to_millis(now),
                    "outbox": outbox_entry(event),
                }
            },
        )

    async def list(self, limit: int) -> list[Document]:
        cursor = self.notifications.find({}, {"outbox": 0}).sort("created_at", -1)
        return await cursor.limit(limit).to_list()
