"""What the deadlines service keeps: who has reported, and which announcements it has decided.

Shaped for a store that reads by scanning (see bench/README.md): who reported is kept per
period (``submitted.<period_id>``, one document per unit), read whole at each scan; decisions
(``emissions``) grow with every reminder ever sent, so they are only inserted into, and the
unique ``_id`` (the emission key) is what makes a decision happen once across restarts and
replicas. Keys this process has seen decided are remembered, so a scan does not insert again.

What office staff granted units (``TermsStore``) is kept per period as well, one document per
unit (``_id`` = unit id): ``extensions.<period_id>`` (approved extensions, read at each scan)
and ``exceptions.<period_id>`` (filing exceptions, shown on request). A grant replaces an
earlier one only if it was decided later, so a redelivered old event changes nothing.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from contracts.events import ExtensionDecidedPayload, FilingExceptionGrantedPayload
from services.common.mongo import Document, insert_each, to_millis
from services.common.outbox import Outbox, Ref
from services.deadlines.domain import Emission, Reopened, UnitDue, rung_of_key

EMISSIONS, SUBMITTED, RETURNED = "emissions", "submitted.", "returned."
EXTENSIONS, EXCEPTIONS = "extensions.", "exceptions."


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
    async def record_return(self, period_id: str, unit_id: str, returned_at: dt.datetime) -> None:
        """Remember that the unit's report was returned for revision (a later return wins)."""

    @abc.abstractmethod
    async def returned_units(self, period_ids: Iterable[str]) -> dict[str, dict[str, dt.datetime]]:
        """The units whose report was returned and not sent again since, with when, by period
        id (periods without such units are absent)."""

    @abc.abstractmethod
    def known_decided(self, key: str) -> bool:
        """Whether this process already saw ``key`` decided (no store access)."""

    @abc.abstractmethod
    async def record_emissions(
        self, emissions: Sequence[Emission], *, recorded_at: dt.datetime
    ) -> list[Emission]:
        """Record each decision and queue its event; returns those not decided before."""

    async def record_emission(self, emission: Emission, *, recorded_at: dt.datetime) -> bool:
        """Record one decision and queue its event; False if the key was already decided."""
        return bool(await self.record_emissions([emission], recorded_at=recorded_at))

    @abc.abstractmethod
    async def decisions(self, period_id: str) -> list[Document]:
        """What was decided for the units of ``period_id``: sent and skipped rungs, reminders
        and overdue notices (the operators' schedule view)."""

    @abc.abstractmethod
    async def record_skipped(
        self, emissions: Sequence[Emission], *, recorded_at: dt.datetime
    ) -> dict[str, int]:
        """Record the rungs each emission supersedes as skipped (no event) unless they were
        decided already; returns how many were newly recorded, by rung id."""


class MongoDeadlinesStore(DeadlinesStore):
    def __init__(self, db: AsyncDatabase[Document], outbox: Outbox) -> None:
        self._db = db
        self._outbox = outbox
        self.emissions: AsyncCollection[Document] = db[EMISSIONS]
        self._decided: set[str] = set()

    async def create_indexes(self) -> None:
        # ``_id`` makes decisions happen once; the period index serves the schedule view only
        # (an operator's request), so that it does not read every decision ever made.
        await self.emissions.create_index("period_id")

    def _submitted(self, period_id: str) -> AsyncCollection[Document]:
        return self._db[SUBMITTED + period_id]

    async def record_submission(
        self, period_id: str, unit_id: str, received_at: dt.datetime
    ) -> bool:
        # A version received after a return settles it (the unit owes nothing again).
        await self._db[RETURNED + period_id].update_one(
            {"_id": unit_id, "returned_at": {"$lt": to_millis(received_at)}},
            {"$set": {"resubmitted_at": to_millis(received_at)}},
        )
        try:
            await self._submitted(period_id).insert_one(
                {"_id": unit_id, "first_received_at": to_millis(received_at)}
            )
        except DuplicateKeyError:
            return False
        return True

    async def record_return(self, period_id: str, unit_id: str, returned_at: dt.datetime) -> None:
        # DuplicateKeyError: a later return is there, which stays.
        with contextlib.suppress(DuplicateKeyError):
            await self._db[RETURNED + period_id].update_one(
                {"_id": unit_id, "returned_at": {"$lt": to_millis(returned_at)}},
                {"$set": {"returned_at": to_millis(returned_at), "resubmitted_at": None}},
                upsert=True,
            )

    async def returned_units(self, period_ids: Iterable[str]) -> dict[str, dict[str, dt.datetime]]:
        found: dict[str, dict[str, dt.datetime]] = {}
        for period_id in period_ids:
            units = {
                doc["_id"]: doc["returned_at"]
                async for doc in self._db[RETURNED + period_id].find({})
                if doc.get("resubmitted_at") is None
            }
            if units:
                found[period_id] = units
        return found

    async def submitted_units(self, period_ids: Iterable[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for period_id in period_ids:
            units = {doc["_id"] async for doc in self._submitted(period_id).find({}, {"_id": 1})}
            if units:
                found[period_id] = units
        return found

    def known_decided(self, key: str) -> bool:
        return key in self._decided

    async def record_emissions(
        self, emissions: Sequence[Emission], *, recorded_at: dt.datetime
    ) -> list[Emission]:
        # The outbox's three steps, each one insert for the whole batch (a rung day's chunk
        # is 1,000 decisions): intents, then decisions, then ready copies. A crash between
        # two steps leaves what a crash inside ``intend``/``commit`` of one would.
        fresh = [e for e in emissions if e.key not in self._decided]
        entries = await self._outbox.intend_many(
            [(e.serialized, Ref(EMISSIONS, e.key)) for e in fresh]
        )
        # None: the same decision is queued (ids are name-based), perhaps as the intent of a
        # process that died before deciding it: not remembered as decided, so that a later
        # scan decides it if the relay drops that intent.
        queued = [(e, entry) for e, entry in zip(fresh, entries, strict=True) if entry]
        taken = await insert_each(
            self.emissions,
            [decision_document(e, entry["_id"], recorded_at) for e, entry in queued],
        )
        # Decided before (by another replica, or before a restart): its event must not leave.
        await self._outbox.abandon_many(
            [entry for i, (_, entry) in enumerate(queued) if i in taken]
        )
        recorded = [(e, entry) for i, (e, entry) in enumerate(queued) if i not in taken]
        await self._outbox.commit_many([entry for _, entry in recorded])
        self._decided.update(e.key for e, _ in queued)
        return [e for e, _ in recorded]

    async def decisions(self, period_id: str) -> list[Document]:
        return await self.emissions.find(
            {"period_id": period_id, "unit_id": {"$ne": None}}
        ).to_list()

    async def record_skipped(
        self, emissions: Sequence[Emission], *, recorded_at: dt.datetime
    ) -> dict[str, int]:
        documents = [
            skipped_document(key, emission, recorded_at)
            for emission in emissions
            for key in emission.skipped
            if key not in self._decided
        ]
        # The ones sent (or skipped) before stay as they are.
        there = await insert_each(self.emissions, documents)
        self._decided.update(d["_id"] for d in documents)
        return dict(
            Counter(rung_of_key(d["_id"]) for n, d in enumerate(documents) if n not in there)
        )


def decision_document(emission: Emission, event_id: str, recorded_at: dt.datetime) -> Document:
    """A decision: the emission's key, what it is and for whom, and the event it queued."""
    return {
        "_id": emission.key,
        "kind": emission.kind.value,
        "period_id": emission.period_id,
        "unit_id": emission.unit_id,
        "due_since": to_millis(emission.occurred_at),
        "recorded_at": to_millis(recorded_at),
        "event_id": event_id,
    }


def skipped_document(key: str, emission: Emission, recorded_at: dt.datetime) -> Document:
    """A rung not sent because a later one superseded it while no scan ran."""
    return {
        "_id": key,
        "kind": "skipped",
        "period_id": emission.period_id,
        "unit_id": emission.unit_id,
        "superseded_by": emission.key,
        "recorded_at": to_millis(recorded_at),
    }


class TermsStore(abc.ABC):
    """Extensions and filing exceptions office staff granted, as their events told us."""

    @abc.abstractmethod
    async def record_extension(self, decided: ExtensionDecidedPayload) -> None:
        """Keep an approved extension (a later decision replaces an earlier one)."""

    @abc.abstractmethod
    async def record_exception(self, granted: FilingExceptionGrantedPayload) -> None: ...

    @abc.abstractmethod
    async def extended(self, period_ids: Iterable[str]) -> dict[str, dict[str, UnitDue]]:
        """The units with an approved extension, by period id (periods without are absent)."""

    @abc.abstractmethod
    async def reopened(self, period_ids: Iterable[str]) -> dict[str, dict[str, Reopened]]:
        """The units with a filing exception, by period id (periods without are absent)."""

    @abc.abstractmethod
    async def extension(self, period_id: str, unit_id: str) -> Document | None: ...

    @abc.abstractmethod
    async def exception(self, period_id: str, unit_id: str) -> Document | None: ...


class MongoTermsStore(TermsStore):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def _keep_latest(self, collection: str, unit_id: str, document: Document) -> None:
        """Upsert ``document`` unless a grant decided later is there (``decided_at``)."""
        # DuplicateKeyError: the unit has a later grant, which stays.
        with contextlib.suppress(DuplicateKeyError):
            await self._db[collection].update_one(
                {"_id": unit_id, "decided_at": {"$lt": document["decided_at"]}},
                {"$set": document},
                upsert=True,
            )

    async def record_extension(self, decided: ExtensionDecidedPayload) -> None:
        if decided.decision != "approved" or decided.new_due_at is None:
            return
        await self._keep_latest(
            EXTENSIONS + decided.period_id,
            decided.unit_id,
            {
                "request_id": decided.request_id,
                "due_at": to_millis(decided.new_due_at),
                "closes_at": to_millis(decided.new_closes_at or decided.new_due_at),
                "reason": decided.reason,
                "decided_at": to_millis(decided.decided_at),
            },
        )

    async def record_exception(self, granted: FilingExceptionGrantedPayload) -> None:
        await self._keep_latest(
            EXCEPTIONS + granted.period_id,
            granted.unit_id,
            {
                "exception_id": granted.exception_id,
                "until": to_millis(granted.until),
                "reason": granted.reason,
                "decided_at": to_millis(granted.granted_at),
            },
        )

    async def extended(self, period_ids: Iterable[str]) -> dict[str, dict[str, UnitDue]]:
        found: dict[str, dict[str, UnitDue]] = {}
        for period_id in period_ids:
            units = {
                doc["_id"]: UnitDue(
                    due_at=doc["due_at"], closes_at=doc["closes_at"], decided_at=doc["decided_at"]
                )
                async for doc in self._db[EXTENSIONS + period_id].find({})
            }
            if units:
                found[period_id] = units
        return found

    async def reopened(self, period_ids: Iterable[str]) -> dict[str, dict[str, Reopened]]:
        found: dict[str, dict[str, Reopened]] = {}
        for period_id in period_ids:
            units = {
                doc["_id"]: Reopened(until=doc["until"], granted_at=doc["decided_at"])
                async for doc in self._db[EXCEPTIONS + period_id].find({})
            }
            if units:
                found[period_id] = units
        return found

    async def extension(self, period_id: str, unit_id: str) -> Document | None:
        return await self._db[EXTENSIONS + period_id].find_one({"_id": unit_id})

    async def exception(self, period_id: str, unit_id: str) -> Document | None:
        return await self._db[EXCEPTIONS + period_id].find_one({"_id": unit_id})
