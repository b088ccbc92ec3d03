"""MongoDB connection (PyMongo's async API) and the dead-letter store every consumer uses."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

from bson import Binary
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

Document = dict[str, Any]

MAX_STORED_BYTES = 15 * 1024 * 1024
"""A MongoDB document holds 16 MiB; a larger poison record keeps its size and hash."""


def connect(uri: str) -> AsyncMongoClient[Document]:
    # Times come back aware (UTC); BSON dates keep milliseconds only, see ``to_millis``.
    return AsyncMongoClient(
        uri, tz_aware=True, serverSelectionTimeoutMS=5000, uuidRepresentation="standard"
    )


def to_millis(moment: dt.datetime) -> dt.datetime:
    """Truncate to what a BSON date stores, so a value read back equals the one published."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def insert_each(
    collection: AsyncCollection[Document], documents: Sequence[Document]
) -> set[int]:
    """Insert every document whose ``_id`` is new, in one unordered ``insert_many``; returns
    the positions of those that were there already. Any other error is raised (the documents
    before and after it may be stored: each insert stands alone, as ``insert_one``'s would)."""
    if not documents:
        return set()
    try:
        await collection.insert_many(documents, ordered=False)
    except BulkWriteError as error:
        errors = error.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return {e["index"] for e in errors}
    return set()


DUPLICATE_KEY = 11000


async def ping(db: AsyncDatabase[Document]) -> bool:
    try:
        await db.command("ping")
    except Exception:  # any failure means "not ready"; the probe reports it
        return False
    return True


def _text(text: str) -> str:
    """``text`` storable on every backend: PostgreSQL (FerretDB's other backend) refuses a
    NUL character in a string, so a poison record's preview or error would never be stored.
    The raw bytes are kept apart, as binary."""
    return text.replace("\x00", "\ufffd")


class DeadLetters:
    """Records a consumer set aside, kept with their raw bytes so that nothing is lost."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db["dead_letters"]

    async def create_indexes(self) -> None:
        """Nothing beyond ``_id``: the collection stays small and is read whole."""

    async def put(
        self,
        *,
        consumer: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]],
        reason: str,
        error: str,
        attempts: int,
        at: dt.datetime,
    ) -> None:
        # Keyed by position: a redelivered poison record is recorded once, not twice.
        letter_id = f"{consumer}|{topic}|{partition}|{offset}"
        outcome = {"reason": reason, "error": _text(error[:2000]), "attempts": attempts}
        try:
            await self._collection.insert_one(
                {
                    "_id": letter_id,
                    "consumer": consumer,
                    "topic": topic,
                    "partition": partition,
                    "offset": offset,
                    "at": to_millis(at),
                    "key": Binary(key) if key is not None else None,
                    # Raw bytes for replay, a readable preview for people.
                    "value": Binary(value[:MAX_STORED_BYTES]),
                    "value_bytes": len(value),
                    "value_sha256": hashlib.sha256(value).hexdigest(),
                    "preview": _text(value[:2000].decode("utf-8", "replace")),
                    # Documents, not pairs: FerretDB stores no nested arrays.
                    "headers": [{"name": k, "value": Binary(v or b"")} for k, v in headers],
                    "replayed_at": None,
                    **outcome,
                }
            )
        except DuplicateKeyError:
            await self._collection.update_one({"_id": letter_id}, {"$set": outcome})

    async def list(self, limit: int = 100) -> list[Document]:
        cursor = self._collection.find({}, {"value": 0, "key": 0, "headers": 0})
        return await cursor.sort("at", -1).limit(limit).to_list()

    async def get(self, letter_id: str) -> Document | None:
        return await self._collection.find_one({"_id": letter_id})

    async def replayed(self, letter_id: str, at: dt.datetime) -> None:
        await self._collection.update_one(
            {"_id": letter_id}, {"$set": {"replayed_at": to_millis(at)}}
        )

    async def discard(self, letter_id: str, at: dt.datetime, reason: str) -> bool:
        """Mark a letter that can never be handled (e.g. garbage) as dealt with; it is kept
        for the record. False if there is no such letter."""
        result = await self._collection.update_one(
            {"_id": letter_id}, {"$set": {"discarded_at": to_millis(at), "discarded": reason}}
        )
        return result.matched_count == 1

    async def waiting(self) -> dict[str, int]:
        """Letters neither replayed nor discarded, counted per consumer."""
        # Filtered here, not in the query: the collection is small and read whole, and
        # FerretDB would filter in its own process all the same.
        letters = await self._collection.find(
            {}, {"consumer": 1, "replayed_at": 1, "discarded_at": 1}
        ).to_list()
        counts: dict[str, int] = {}
        for letter in letters:
            if letter.get("replayed_at") is None and letter.get("discarded_at") is None:
                counts[letter["consumer"]] = counts.get(letter["consumer"], 0) + 1
        return counts
