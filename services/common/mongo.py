"""MongoDB connection (PyMongo's async API) and the dead-letter store every consumer uses."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]


def connect(uri: str) -> AsyncMongoClient[Document]:
    # Times come back aware (UTC); BSON dates keep milliseconds only, see ``to_millis``.
    return AsyncMongoClient(
        uri, tz_aware=True, serverSelectionTimeoutMS=5000, uuidRepresentation="standard"
    )


def to_millis(moment: dt.datetime) -> dt.datetime:
    """Truncate to what a BSON date stores, so a value read back equals the one published."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def ping(db: AsyncDatabase[Document]) -> bool:
    try:
        await db.command("ping")
    except Exception:  # any failure means "not ready"; the probe reports it
        return False
    return True


class DeadLetters:
    """Messages a consumer gave up on, kept with the raw bytes so nothing is lost."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db["dead_letters"]

    async def create_indexes(self) -> None:
        await self._collection.create_index([("consumer", 1), ("at", -1)])

    async def put(
        self,
        *,
        consumer: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes,
        reason: str,
        error: str,
        attempts: int,
        at: dt.datetime,
    ) -> None:
        # Keyed by position: a redelivered poison message is recorded once, not twice.
        await self._collection.update_one(
            {"_id": f"{consumer}|{topic}|{partition}|{offset}"},
            {
                "$setOnInsert": {
                    "consumer": consumer,
                    "topic": topic,
                    "partition": partition,
                    "offset": offset,
                    "at": to_millis(at),
                    "key": key.decode("utf-8", "replace") if key else None,
                    "value": value.decode("utf-8", "replace"),
                },
                "$set": {"reason": reason, "error": error[:2000], "attempts": attempts},
            },
            upsert=True,
        )

    async def list(self, limit: int = 100) -> list[Document]:
        return await self._collection.find().sort("at", -1).limit(limit).to_list()
