"""Replicas sharing one outbox on the real FerretDB: each relays its own entries, so no event
leaves twice; what a replica that is gone left behind is taken on by one live replica only.

The relays' Kafka side is a recorder here: the question is which relay takes which entry, and
both the entries and the heartbeats and lease that decide it live in the real database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from services.common.clock import FixedClock
from services.common.metrics import CommonMetrics
from services.common.mongo import Document
from services.common.outbox import Outbox, OutboxRelay
from services.common.replicas import Replicas, SlotLease
from tests.conftest import Servers
from tests.integration.test_outbox_relay import received
from tests.support.mongo import throwaway_database

pytestmark = pytest.mark.integration

NOW = dt.datetime(2027, 6, 1, 3, 0, 10, tzinfo=dt.UTC)


@dataclass
class Recorder:
    """Stands in for Kafka: what one relay sent, by event id (acknowledged at once)."""

    sent: list[str] = field(default_factory=list)

    async def __call__(
        self, topic: str, key: str, value: bytes, headers: dict[str, str]
    ) -> Awaitable[None]:
        self.sent.append(headers["event_id"])
        return asyncio.sleep(0)


@dataclass
class Replica:
    name: str
    outbox: Outbox
    replicas: Replicas
    relay: OutboxRelay
    kafka: Recorder

    async def file(self, count: int) -> set[str]:
        events = [received(f"{self.name}-{i}", i) for i in range(count)]
        for event in events:
            await self.outbox.put(event)
        return {str(event.event_id) for event in events}


def replica(db: AsyncDatabase[Document], name: str, clock: FixedClock) -> Replica:
    outbox = Outbox(db, clock, writer=name)
    replicas = Replicas(db, name, clock)
    kafka = Recorder()
    metrics = CommonMetrics(CollectorRegistry(), "test")
    relay = OutboxRelay(outbox, kafka, clock, metrics, replicas=replicas)
    return Replica(name, outbox, replicas, relay, kafka)


@pytest.fixture
async def db(servers: Servers, namespace: str) -> AsyncIterator[AsyncDatabase[Document]]:
    async with throwaway_database(servers.mongo_uri, f"{namespace}_replicas") as database:
        yield database


async def all_relay(*replicas: Replica) -> None:
    await asyncio.gather(*(r.relay.relay_once() for r in replicas))


async def test_each_replica_relays_its_own_entries_only(db: AsyncDatabase[Document]) -> None:
    clock = FixedClock(NOW)
    a, b = replica(db, "a", clock), replica(db, "b", clock)
    for r in (a, b):
        await r.replicas.beat()
    from_a, from_b = await a.file(4), await b.file(3)

    await all_relay(a, b)

    assert (set(a.kafka.sent), set(b.kafka.sent)) == (from_a, from_b)
    assert len(a.kafka.sent) + len(b.kafka.sent) == 7  # each once
    assert await a.outbox.waiting(100) == []


async def test_a_stopped_replicas_entries_go_to_one_live_replica(
    db: AsyncDatabase[Document],
) -> None:
    clock = FixedClock(NOW)
    gone, b, c = replica(db, "gone", clock), replica(db, "b", clock), replica(db, "c", clock)
    for r in (gone, b, c):
        await r.replicas.beat()
    left = await gone.file(5)

    await all_relay(b, c)  # "gone" is alive: its entries are its own business
    assert b.kafka.sent == c.kafka.sent == []

    await gone.replicas.leave()
    clock.advance(dt.timedelta(seconds=10))  # the others read the heartbeats once per beat
    await all_relay(b, c)

    assert sorted(b.kafka.sent + c.kafka.sent) == sorted(left)  # all of them, by one relay
    assert [] in (b.kafka.sent, c.kafka.sent)
    assert await b.outbox.waiting(100) == []


async def test_a_silent_replica_counts_as_gone_and_a_restart_takes_its_own_back(
    db: AsyncDatabase[Document],
) -> None:
    then = FixedClock(NOW - dt.timedelta(seconds=46))
    silent = replica(db, "silent", then)
    await silent.replicas.beat()  # and never again: it hangs
    left = await silent.file(3)
    live = replica(db, "live", FixedClock(NOW))
    await live.replicas.beat()

    await live.relay.relay_once()
    assert set(live.kafka.sent) == left

    # A replica restarted under its name relays what it left at once, heard from or not.
    back = replica(db, "back", FixedClock(NOW))
    await back.file(2)
    again = replica(db, "back", FixedClock(NOW))
    await again.relay.relay_once()
    assert len(again.kafka.sent) == 2


async def test_one_holder_per_slot(db: AsyncDatabase[Document]) -> None:
    clock = FixedClock(NOW)
    leases = [SlotLease(db["lease"], name, clock) for name in ("a", "b", "c")]

    first = await asyncio.gather(*(lease.holds() for lease in leases))
    assert first.count(True) == 1
    assert await asyncio.gather(*(lease.holds() for lease in leases)) == first  # the slot lasts

    clock.advance(dt.timedelta(seconds=30))
    assert await leases[2].holds()  # a new slot: the first to ask
    assert not await leases[0].holds()
    assert await db["lease"].count_documents({}) <= 2  # old slots are removed
