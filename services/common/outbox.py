"""Transactional outbox without transactions: intent, change, commit.

FerretDB has no multi-document transactions, and it reads by scanning a whole collection, so
a large collection may only be inserted into on a hot path (see bench/README.md). Events to
publish therefore live in their own small ``outbox`` collection, deleted once Kafka has them:

1. ``intend(event, ref)`` stores the entry as an *intent* naming the document it announces;
2. the caller makes its change, an insert of ``ref`` carrying ``event_id``;
3. ``commit(entry)`` stores its *ready* copy (``outbox_ready``); the relay publishes it and
   deletes both.

A request that dies between 1 and 3 leaves an intent. Once it is older than ``settle_after``
the relay settles it: published if the announced document exists with this event id, dropped
if not. ``commit`` after a settlement restores a dropped entry and leaves a published one
alone, so a change is announced once whatever the interleaving. An entry Kafka can never
accept (too large, invalid topic) is parked with the reason instead of blocking the entries
behind it; parked entries are listed and replayed over HTTP.

Replicas of a service share its outbox. Each entry names its writer, and each replica's relay
publishes only its own entries, so no entry goes to Kafka from two relays. The entries of a
replica that is gone (it stopped, or its heartbeat fell silent: see ``replicas.py``) are taken
on by the one live replica holding the lease. A replica restarted under the same name
(``BAOCAO_INSTANCE``, the host name by default) takes its own entries back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from contracts.envelope import Event
from contracts.topics import TOPIC_OF, Topic
from services.common.clock import Clock
from services.common.failures import never_accepted_by_kafka
from services.common.metrics import CommonMetrics
from services.common.mongo import Document, insert_each, to_millis
from services.common.replicas import Replicas

log = logging.getLogger(__name__)

EnqueueRaw = Callable[[str, str, bytes, dict[str, str]], Awaitable[Awaitable[None]]]
"""(contract topic name, key, value, headers) -> an awaitable that resolves once Kafka
acknowledged the record; raises at once for a record the producer will not send."""

INTENT, READY, PUBLISHED = "intent", "ready", "published"

PASS_ENTRIES = 1000
"""Entries one relay pass publishes at most. FerretDB reads a whole collection for any query
but ``_id`` equality, so each pass costs about the backlog's size whatever it takes from it:
a backlog of 1,000 went out at about 500 events/s in passes of 200 and 1,200/s in one pass
(``bench`` P3). The pass's records wait in the producer together, so its bound is also a
bound on memory: 1,000 entries of a few KB."""


class SerializedEvent(NamedTuple):
    """An event as the outbox stores it: serialised once, by whoever made it (``of`` a model;
    the deadlines scan renders its rung day's from templates, ``services/common/templates.py``).
    """

    event_id: str
    topic: Topic
    key: str
    """The Kafka record key: the payload's ``topic.key_field``."""
    occurred_at: dt.datetime
    json: str

    @classmethod
    def of(cls, event: Event) -> SerializedEvent:
        topic = TOPIC_OF[type(event)]
        key = str(getattr(event.payload, topic.key_field))
        return cls(str(event.event_id), topic, key, event.occurred_at, event.model_dump_json())

    @property
    def event_type(self) -> str:
        return str(self.topic.event.model_fields["event_type"].default)

    def event(self) -> Event:
        """The model again, from the JSON (for readers: the outbox needs only the JSON)."""
        return self.topic.event.model_validate_json(self.json)


@dataclass(frozen=True)
class Ref:
    """The document an event announces: its collection (in the same database) and ``_id``."""

    collection: str
    id: str


class Outbox:
    """The service's pending events, and the ones set aside because Kafka refuses them."""

    def __init__(
        self, db: AsyncDatabase[Document], clock: Clock, *, writer: str | None = None
    ) -> None:
        self._db = db
        self._clock = clock
        self.writer = writer or uuid.uuid4().hex
        """This replica's name on the entries it writes; its relay publishes those."""
        self.entries: AsyncCollection[Document] = db["outbox"]
        """Intents, and settled intents kept a while as published."""
        self.ready: AsyncCollection[Document] = db["outbox_ready"]
        """Ready entries: the committed copy of an intent, or an event put directly."""
        self.parked: AsyncCollection[Document] = db["outbox_parked"]

    def entry(
        self, event: Event | SerializedEvent, *, ref: Ref | None = None, state: str = READY
    ) -> Document:
        out = event if isinstance(event, SerializedEvent) else SerializedEvent.of(event)
        return {
            "_id": out.event_id,
            "state": state,
            "topic": out.topic.name,
            "key": out.key,
            "event_type": out.event_type,
            "event_json": out.json,
            "enqueued_at": to_millis(out.occurred_at),
            "written_at": to_millis(self._clock.now()),
            "ref": {"collection": ref.collection, "id": ref.id} if ref else None,
            "writer": self.writer,
        }

    def owns(self, entry: Document) -> bool:
        return entry.get("writer") == self.writer

    async def put(self, event: Event | SerializedEvent) -> None:
        """Store ``event`` ready to publish (for changes that need no separate document)."""
        with contextlib.suppress(DuplicateKeyError):  # the same event stored twice: once
            await self.ready.insert_one(self.entry(event))

    async def intend(self, event: Event | SerializedEvent, ref: Ref) -> Document:
        """Step 1: announce ``ref`` before it is written. Returns the entry for ``commit``."""
        entry = self.entry(event, ref=ref, state=INTENT)
        await self.entries.insert_one(entry)
        return entry

    async def intend_many(
        self, announced: Sequence[tuple[Event | SerializedEvent, Ref]]
    ) -> list[Document | None]:
        """``intend`` for many changes in one insert (a deadlines chunk: 1,000 rungs).
        Returns each entry in order, or None where the same event is queued already."""
        entries = [self.entry(event, ref=ref, state=INTENT) for event, ref in announced]
        duplicates = await insert_each(self.entries, entries)
        return [None if i in duplicates else e for i, e in enumerate(entries)]

    async def commit_many(self, entries: Sequence[Document]) -> None:
        """``commit`` for many entries in one insert."""
        await insert_each(self.ready, [{**entry, "state": READY} for entry in entries])

    async def abandon_many(self, entries: Sequence[Document]) -> None:
        if entries:
            await self.entries.delete_many({"_id": {"$in": [e["_id"] for e in entries]}})

    async def commit(self, entry: Document) -> None:
        """Step 3: the change is written; publish its event.

        An insert of the ready copy, not an update of the intent: FerretDB's updates cost
        three inserts. The copy stands on its own, so it is published even if the relay
        dropped the intent as abandoned meanwhile, and ignored if the relay published it.
        """
        with contextlib.suppress(DuplicateKeyError):  # committed twice: once
            await self.ready.insert_one({**entry, "state": READY})

    async def abandon(self, entry: Document) -> None:
        """The change was not made (e.g. a conflict): its event must never leave."""
        await self.entries.delete_one({"_id": entry["_id"]})

    async def waiting(
        self, limit: int, *, skip_writers: Collection[str | None] = ()
    ) -> list[Document]:
        """Up to ``limit`` ready entries and uncommitted intents, oldest first, but for those
        of ``skip_writers`` (live replicas that relay their own).

        Intents come without their event (``event_json``): most are committed, and their
        ready copy carries it; ``load`` fetches the rest. Both reads return only what the
        pass uses, since FerretDB turns every document it returns into BSON and the client
        decodes it again (about 0.3 ms for an entry of 2 KB on this machine)."""
        mine = {"writer": {"$nin": list(skip_writers)}} if skip_writers else {}
        intents = await self.entries.find(mine, {"event_json": 0}).to_list()
        published = {e["_id"] for e in intents if e["state"] == PUBLISHED}
        # The first ``limit`` not yet published: those published are removed as found.
        order = [("enqueued_at", 1), ("_id", 1)]
        ready = await self.ready.find(mine).sort(order).limit(limit + len(published)).to_list()
        late = [r["_id"] for r in ready if r["_id"] in published]
        if late:  # committed after the relay settled and published their intents
            await self.ready.delete_many({"_id": {"$in": late}})
        ready = [r for r in ready if r["_id"] not in published]
        # An intent whose ready copy sorts after this pass's last entry is left for a later
        # pass with its copy; one that sorts before has no copy (it was never committed).
        committed = {r["_id"] for r in ready}
        last = (ready[-1]["enqueued_at"], ready[-1]["_id"]) if len(ready) >= limit else None
        uncommitted = [
            e
            for e in intents
            if e["state"] == INTENT
            and e["_id"] not in committed
            and (last is None or (e["enqueued_at"], e["_id"]) < last)
        ]
        both = sorted(ready + uncommitted, key=lambda e: (e["enqueued_at"], e["_id"]))
        return both[:limit]

    async def load(self, intent: Document) -> Document | None:
        """An intent with its event, as ``waiting`` leaves it out; None once it is gone."""
        return await self.entries.find_one({"_id": intent["_id"]})

    async def announced(self, entry: Document) -> bool:
        """Whether the document an intent announces was written.

        One change may be announced by several events (a report version on v1 and v2 of its
        topic): the document then lists them all in ``event_ids``."""
        ref = entry.get("ref")
        if not ref:
            return False
        doc = await self._db[ref["collection"]].find_one(
            {"_id": ref["id"]}, {"event_id": 1, "event_ids": 1}
        )
        return doc is not None and (
            doc.get("event_id") == entry["_id"] or entry["_id"] in doc.get("event_ids", ())
        )

    async def sent(self, entries: list[Document], settled: set[str]) -> None:
        """Forget what Kafka acknowledged; settled intents are kept a while (see below)."""
        done = [e["_id"] for e in entries if e["_id"] not in settled]
        if done:
            await self.ready.delete_many({"_id": {"$in": done}})
            await self.entries.delete_many({"_id": {"$in": done}})
        for event_id in settled & {e["_id"] for e in entries}:
            # Kept so that a late ``commit`` sees it was published and does not restore it
            # (see the module docstring); swept by ``forget_published``.
            await self.entries.update_one(
                {"_id": event_id},
                {"$set": {"state": PUBLISHED, "published_at": to_millis(self._clock.now())}},
            )

    async def drop(self, entry: Document) -> None:
        await self.entries.delete_one({"_id": entry["_id"]})

    async def forget_published(self, older_than: dt.datetime) -> None:
        await self.entries.delete_many(
            {"state": PUBLISHED, "published_at": {"$lt": to_millis(older_than)}}
        )

    async def park(self, entry: Document, reason: str) -> None:
        parked = {**entry, "state": "parked", "reason": reason[:2000]}
        parked["parked_at"] = to_millis(self._clock.now())
        with contextlib.suppress(DuplicateKeyError):
            await self.parked.insert_one(parked)
        await self.ready.delete_one({"_id": entry["_id"]})
        await self.entries.delete_one({"_id": entry["_id"]})

    async def parked_entries(self, limit: int) -> list[Document]:
        cursor = self.parked.find({}, {"event_json": 0}).sort("parked_at", -1)
        return await cursor.limit(limit).to_list()

    async def replay(self, event_id: str) -> bool:
        """Put a parked entry back in line (after the cause was fixed); False if unknown."""
        parked = await self.parked.find_one({"_id": event_id})
        if parked is None:
            return False
        for field in ("reason", "parked_at"):
            parked.pop(field, None)
        with contextlib.suppress(DuplicateKeyError):
            await self.ready.insert_one({**parked, "state": READY})
        await self.parked.delete_one({"_id": event_id})
        return True

    async def backlog(self) -> tuple[int, dt.datetime | None]:
        """How many entries wait, and when the oldest was enqueued."""
        ready = await self.ready.find({}, {"enqueued_at": 1}).to_list()
        intents = await self.entries.find({"state": INTENT}, {"enqueued_at": 1}).to_list()
        waiting = {d["_id"]: d["enqueued_at"] for d in intents + ready}
        return len(waiting), min(waiting.values(), default=None)


class OutboxRelay:
    """Publishes the outbox in order; asleep while there is nothing to do."""

    def __init__(
        self,
        outbox: Outbox,
        enqueue: EnqueueRaw,
        clock: Clock,
        metrics: CommonMetrics,
        *,
        interval: float = 1.0,
        max_idle: float = 30.0,
        batch: int = PASS_ENTRIES,
        settle_after: dt.timedelta = dt.timedelta(seconds=30),
        replicas: Replicas | None = None,
        keep_published: dt.timedelta = dt.timedelta(hours=1),
    ) -> None:
        self.outbox = outbox
        self._enqueue = enqueue
        self._clock = clock
        self._metrics = metrics
        self._interval = interval
        self._max_idle = max_idle
        self._batch = batch
        self._settle_after = settle_after
        self._replicas = replicas
        """The service's other replicas; None: this relay is alone and publishes everything."""
        self._keep_published = keep_published
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Relay now rather than at the next tick (called right after a write)."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish what is ready, oldest first; returns how many left for Kafka.

        The pass enqueues every ready entry in order and then awaits their acknowledgements
        together (one round trip for the batch, not one per record). A record Kafka will never
        accept is parked and the pass goes on; any other failure ends the pass after the
        acknowledged entries are forgotten, and the rest stay for the next pass.
        """
        settle_before = self._clock.now() - self._settle_after
        batch: list[tuple[Document, Awaitable[None]]] = []
        settled: set[str] = set()
        failure: Exception | None = None
        for entry in await self._entries():
            if entry["state"] == INTENT:
                if entry["written_at"] > settle_before:
                    continue  # its request may still be running
                if not await self.outbox.announced(entry):
                    log.warning("outbox: dropping abandoned intent %s", entry["_id"])
                    await self.outbox.drop(entry)
                    continue
                loaded = await self.outbox.load(entry)
                if loaded is None:
                    continue  # settled meanwhile by a relay that took it on
                entry = loaded
                settled.add(entry["_id"])
            headers = {"event_id": entry["_id"], "event_type": entry["event_type"]}
            try:
                delivery = await self._enqueue(
                    entry["topic"], entry["key"], entry["event_json"].encode(), headers
                )
            except Exception as error:
                if never_accepted_by_kafka(error):
                    await self._park(entry, error)
                    continue
                failure = error
                break
            batch.append((entry, delivery))
        outcomes = await asyncio.gather(*(d for _, d in batch), return_exceptions=True)
        published = []
        for (entry, _), outcome in zip(batch, outcomes, strict=True):
            if not isinstance(outcome, BaseException):
                published.append(entry)
            elif never_accepted_by_kafka(outcome):
                await self._park(entry, outcome)
            elif failure is None and isinstance(outcome, Exception):
                failure = outcome
        await self.outbox.sent(published, settled)
        for _ in published:
            self._metrics.relayed()
        if failure is not None:
            raise failure
        return len(published)

    async def _entries(self) -> list[Document]:
        """This pass's entries: our own, and those of gone replicas if we hold the lease."""
        if self._replicas is None:
            return await self.outbox.waiting(self._batch)
        others = await self._replicas.others_alive()
        entries = await self.outbox.waiting(self._batch, skip_writers=others)
        if all(self.outbox.owns(entry) for entry in entries):
            return entries
        if await self._replicas.lease.holds():
            for entry in entries:
                if not self.outbox.owns(entry):
                    log.info("outbox: taking on %s, left by %s", entry["_id"], entry.get("writer"))
            return entries
        return [entry for entry in entries if self.outbox.owns(entry)]

    async def _park(self, entry: Document, error: BaseException) -> None:
        await self.outbox.park(entry, f"{type(error).__name__}: {error}")
        self._metrics.parked(entry["topic"])
        log.error("outbox: parked %s (%s): %s", entry["_id"], entry["event_type"], error)

    async def measure(self) -> int:
        count, oldest = await self.outbox.backlog()
        self._metrics.outbox_pending.set(count)
        self._metrics.outbox_parked_entries.set(await self.outbox.parked.count_documents({}))
        age = (self._clock.now() - oldest).total_seconds() if oldest else 0.0
        self._metrics.outbox_oldest_pending_seconds.set(max(age, 0.0))
        return count

    async def run(self) -> None:
        """Relay until cancelled: at once when woken, with growing pauses when idle or failing."""
        pause = self._interval
        sweep_at = self._clock.now()
        while True:
            # Cleared before relaying: a wake() that arrives during the pass is not lost.
            self._wake.clear()
            sent, failed = 0, False
            try:
                sent = await self.relay_once()
                if self._clock.now() >= sweep_at:
                    await self.outbox.forget_published(self._clock.now() - self._keep_published)
                    sweep_at = self._clock.now() + self._keep_published / 4
            except Exception as error:  # Kafka or MongoDB away: the entries stay where they are
                failed = True
                log.warning("outbox relay: %s: %s (will retry)", type(error).__name__, error)
            try:
                waiting = await self.measure()
            except Exception as error:  # the gauges keep their last values; said once per pass
                waiting = 1
                log.warning("outbox gauges: %s: %s", type(error).__name__, error)
            if sent >= self._batch and not failed:
                continue
            if failed or waiting:
                pause = min(self._max_idle, pause * 2) if failed else self._interval
            else:
                pause = min(self._max_idle, pause * 2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=pause)
            if self._wake.is_set():
                pause = self._interval


def document_with_event(document: Document, entry: Document) -> dict[str, Any]:
    """``document`` marked with the event that announces it (what ``announced`` checks)."""
    return {**document, "event_id": entry["_id"]}
