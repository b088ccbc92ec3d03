"""Transactional outbox without transactions.

FerretDB has no multi-document transactions, so an event to publish is written inside the very
document whose change it announces (one atomic write). The relay publishes pending entries in
order and marks them; a crash between the two publishes again, and consumers are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from contracts.envelope import Event
from contracts.topics import TOPIC_OF
from services.common.clock import Clock
from services.common.metrics import CommonMetrics
from services.common.mongo import Document, to_millis

log = logging.getLogger(__name__)

PublishRaw = Callable[[str, str, bytes, dict[str, str]], Awaitable[None]]
"""(contract topic name, key, value, headers) -> returns once Kafka acknowledged."""


def outbox_entry(event: Event) -> dict[str, Any]:
    """The ``outbox`` sub-document to store with the change that ``event`` announces."""
    topic = TOPIC_OF[type(event)]
    return {
        "pending": True,
        "topic": topic.name,
        "key": str(getattr(event.payload, topic.key_field)),
        "event_id": str(event.event_id),
        "event_type": event.event_type,
        "event_json": event.model_dump_json(),
        "enqueued_at": to_millis(event.occurred_at),
    }


class OutboxRelay:
    def __init__(
        self,
        collections: Sequence[AsyncCollection[Document]],
        publish: PublishRaw,
        clock: Clock,
        metrics: CommonMetrics,
        *,
        interval: float = 1.0,
        batch: int = 200,
    ) -> None:
        self._collections = collections
        self._publish = publish
        self._clock = clock
        self._metrics = metrics
        self._interval = interval
        self._batch = batch
        self._wake = asyncio.Event()

    async def create_indexes(self) -> None:
        for collection in self._collections:
            await collection.create_index([("outbox.pending", 1), ("outbox.enqueued_at", 1)])

    def wake(self) -> None:
        """Relay now rather than at the next tick (called right after a write)."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish pending events oldest first; stop at the first failure to keep order."""
        sent = 0
        for collection in self._collections:
            pending = collection.find({"outbox.pending": True}).sort("outbox.enqueued_at", 1)
            for doc in await pending.limit(self._batch).to_list():
                entry = doc["outbox"]
                headers = {"event_id": entry["event_id"], "event_type": entry["event_type"]}
                await self._publish(
                    entry["topic"], entry["key"], entry["event_json"].encode(), headers
                )
                await collection.update_one(
                    {"_id": doc["_id"], "outbox.event_id": entry["event_id"]},
                    {
                        "$set": {
                            "outbox.pending": False,
                            "outbox.published_at": to_millis(self._clock.now()),
                        }
                    },
                )
                sent += 1
        return sent

    async def measure(self) -> None:
        count, oldest = 0, None
        for collection in self._collections:
            count += await collection.count_documents({"outbox.pending": True})
            first = await collection.find_one(
                {"outbox.pending": True}, sort=[("outbox.enqueued_at", 1)]
            )
            if first and (oldest is None or first["outbox"]["enqueued_at"] < oldest):
                oldest = first["outbox"]["enqueued_at"]
        self._metrics.outbox_pending.set(count)
        age = (self._clock.now() - oldest).total_seconds() if oldest else 0.0
        self._metrics.outbox_oldest_pending_seconds.set(max(age, 0.0))

    async def run(self) -> None:
        """Relay forever; failures are logged and retried at the next tick."""
        while True:
            # Cleared before relaying: a wake() that arrives during the pass is not lost.
            self._wake.clear()
            try:
                await self.relay_once()
                await self.measure()
            except Exception as error:  # Kafka or MongoDB away: the entries stay pending
                log.warning("outbox relay: %s: %s (will retry)", type(error).__name__, error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
