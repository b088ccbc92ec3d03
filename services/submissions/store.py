"""Where reports are kept: the port, and its MongoDB adapter."""

from __future__ import annotations

import abc

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.common.mongo import Document


class RevisionTaken(Exception):
    """Another request stored the same revision of this unit's report first."""


class SubmissionsStore(abc.ABC):
    @abc.abstractmethod
    async def next_sequence(self, name: str) -> int: ...

    @abc.abstractmethod
    async def latest(self, period_id: str, unit_id: str) -> Document | None: ...

    @abc.abstractmethod
    async def by_idempotency_key(self, unit_id: str, key: str) -> Document | None: ...

    @abc.abstractmethod
    async def insert(self, submission: Document) -> None:
        """Store a new revision; :class:`RevisionTaken` if that revision already exists."""

    @abc.abstractmethod
    async def get(self, submission_id: str) -> Document | None: ...

    @abc.abstractmethod
    async def history(self, period_id: str, unit_id: str) -> list[Document]: ...


def idempotency_id(unit_id: str, key: str | None, submission_id: str) -> str:
    # Always set and unique, so a plain unique index works: FerretDB has no partial indexes.
    return f"{unit_id}|{key}" if key else f"-|{submission_id}"


class MongoSubmissionsStore(SubmissionsStore):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.submissions: AsyncCollection[Document] = db["submissions"]
        self._counters: AsyncCollection[Document] = db["counters"]

    async def create_indexes(self) -> None:
        await self.submissions.create_index(
            [("period_id", 1), ("unit_id", 1), ("revision", 1)],
            unique=True,
            name="one_document_per_revision",
        )
        await self.submissions.create_index("idempotency_id", unique=True)

    async def next_sequence(self, name: str) -> int:
        counter = await self._counters.find_one_and_update(
            {"_id": name}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert counter is not None  # upsert with ReturnDocument.AFTER always returns one
        return int(counter["value"])

    async def latest(self, period_id: str, unit_id: str) -> Document | None:
        return await self.submissions.find_one(
            {"period_id": period_id, "unit_id": unit_id}, sort=[("revision", -1)]
        )

    async def by_idempotency_key(self, unit_id: str, key: str) -> Document | None:
        return await self.submissions.find_one({"idempotency_id": idempotency_id(unit_id, key, "")})

    async def insert(self, submission: Document) -> None:
        try:
            await self.submissions.insert_one(submission)
        except DuplicateKeyError as error:
            if "idempotency_id" in str(error):
                raise
            raise RevisionTaken(str(error)) from error

    async def get(self, submission_id: str) -> Document | None:
        return await self.submissions.find_one({"_id": submission_id})

    async def history(self, period_id: str, unit_id: str) -> list[Document]:
        cursor = self.submissions.find({"period_id": period_id, "unit_id": unit_id})
        return await cursor.sort("revision", 1).to_list()
