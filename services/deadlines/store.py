"""What the deadlines service keeps: who has reported, and which announcements it has decided.

Shaped for a store that reads by scanning (see bench/README.md): who reported is kept per
period (``submitted.<period_id>``, one document per unit), read whole at each scan; decisions
(``emissions``) grow with every reminder ever sent, so they are only inserted into, and the
unique ``_id`` (the emission key) is what makes a decision happen once across restarts and
replicas. Keys this process has seen decided are remembered, so a scan does not insert again.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterable

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.common.mongo import Document, to_millis
from services.common.outbox import Outbox, Ref
from services.deadlines.domain import Emission

EMISSIONS, SUBMITTED = "emissions", "submitted."


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
    def known_decided(self, key: str) -> bool:
        """Whether this process already saw ``key`` decided (no store access)."""

    @abc.abstractmethod
    async def record_emission(self, emission: Emission, *, recorded_at: dt.datetime) -> bool:
        """Record the decision and queue its event; False if the key was already decided."""


class MongoDeadlinesStore(DeadlinesStore):
    def __init__(self, db: AsyncDatabase[Document], outbox: Outbox) -> None:
        self._db = db
        self._outbox = outbox
        self.emissions: AsyncCollection[Document] = db[EMISSIONS]
        self._decided: set[str] = set()

    async def create_indexes(self) -> None:
        """``_id`` is all either collection needs."""

    def _submitted(self, period_id: str) -> AsyncCollection[Document]:
        return self._db[SUBMITTED + period_id]

    async def record_submission(
        self, period_id: str, unit_id: str, received_at: dt.datetime
    ) -> bool:
        try:
            await self._submitted(period_id).insert_one(
                {"_id": unit_id, "first_received_at": to_millis(received_at)}
            )
        except DuplicateKeyError:
            return False
        return True

    async def submitted_units(self, period_ids: Iterable[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for period_id in period_ids:
            units = {doc["_id"] async for doc in self._submitted(period_id).find({}, {"_id": 1})}
            if units:
                found[period_id] = units
        return found

    def known_decided(self, key: str) -> bool:
        return key in self._decided

    async def record_emission(self, emission: Emission, *, recorded_at: dt.datetime) -> bool:
        try:
            entry = await self._outbox.intend(emission.event, Ref(EMISSIONS, emission.key))
        except DuplicateKeyError:
            # The same decision is queued (ids are name-based), perhaps as the intent of a
            # process that died before deciding it: not remembered as decided, so that a
            # later scan decides it if the relay drops that intent.
            return False
        try:
            await self.emissions.insert_one(
                {
                    "_id": emission.key,
                    "kind": emission.kind.value,
                    "period_id": emission.period_id,
                    "unit_id": emission.unit_id,
                    "due_since": to_millis(emission.event.occurred_at),
                    "recorded_at": to_millis(recorded_at),
                    "event_id": entry["_id"],
                }
            )
        except DuplicateKeyError:
            await self._outbox.abandon(entry)
            self._decided.add(emission.key)
            return False
        await self._outbox.commit(entry)
        self._decided.add(emission.key)
        return True
