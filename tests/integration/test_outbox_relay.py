"""The outbox and its relay on the real FerretDB and Kafka: in order, once, nothing lost on
failure, nothing blocked by a record Kafka refuses, and intents settled by what was written."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaTimeoutError
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from contracts.events import SubmissionReceived, SubmissionReceivedPayload, TaskReport
from contracts.topics import SUBMISSION_RECEIVED
from services.common.clock import FixedClock
from services.common.kafka import KafkaPublisher, Names, build_broker, ensure_topics
from services.common.metrics import CommonMetrics
from services.common.mongo import Document
from services.common.outbox import (
    INTENT,
    PUBLISHED,
    READY,
    Outbox,
    OutboxRelay,
    Ref,
    document_with_event,
)
from tests.conftest import Servers
from tests.support.mongo import outbox_size, throwaway_database
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

DUE_AT = dt.datetime(2027, 6, 14, 17, 0, tzinfo=dt.UTC)
FIRST = dt.datetime(2027, 6, 1, 2, 0, 0, 123_456, tzinfo=dt.UTC)
NOW = dt.datetime(2027, 6, 1, 3, 0, tzinfo=dt.UTC)
SETTLE = dt.timedelta(seconds=30)
HISTORY = "submissions.kh-nq35-ngoc-hoi.2027.6-thang"


def received(unit_id: str, minutes: int, *, results: str = "Tổ chức 4 buổi.") -> SubmissionReceived:
    at = FIRST + dt.timedelta(minutes=minutes)
    return SubmissionReceived(
        occurred_at=at,
        producer="submissions",
        correlation_id=uuid.uuid4(),
        payload=SubmissionReceivedPayload(
            submission_id=str(uuid.uuid4()),
            receipt_no=f"TN-2027-{minutes:06d}",
            plan_id="kh-nq35-ngoc-hoi",
            period_id="kh-nq35-ngoc-hoi.2027.6-thang",
            unit_id=unit_id,
            revision=1,
            received_at=at,
            due_at=DUE_AT,
            on_time=True,
            tasks=[TaskReport(task_id="ii-1-1", status="completed", results=results)],
        ),
    )


def too_large_for_kafka(unit_id: str, minutes: int) -> SubmissionReceived:
    """An event whose JSON is over 1 MiB, aiokafka's max_request_size: never accepted."""
    event = received(unit_id, minutes)
    tasks = [
        TaskReport(task_id=f"nv-{i}", status="completed", results="Đ" * 19_000) for i in range(40)
    ]
    big = event.model_copy(update={"payload": event.payload.model_copy(update={"tasks": tasks})})
    assert len(big.model_dump_json().encode()) > 1024 * 1024
    return big


class Rig:
    def __init__(self, servers: Servers, namespace: str, db: AsyncDatabase[Document]) -> None:
        self.servers = servers
        self.names = Names(namespace)
        self.topic = self.names.topic(SUBMISSION_RECEIVED)
        self.db = db
        self.registry = CollectorRegistry()
        self.metrics = CommonMetrics(self.registry, "test")
        self.clock = FixedClock(NOW)
        self.outbox = Outbox(db, self.clock)
        # The services' own producer settings (acks=all, idempotence, 1 MiB requests).
        self.broker = build_broker(servers.kafka_bootstrap, service="test", registry=self.registry)
        self.publisher = KafkaPublisher(self.broker, self.names, self.metrics)
        self.relay = self.relay_with(self.publisher.enqueue_raw)

    def relay_with(self, publish: Any) -> OutboxRelay:
        return OutboxRelay(self.outbox, publish, self.clock, self.metrics, settle_after=SETTLE)

    async def store(self, *events: SubmissionReceived) -> None:
        for event in events:
            await self.outbox.put(event)

    async def waiting_ids(self) -> list[str]:
        return [e["_id"] for e in await self.outbox.waiting(100)]

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, {"service": "test", **labels})


@pytest.fixture
async def rig(servers: Servers, namespace: str) -> AsyncIterator[Rig]:
    async with throwaway_database(servers.mongo_uri, f"{namespace}_outbox") as db:
        rig = Rig(servers, namespace, db)
        await ensure_topics(servers.kafka_bootstrap, [rig.topic], 1)
        await rig.broker.start()
        try:
            yield rig
        finally:
            await rig.broker.stop()


async def read(
    servers: Servers, topic: str, *, until: int, settle: float = 1.0
) -> list[dict[str, Any]]:
    """Records on ``topic`` from the start: at least ``until``, then whatever else comes in
    ``settle`` seconds (so a duplicate has its chance to show up)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=servers.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[dict[str, Any]] = []

    async def poll() -> None:
        for batch in (await consumer.getmany(timeout_ms=200)).values():
            records.extend(
                {
                    "key": r.key.decode(),
                    "value": json.loads(r.value),
                    "headers": {k: v.decode() for k, v in r.headers},
                }
                for r in batch
            )

    async def enough() -> bool:
        await poll()
        return len(records) >= until

    try:
        if until:
            await eventually(enough, what=f"{until} record(s) on {topic}")
        quiet_until = time.monotonic() + settle
        while time.monotonic() < quiet_until:
            await poll()
    finally:
        await consumer.stop()
    return records


def ids(*events: SubmissionReceived) -> list[str]:
    return [str(e.event_id) for e in events]


async def test_ready_entries_are_published_oldest_first_and_removed(
    rig: Rig, servers: Servers
) -> None:
    later, first, middle = (
        received("xa-dak-ang", 20),
        received("xa-bo-y", 0),
        received("phong-vhtt", 10),
    )
    await rig.store(later, first, middle)  # stored out of order
    stored = await rig.db["outbox_ready"].find_one({"_id": str(first.event_id)})
    assert stored is not None
    assert stored["enqueued_at"] == FIRST.replace(microsecond=123_000)

    assert await rig.relay.relay_once() == 3

    records = await read(servers, rig.topic, until=3)
    in_order = [first, middle, later]
    assert [r["value"]["event_id"] for r in records] == ids(*in_order)
    assert [r["key"] for r in records] == ["xa-bo-y", "phong-vhtt", "xa-dak-ang"]
    assert [SubmissionReceived.model_validate(r["value"]) for r in records] == in_order
    assert records[0]["headers"]["event_id"] == str(first.event_id)
    assert records[0]["headers"]["event_type"] == "submission.received"
    assert records[0]["headers"]["content-type"] == "application/json"
    assert await outbox_size(rig.db) == 0  # the collections stay small
    assert rig.sample("baocao_events_published_total", topic=SUBMISSION_RECEIVED.name) == 3
    assert rig.sample("baocao_outbox_relayed_total") == 3


async def test_a_second_relay_publishes_nothing_more(rig: Rig, servers: Servers) -> None:
    event = received("xa-bo-y", 0)
    await rig.store(event, received("xa-dak-ang", 1))
    await rig.store(event)  # the same event put twice is stored once
    assert await rig.relay.relay_once() == 2

    assert await rig.relay.relay_once() == 0

    records = await read(servers, rig.topic, until=2)
    assert len(records) == 2


async def test_a_failed_publish_keeps_the_entries_until_a_later_relay(
    rig: Rig, servers: Servers
) -> None:
    events = [received("xa-bo-y", 0), received("xa-dak-ang", 1), received("xa-sa-loong", 2)]
    await rig.store(*events)
    calls: list[str] = []

    async def flaky(topic: str, key: str, value: bytes, headers: dict[str, str]) -> Awaitable[None]:
        calls.append(key)
        if len(calls) == 2:
            raise KafkaTimeoutError("Kafka không trả lời")
        return await rig.publisher.enqueue_raw(topic, key, value, headers)

    relay = rig.relay_with(flaky)

    with pytest.raises(KafkaTimeoutError):  # transient: the pass ends, order is kept
        await relay.relay_once()
    assert await rig.waiting_ids() == ids(*events[1:])

    assert await relay.relay_once() == 2

    assert calls == ["xa-bo-y", "xa-dak-ang", "xa-dak-ang", "xa-sa-loong"]
    records = await read(servers, rig.topic, until=3)
    assert [r["value"]["event_id"] for r in records] == ids(*events)
    assert await rig.waiting_ids() == []
    assert await rig.outbox.parked_entries(10) == []


async def test_measure_reports_waiting_entries_and_the_oldest_age(rig: Rig) -> None:
    await rig.store(received("xa-bo-y", 0), received("xa-dak-ang", 30))

    assert await rig.relay.measure() == 2

    assert rig.sample("baocao_outbox_pending") == 2
    oldest_age = (NOW - FIRST.replace(microsecond=123_000)).total_seconds()
    assert rig.sample("baocao_outbox_oldest_pending_seconds") == pytest.approx(oldest_age)

    await rig.relay.relay_once()
    assert await rig.relay.measure() == 0

    assert rig.sample("baocao_outbox_pending") == 0
    assert rig.sample("baocao_outbox_oldest_pending_seconds") == 0


async def test_an_entry_kafka_refuses_is_parked_and_the_ones_after_it_are_relayed(
    rig: Rig, servers: Servers
) -> None:
    """Guards issue 7's blocked relay: before the redesign an event Kafka refuses for good
    (here over 1 MiB: aiokafka's MessageSizeTooLargeError) failed every pass, and every event
    behind it waited for ever while the gauges said nothing. Now it is parked with its reason,
    the rest is relayed, and the gauges follow."""
    before, big, after = (
        received("xa-bo-y", 0),
        too_large_for_kafka("xa-sa-loong", 1),
        received("xa-dak-ang", 2),
    )
    await rig.store(before, big, after)
    assert await rig.relay.measure() == 3
    assert rig.sample("baocao_outbox_pending") == 3

    assert await rig.relay.relay_once() == 2

    records = await read(servers, rig.topic, until=2)
    assert [r["value"]["event_id"] for r in records] == ids(before, after)
    assert await rig.waiting_ids() == []
    [parked] = await rig.outbox.parked_entries(10)
    assert parked["_id"] == str(big.event_id)
    assert parked["reason"].startswith("MessageSizeTooLargeError")
    assert parked["topic"] == SUBMISSION_RECEIVED.name
    assert "event_json" not in parked  # the listing stays light; the event is kept for replay
    assert rig.sample("baocao_outbox_parked_total", topic=SUBMISSION_RECEIVED.name) == 1
    assert await rig.relay.measure() == 0
    assert rig.sample("baocao_outbox_pending") == 0
    assert rig.sample("baocao_outbox_oldest_pending_seconds") == 0

    # A replay puts it back in line (after someone fixed the cause; here it is parked again).
    assert await rig.outbox.replay(str(big.event_id)) is True
    assert await rig.waiting_ids() == ids(big)
    assert await rig.outbox.replay(str(uuid.uuid4())) is False
    assert await rig.relay.relay_once() == 0
    assert [p["_id"] for p in await rig.outbox.parked_entries(10)] == ids(big)


async def test_intents_are_settled_by_what_was_written(rig: Rig, servers: Servers) -> None:
    """Guards the intent/change/commit protocol: an intent whose request died before its
    change is dropped once ``settle_after`` has passed, one whose change was written is
    published, and a ``commit`` arriving after the relay dropped its intent restores it."""
    written, never_written, slow = (
        received("xa-bo-y", 0),
        received("xa-dak-ang", 1),
        received("xa-sa-loong", 2),
    )
    entries: dict[str, Document] = {}
    for event in (written, never_written, slow):
        ref = Ref(HISTORY, event.payload.submission_id)
        entries[event.payload.unit_id] = await rig.outbox.intend(event, ref)
    # Only the first request wrote its change (the third one will, late).
    doc = {"_id": written.payload.submission_id, "unit_id": "xa-bo-y"}
    await rig.db[HISTORY].insert_one(document_with_event(doc, entries["xa-bo-y"]))

    assert await rig.relay.relay_once() == 0  # too young: their requests may still run
    assert len(await rig.waiting_ids()) == 3

    rig.clock.advance(SETTLE + dt.timedelta(seconds=1))
    assert await rig.relay.relay_once() == 1

    published = await rig.db["outbox"].find_one({"_id": str(written.event_id)})
    assert published is not None
    assert published["state"] == PUBLISHED  # kept so that a late commit does not restore it
    assert await rig.waiting_ids() == []
    assert await outbox_size(rig.db) == 1

    # The slow request finally writes its change and commits: its event is restored.
    late = {"_id": slow.payload.submission_id, "unit_id": "xa-sa-loong"}
    await rig.db[HISTORY].insert_one(document_with_event(late, entries["xa-sa-loong"]))
    await rig.outbox.commit(entries["xa-sa-loong"])
    await rig.outbox.commit(entries["xa-bo-y"])  # late too, but already published: no-op
    restored = await rig.db["outbox_ready"].find_one({"_id": str(slow.event_id)})
    assert restored is not None
    assert restored["state"] == READY
    assert await rig.waiting_ids() == ids(slow)

    assert await rig.relay.relay_once() == 1

    records = await read(servers, rig.topic, until=2)
    assert [r["value"]["event_id"] for r in records] == ids(written, slow)
    await rig.outbox.forget_published(rig.clock.now() + dt.timedelta(seconds=1))
    assert await outbox_size(rig.db) == 0


async def test_an_abandoned_intent_never_leaves(rig: Rig, servers: Servers) -> None:
    kept, abandoned = received("xa-bo-y", 0), received("xa-dak-ang", 1)
    entry = await rig.outbox.intend(abandoned, Ref(HISTORY, abandoned.payload.submission_id))
    assert entry["state"] == INTENT
    await rig.outbox.abandon(entry)
    await rig.store(kept)
    rig.clock.advance(SETTLE * 2)

    assert await rig.relay.relay_once() == 1

    records = await read(servers, rig.topic, until=1)
    assert [r["value"]["event_id"] for r in records] == ids(kept)
