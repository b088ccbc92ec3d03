"""The delivery ledger: each notification claimed once, tried under a lease, finished once.

Shaped for a store that reads by scanning (see bench/README.md): what grows with every notice
is only inserted into; what is read and updated is the small set of notices in flight.

- ``inflight`` (small): notices not yet finished, with their attempts, next attempt and lease.
- ``deliveries`` (insert-only): one claim per notification id, ever. Its unique ``_id`` is
  what makes a redelivered or replayed cause send nothing new.
- ``outcomes`` (insert-only): sent or failed, with the event that says so (outbox ref).
- ``leases`` (insert-only): a lease is taken by inserting ``<id>|<attempts>|<lease end>``:
  two replicas reading the same state compute the same key, and only one insert succeeds.
  (FerretDB applies a conditional update without isolation, so it cannot be the lock.)
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from contracts.topics import EVENT_CLASSES
from services.common.mongo import Document, to_millis
from services.notify.domain import Outgoing
from services.notify.sms_rules import Segments

SENT, FAILED = "sent", "failed"
OUTCOMES = "outcomes"


@dataclass(frozen=True)
class Failure:
    """Why a notice was given up on, as its outcome keeps it."""

    error: str
    permanent: bool
    """True: refused outright (SMTP 5xx, an invalid number); false: the retries ran out."""

    def document(self) -> Document:
        return {"error": self.error[:1000], "permanent": self.permanent}


class Ledger(abc.ABC):
    @abc.abstractmethod
    async def claim(
        self, message: Outgoing, owner: str, now: dt.datetime, lease: dt.timedelta
    ) -> bool:
        """Take a new notification under a lease; False if it was claimed before."""

    @abc.abstractmethod
    async def due(self, now: dt.datetime, limit: int) -> list[Document]:
        """In-flight entries whose next attempt is due and whose lease has run out."""

    @abc.abstractmethod
    async def take_over(
        self, entry: Document, owner: str, now: dt.datetime, lease: dt.timedelta
    ) -> bool:
        """Take the lease of a due entry; False if another process took it first."""

    @abc.abstractmethod
    async def attempted(
        self, notification_id: str, attempts: int, error: str, next_at: dt.datetime
    ) -> None:
        """Record a failed attempt and when to try again (the lease ends then)."""

    @abc.abstractmethod
    async def finish(
        self,
        message: Outgoing,
        status: str,
        attempts: int,
        event_id: str,
        now: dt.datetime,
        failure: Failure | None = None,
        sms: Segments | None = None,
    ) -> bool:
        """Record the outcome (announced by ``event_id``) and leave the in-flight set;
        False if another lease holder recorded it first."""

    @abc.abstractmethod
    async def list(
        self,
        limit: int,
        *,
        unit_id: str | None = None,
        period_id: str | None = None,
        plan_ids: Collection[str] | None = None,
    ) -> list[Document]:
        """Notices in flight, then finished ones newest first; of one unit and/or period, and
        of ``plan_ids`` only when given (office staff read their own plans' notices)."""


def message_document(message: Outgoing) -> dict[str, Any]:
    fields = asdict(message)
    fields.pop("cause")
    fields["cause_event_type"] = message.cause.event_type
    fields["cause_schema_version"] = message.cause.schema_version
    fields["cause_json"] = message.cause.model_dump_json()
    return fields


def message_from(document: Document) -> Outgoing:
    # Fields added later have defaults: an entry stored before them still reads.
    fields = {k: document[k] for k in Outgoing.__dataclass_fields__ if k in document}
    fields.pop("cause", None)
    # An entry stored before causes had two versions names none: it was version 1.
    kind = (document["cause_event_type"], document.get("cause_schema_version", 1))
    cause = EVENT_CLASSES[kind].model_validate_json(document["cause_json"])
    return Outgoing(**fields, cause=cause)


class MongoLedger(Ledger):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.inflight: AsyncCollection[Document] = db["inflight"]
        self.deliveries: AsyncCollection[Document] = db["deliveries"]
        self.outcomes: AsyncCollection[Document] = db[OUTCOMES]
        self._leases: AsyncCollection[Document] = db["leases"]

    async def create_indexes(self) -> None:
        """``_id`` is all these collections need: the large ones are never searched."""

    async def claim(
        self, message: Outgoing, owner: str, now: dt.datetime, lease: dt.timedelta
    ) -> bool:
        nid = message.notification_id
        try:
            # In flight first: a crash right after leaves an entry the retrier finishes.
            await self.inflight.insert_one(
                {
                    "_id": nid,
                    **message_document(message),
                    "attempts": 0,
                    "owner": owner,
                    "lease_until": to_millis(now + lease),
                    "next_attempt_at": to_millis(now),
                    "created_at": to_millis(now),
                    "last_error": None,
                }
            )
        except DuplicateKeyError:
            return False  # in flight already: its owner or the retrier sees it through
        try:
            await self.deliveries.insert_one(
                {
                    "_id": nid,
                    "channel": message.channel,
                    "template": message.template,
                    "recipient": message.recipient,
                    "unit_id": message.unit_id,
                    "period_id": message.period_id,
                    "cause_event_id": str(message.cause.event_id),
                    "claimed_at": to_millis(now),
                }
            )
        except DuplicateKeyError:
            # Claimed and finished long ago (nothing was in flight): a redelivery.
            await self.inflight.delete_one({"_id": nid})
            return False
        return True

    async def due(self, now: dt.datetime, limit: int) -> list[Document]:
        moment = to_millis(now)
        entries = await self.inflight.find({}).to_list()
        ready = [
            e for e in entries if e["next_attempt_at"] <= moment and e["lease_until"] <= moment
        ]
        return sorted(ready, key=lambda e: e["next_attempt_at"])[:limit]

    async def take_over(
        self, entry: Document, owner: str, now: dt.datetime, lease: dt.timedelta
    ) -> bool:
        lease_key = f"{entry['_id']}|{entry['attempts']}|{entry['lease_until'].isoformat()}"
        try:
            await self._leases.insert_one({"_id": lease_key, "owner": owner})
        except DuplicateKeyError:
            return False
        # The claim of a crashed handler may have stopped before its delivery record.
        with contextlib.suppress(DuplicateKeyError):
            await self.deliveries.insert_one(
                {"_id": entry["_id"], "recipient": entry["recipient"], "claimed_at": now}
            )
        await self.inflight.update_one(
            {"_id": entry["_id"]},
            {"$set": {"owner": owner, "lease_until": to_millis(now + lease)}},
        )
        return True

    async def attempted(
        self, notification_id: str, attempts: int, error: str, next_at: dt.datetime
    ) -> None:
        await self.inflight.update_one(
            {"_id": notification_id},
            {
                "$set": {
                    "attempts": attempts,
                    "last_error": error[:1000],
                    "next_attempt_at": to_millis(next_at),
                    "lease_until": to_millis(next_at),
                }
            },
        )

    async def finish(
        self,
        message: Outgoing,
        status: str,
        attempts: int,
        event_id: str,
        now: dt.datetime,
        failure: Failure | None = None,
        sms: Segments | None = None,
    ) -> bool:
        recorded = True
        try:
            await self.outcomes.insert_one(
                {
                    "_id": message.notification_id,
                    "status": status,
                    "attempts": attempts,
                    "channel": message.channel,
                    "template": message.template,
                    "recipient": message.recipient,
                    "subject": message.subject,
                    "unit_id": message.unit_id,
                    "plan_id": message.plan_id,
                    "period_id": message.period_id,
                    "cause_event_id": str(message.cause.event_id),
                    "finished_at": to_millis(now),
                    "event_id": event_id,
                    # Why it failed, kept with the record: the in-flight entry that held the
                    # last error is deleted below.
                    **(failure.document() if failure else {}),
                    # What an SMS cost, as sent (unaccented or not).
                    **({"sms_segments": sms.count, "sms_encoding": sms.encoding} if sms else {}),
                }
            )
        except DuplicateKeyError:  # finished twice (a slow lease holder)
            recorded = False
        await self.inflight.delete_one({"_id": message.notification_id})
        return recorded

    async def list(
        self,
        limit: int,
        *,
        unit_id: str | None = None,
        period_id: str | None = None,
        plan_ids: Collection[str] | None = None,
    ) -> list[Document]:
        query: dict[str, Any] = {
            k: v for k, v in (("unit_id", unit_id), ("period_id", period_id)) if v is not None
        }
        if plan_ids is not None:
            query["plan_id"] = {"$in": sorted(plan_ids)}
        pending = await self.inflight.find(query, {"cause_json": 0, "text": 0}).to_list()
        for entry in pending:
            entry["status"] = "pending"
        finished = await self.outcomes.find(query).sort("finished_at", -1).limit(limit).to_list()
        return (pending + finished)[:limit]
