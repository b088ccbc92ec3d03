"""The replicas of one service: which are alive, and which one takes on what the others left.

Each replica writes a heartbeat under its name and removes it when it stops. For a job that
belongs to no live replica (the outbox entries of one that is gone), a lease picks one taker:
time is cut into slots, and the first replica to insert a slot's document holds the lease for
that slot. An insert under a unique ``_id`` is atomic on MongoDB and on FerretDB alike (FerretDB
has no atomic conditional update to build a compare-and-set from), and a lookup by ``_id`` is
the one query FerretDB pushes down. A holder that dies loses the lease at the end of its slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from services.common.clock import Clock
from services.common.mongo import Document, to_millis

log = logging.getLogger(__name__)

FORGET_AFTER = dt.timedelta(days=1)


class SlotLease:
    """``holds()`` says whether this replica (``holder``) holds the lease for the current slot."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        holder: str,
        clock: Clock,
        *,
        slot: dt.timedelta = dt.timedelta(seconds=30),
    ) -> None:
        self._collection = collection
        self._holder = holder
        self._clock = clock
        self._slot_seconds = slot.total_seconds()
        self._known: tuple[int, bool] | None = None
        """The last slot asked about and its answer: one round trip per slot, not per call."""

    async def holds(self) -> bool:
        slot = int(self._clock.now().timestamp() // self._slot_seconds)
        if self._known is not None and self._known[0] == slot:
            return self._known[1]
        key = _key(slot)
        try:
            await self._collection.insert_one(
                {"_id": key, "holder": self._holder, "claimed_at": to_millis(self._clock.now())}
            )
            mine = True
        except DuplicateKeyError:
            claimed = await self._collection.find_one({"_id": key})
            mine = claimed is not None and claimed.get("holder") == self._holder
        self._known = (slot, mine)
        # A few documents at most: the range filter's scan costs nothing here.
        with contextlib.suppress(PyMongoError):
            await self._collection.delete_many({"_id": {"$lt": _key(slot - 1)}})
        return mine


def _key(slot: int) -> str:
    return f"slot:{slot:012d}"  # zero-padded: the ids sort as the slots do


class Replicas:
    """This replica's heartbeat, the others that are alive, and the lease among them all."""

    def __init__(
        self,
        db: AsyncDatabase[Document],
        me: str,
        clock: Clock,
        *,
        beat: dt.timedelta = dt.timedelta(seconds=10),
        silent_after: dt.timedelta = dt.timedelta(seconds=45),
    ) -> None:
        self.me = me
        self._seen = db["replicas"]
        self._clock = clock
        self._beat = beat
        self._silent_after = silent_after
        self.lease = SlotLease(db["replica_lease"], me, clock)
        self._others: tuple[dt.datetime, frozenset[str]] | None = None

    async def beat(self) -> None:
        await self._seen.replace_one(
            {"_id": self.me}, {"seen_at": to_millis(self._clock.now())}, upsert=True
        )

    async def run(self) -> None:
        """Beat until cancelled; a missed beat (database away) is said and retried."""
        while True:
            try:
                await self.beat()
            except PyMongoError as error:
                log.warning("replica heartbeat: %s: %s", type(error).__name__, error)
            await asyncio.sleep(self._beat.total_seconds())

    async def leave(self) -> None:
        """Stopping: what this replica left behind is the others' at once."""
        await self._seen.delete_one({"_id": self.me})

    async def others_alive(self) -> frozenset[str]:
        """The other replicas heard from lately (read at most once per beat)."""
        now = self._clock.now()
        if self._others is not None and now - self._others[0] < self._beat:
            return self._others[1]
        since = to_millis(now - self._silent_after)
        forgotten = to_millis(now - FORGET_AFTER)
        seen = await self._seen.find({}).to_list()
        alive = frozenset(
            doc["_id"] for doc in seen if doc["_id"] != self.me and doc["seen_at"] >= since
        )
        # Replicas that crashed and never came back (a container's name is new each time).
        if gone := [doc["_id"] for doc in seen if doc["seen_at"] < forgotten]:
            await self._seen.delete_many({"_id": {"$in": gone}})
        self._others = (now, alive)
        return alive
