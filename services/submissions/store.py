"""Where reports are kept: the port, and its MongoDB adapter.

Shaped for a store that reads by scanning (FerretDB, see bench/README.md): the history of a
period, which grows with every report, is only ever inserted into on the intake path. What
intake reads is small: the period's heads (one document per unit), the idempotency keys of
the last day, and a checkpoint of the receipt counter.

- ``submissions.<period_id>``: every revision, insert-only; a unique (unit, revision) index
  decides revision races, which an insert checks in constant time.
- ``heads.<period_id>``: the latest revision of each unit (``_id`` = unit id). A hint kept
  up to date after each insert; when it lags (a crash, a lost race) the history repairs it.
- ``idempotency``: ``_id`` = unit|key, bound to a fingerprint of the request, expiring.
- ``receipt_numbers``: one insert per block of ``RECEIPT_BLOCK`` numbers, a unique ``_id`` per
  block (FerretDB loses concurrent ``$inc``s, a unique insert never double-issues);
  ``counters`` checkpoints the last block so a start-up does not scan.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.common.mongo import Document, to_millis

HISTORY, HEADS = "submissions.", "heads."
RECEIPT_BLOCK = 20
"""Receipt numbers a process reserves at once: one insert per 20 reports, not per report. A
restart leaves the unused rest of its block as a gap in the numbering, never a repeat."""


class RevisionTaken(Exception):
    """Another request stored the same revision of this unit's report first."""


class KeyState(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    DONE = "done"


@dataclass(frozen=True)
class KeyClaim:
    """What an Idempotency-Key stands for when a request arrives with it."""

    state: KeyState
    fingerprint: str
    submission_id: str | None = None
    period_id: str | None = None
    claimed_at: dt.datetime | None = None


class SubmissionsStore(abc.ABC):
    @abc.abstractmethod
    async def next_receipt_number(self) -> int: ...

    @abc.abstractmethod
    async def head(self, period_id: str, unit_id: str) -> Document | None:
        """The unit's latest revision in the period (a hint: see ``latest_in_history``)."""

    @abc.abstractmethod
    async def latest_in_history(self, period_id: str, unit_id: str) -> Document | None:
        """The unit's latest revision read from the history itself (slow; after races)."""

    @abc.abstractmethod
    async def insert(self, submission: Document) -> None:
        """Store a new revision; :class:`RevisionTaken` if that revision already exists."""

    @abc.abstractmethod
    async def advance_head(self, submission: Document) -> None:
        """Make ``submission`` the unit's head unless a later revision already is."""

    @abc.abstractmethod
    async def period_heads(self, period_id: str) -> list[Document]:
        """The latest version of every unit that filed for the period (no task contents)."""

    @abc.abstractmethod
    async def get(self, period_id: str, submission_id: str) -> Document | None: ...

    @abc.abstractmethod
    async def history(self, period_id: str, unit_id: str) -> list[Document]: ...

    @abc.abstractmethod
    async def by_idempotency_id(self, period_id: str, idempotency_id: str) -> Document | None:
        """The revision a keyed request stored, read from the history (after a crash)."""

    @abc.abstractmethod
    async def claim_key(
        self, key_id: str, fingerprint: str, period_id: str, now: dt.datetime, ttl: dt.timedelta
    ) -> KeyClaim:
        """Claim an Idempotency-Key: NEW if this request owns it, else what holds it."""

    @abc.abstractmethod
    async def complete_key(self, key_id: str, submission_id: str) -> None: ...

    @abc.abstractmethod
    async def release_key(self, key_id: str) -> None:
        """Forget a claim whose request stored nothing (it was refused or it died)."""

    @abc.abstractmethod
    async def forget_expired_keys(self, now: dt.datetime) -> int: ...


def key_id(unit_id: str, key: str) -> str:
    return f"{unit_id}|{key}"


class MongoSubmissionsStore(SubmissionsStore):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db
        self._keys: AsyncCollection[Document] = db["idempotency"]
        self._numbers: AsyncCollection[Document] = db["receipt_numbers"]
        self._counters: AsyncCollection[Document] = db["counters"]
        self._indexed: set[str] = set()
        self._claiming = asyncio.Lock()
        self._last_block: int | None = None
        self._block: tuple[int, int] | None = None
        self._next = 0

    @staticmethod
    def history_name(period_id: str) -> str:
        return HISTORY + period_id

    async def create_indexes(self) -> None:
        await self._keys.create_index("expires_at")

    async def _history(self, period_id: str) -> AsyncCollection[Document]:
        name = self.history_name(period_id)
        if name not in self._indexed:  # once per period and process, not once per request
            await self._db[name].create_index(
                [("unit_id", 1), ("revision", 1)], unique=True, name="one_document_per_revision"
            )
            self._indexed.add(name)
        return self._db[name]

    def _heads(self, period_id: str) -> AsyncCollection[Document]:
        return self._db[HEADS + period_id]

    async def next_receipt_number(self) -> int:
        if self._block is None or self._next > self._block[1]:
            await self._claim_block()
        assert self._block is not None
        # Taken before any await: concurrent requests of this process never compete.
        number = self._next
        self._next += 1
        return number

    async def _claim_block(self) -> None:
        """Reserve the next RECEIPT_BLOCK numbers with one insert (unique ``_id`` per block),
        and checkpoint its end so that a start-up never scans for the last number."""
        async with self._claiming:
            if self._block is not None and self._next <= self._block[1]:
                return  # another request of this process claimed one meanwhile
            if self._last_block is None:
                checkpoint = await self._counters.find_one({"_id": "receipt"})
                self._last_block = int(checkpoint["n"]) // RECEIPT_BLOCK if checkpoint else 0
            block = self._last_block + 1
            while True:
                try:
                    await self._numbers.insert_one({"_id": f"receipt-block|{block}"})
                except DuplicateKeyError:  # another replica took it: the next one
                    block += 1
                    continue
                break
            self._last_block = block
            end = block * RECEIPT_BLOCK
            self._block, self._next = (end - RECEIPT_BLOCK + 1, end), end - RECEIPT_BLOCK + 1
            # DuplicateKeyError: a later checkpoint is already there.
            with contextlib.suppress(DuplicateKeyError):
                await self._counters.update_one(
                    {"_id": "receipt", "n": {"$lt": end}}, {"$set": {"n": end}}, upsert=True
                )

    async def head(self, period_id: str, unit_id: str) -> Document | None:
        return await self._heads(period_id).find_one({"_id": unit_id})

    async def latest_in_history(self, period_id: str, unit_id: str) -> Document | None:
        history = await self._history(period_id)
        return await history.find_one({"unit_id": unit_id}, sort=[("revision", -1)])

    async def insert(self, submission: Document) -> None:
        history = await self._history(submission["period_id"])
        try:
            await history.insert_one(submission)
        except DuplicateKeyError as error:
            raise RevisionTaken(str(error)) from error

    async def advance_head(self, submission: Document) -> None:
        head = {k: v for k, v in submission.items() if k not in ("_id", "tasks")}
        head["submission_id"] = submission["_id"]
        # DuplicateKeyError: the head is already at this revision or a later one.
        with contextlib.suppress(DuplicateKeyError):
            await self._heads(submission["period_id"]).update_one(
                {"_id": submission["unit_id"], "revision": {"$lt": submission["revision"]}},
                {"$set": head},
                upsert=True,
            )

    async def period_heads(self, period_id: str) -> list[Document]:
        return await self._heads(period_id).find({}).to_list(None)

    async def get(self, period_id: str, submission_id: str) -> Document | None:
        history = await self._history(period_id)
        return await history.find_one({"_id": submission_id})

    async def history(self, period_id: str, unit_id: str) -> list[Document]:
        history = await self._history(period_id)
        return await history.find({"unit_id": unit_id}).sort("revision", 1).to_list()

    async def by_idempotency_id(self, period_id: str, idempotency_id: str) -> Document | None:
        history = await self._history(period_id)
        return await history.find_one({"idempotency_id": idempotency_id})

    async def claim_key(
        self, key_id: str, fingerprint: str, period_id: str, now: dt.datetime, ttl: dt.timedelta
    ) -> KeyClaim:
        try:
            await self._keys.insert_one(
                {
                    "_id": key_id,
                    "fingerprint": fingerprint,
                    "state": KeyState.IN_PROGRESS.value,
                    "period_id": period_id,
                    "submission_id": None,
                    "claimed_at": to_millis(now),
                    "expires_at": to_millis(now + ttl),
                }
            )
        except DuplicateKeyError:
            held = await self._keys.find_one({"_id": key_id})
            if held is not None:
                return KeyClaim(
                    state=KeyState(held["state"]),
                    fingerprint=held["fingerprint"],
                    submission_id=held.get("submission_id"),
                    period_id=held.get("period_id"),
                    claimed_at=held["claimed_at"],
                )
            return await self.claim_key(key_id, fingerprint, period_id, now, ttl)
        return KeyClaim(state=KeyState.NEW, fingerprint=fingerprint)

    async def complete_key(self, key_id: str, submission_id: str) -> None:
        await self._keys.update_one(
            {"_id": key_id},
            {"$set": {"state": KeyState.DONE.value, "submission_id": submission_id}},
        )

    async def release_key(self, key_id: str) -> None:
        await self._keys.delete_one({"_id": key_id, "state": KeyState.IN_PROGRESS.value})

    async def forget_expired_keys(self, now: dt.datetime) -> int:
        result = await self._keys.delete_many({"expires_at": {"$lt": to_millis(now)}})
        return result.deleted_count
