"""Where reports are kept: the port, and its MongoDB adapter."""

from __future__ import annotations

import abc

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
        await self._counters.create_index([("name", 1), ("n", -1)])

    async def next_sequence(self, name: str) -> int:
        # One document per number, claimed by insert: FerretDB's $inc (findAndModify or
        # update) loses increments under concurrency, a unique _id does not.
        last = await self._counters.find_one({"name": name}, sort=[("n", -1)])
        number = int(last["n"]) + 1 if last else 1
        while True:
            try:
                await self._counters.insert_one(
                    {"_id": f"{name}|{number}", "name": name, "n": number}
                )
            except DuplicateKeyError:
                number += 1
                continue
            return number

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
            # FerretDB's error does not name the index: ask which constraint was hit.
            pattern = (error.details or {}).get("keyPattern") or {}
            if "idempotency_id" in pattern or await self.submissions.find_one(
                {"idempotency_id": submission["idempotency_id"]}, {"_id": 1}
            ):
                raise
            raise RevisionTaken(str(error)) from error

    async def get(self, submission_id: str) -> Document | None:
        return await self.submissions.find_one({"_id": submission_id})

    async def history(self, period_id: str, unit_id: str) -> list[Document]:
        cursor = self.submissions.find({"period_id": period_id, "unit_id": unit_id})
        return await cursor.sort("revision", 1).to_list()
