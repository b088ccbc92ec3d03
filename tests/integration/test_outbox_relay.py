"""The outbox relay on the real FerretDB and Kafka: in order, once, and nothing lost on failure."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaTimeoutError
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.collection import AsyncCollection

from contracts.events import SubmissionReceived, SubmissionReceivedPayload, TaskReport
from contracts.topics import SUBMISSION_RECEIVED
from services.common.clock import FixedClock
from services.common.kafka import KafkaPublisher, Names, ensure_topics
from services.common.metrics import CommonMetrics
from services.common.mongo import Document, connect
from services.common.outbox import OutboxRelay, outbox_entry
from tests.conftest import Servers
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

DUE_AT = dt.datetime(2027, 6, 14, 17, 0, tzinfo=dt.UTC)
FIRST = dt.datetime(2027, 6, 1, 2, 0, 0, 123_456, tzinfo=dt.UTC)
NOW = dt.datetime(2027, 6, 1, 3, 0, tzinfo=dt.UTC)


def received(unit_id: str, minutes: int) -> SubmissionReceived:
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
            tasks=[
                TaskReport(
                    task_id="ii-1-1-tuyen-truyen-giao-duc",
                    status="completed",
                    results="Tổ chức 4 buổi quán triệt Nghị quyết 35-NQ/TW.",
                )
            ],
        ),
    )


class Rig:
    def __init__(
        self, servers: Servers, namespace: str, collection: AsyncCollection[Document]
    ) -> None:
        self.servers = servers
        self.names = Names(namespace)
        self.topic = self.names.topic(SUBMISSION_RECEIVED)
        self.collection = collection
        self.registry = CollectorRegistry()
        self.metrics = CommonMetrics(self.registry, "test")
        self.clock = FixedClock(NOW)
        self.broker = KafkaBroker(servers.kafka_bootstrap)
        self.publisher = KafkaPublisher(self.broker, self.names, self.metrics)
        self.relay = OutboxRelay([collection], self.publisher.publish_raw, self.clock, self.metrics)

    async def store(self, *events: SubmissionReceived) -> None:
        for event in events:
            await self.collection.insert_one(
                {
                    "_id": event.payload.submission_id,
                    "unit_id": event.payload.unit_id,
                    "outbox": outbox_entry(event),
                }
            )

    async def pending_ids(self) -> list[str]:
        found = self.collection.find({"outbox.pending": True}).sort("outbox.enqueued_at", 1)
        return [d["outbox"]["event_id"] for d in await found.to_list()]

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, {"service": "test", **labels})


@pytest.fixture
async def rig(servers: Servers, namespace: str) -> AsyncIterator[Rig]:
    client = connect(servers.mongo_uri)
    name = f"{namespace}_outbox"
    rig = Rig(servers, namespace, client[name]["submissions"])
    await ensure_topics(servers.kafka_bootstrap, [rig.topic], 1)
    await rig.relay.create_indexes()
    await rig.broker.start()
    try:
        yield rig
    finally:
        await rig.broker.stop()
        await client.drop_database(name)
        await client.close()


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
        await eventually(enough, what=f"{until} record(s) on {topic}")
        quiet_until = time.monotonic() + settle
        while time.monotonic() < quiet_until:
            await poll()
    finally:
        await consumer.stop()
    return records


async def test_pending_entries_are_published_oldest_first_and_marked(
    rig: Rig, servers: Servers
) -> None:
    later, first, middle = (
        received("xa-dak-ang", 20),
        received("xa-bo-y", 0),
        received("phong-vhtt", 10),
    )
    await rig.store(later, first, middle)  # stored out of order

    assert await rig.relay.relay_once() == 3

    records = await read(servers, rig.topic, until=3)
    in_order = [first, middle, later]
    assert [r["value"]["event_id"] for r in records] == [str(e.event_id) for e in in_order]
    assert [r["key"] for r in records] == ["xa-bo-y", "phong-vhtt", "xa-dak-ang"]
    assert [SubmissionReceived.model_validate(r["value"]) for r in records] == in_order
    assert records[0]["headers"]["event_id"] == str(first.event_id)
    assert records[0]["headers"]["event_type"] == "submission.received"
    assert await rig.pending_ids() == []
    stored = await rig.collection.find_one({"_id": first.payload.submission_id})
    assert stored is not None
    assert stored["outbox"]["pending"] is False
    assert stored["outbox"]["published_at"] == NOW
    assert stored["outbox"]["enqueued_at"] == FIRST.replace(microsecond=123_000)
    assert rig.sample("baocao_events_published_total", topic=SUBMISSION_RECEIVED.name) == 3


async def test_a_second_relay_publishes_nothing_more(rig: Rig, servers: Servers) -> None:
    await rig.store(received("xa-bo-y", 0), received("xa-dak-ang", 1))
    assert await rig.relay.relay_once() == 2

    assert await rig.relay.relay_once() == 0

    records = await read(servers, rig.topic, until=2)
    assert len(records) == 2


async def test_a_failed_publish_keeps_the_entry_pending_until_a_later_relay(
    rig: Rig, servers: Servers
) -> None:
    events = [received("xa-bo-y", 0), received("xa-dak-ang", 1), received("xa-sa-loong", 2)]
    await rig.store(*events)
    calls: list[str] = []

    async def flaky(topic: str, key: str, value: bytes, headers: dict[str, str]) -> None:
        calls.append(key)
        if len(calls) == 2:
            raise KafkaTimeoutError("Kafka không trả lời")
        await rig.publisher.publish_raw(topic, key, value, headers)

    relay = OutboxRelay([rig.collection], flaky, rig.clock, rig.metrics)

    with pytest.raises(KafkaTimeoutError):
        await relay.relay_once()
    assert await rig.pending_ids() == [str(e.event_id) for e in events[1:]]

    assert await relay.relay_once() == 2

    assert calls == ["xa-bo-y", "xa-dak-ang", "xa-dak-ang", "xa-sa-loong"]
    records = await read(servers, rig.topic, until=3)
    assert [r["value"]["event_id"] for r in records] == [str(e.event_id) for e in events]
    assert await rig.pending_ids() == []


async def test_measure_reports_pending_entries_and_the_oldest_age(rig: Rig) -> None:
    await rig.store(received("xa-bo-y", 0), received("xa-dak-ang", 30))

    await rig.relay.measure()

    assert rig.sample("baocao_outbox_pending") == 2
    oldest_age = (NOW - FIRST.replace(microsecond=123_000)).total_seconds()
    assert rig.sample("baocao_outbox_oldest_pending_seconds") == pytest.approx(oldest_age)

    await rig.relay.relay_once()
    await rig.relay.measure()

    assert rig.sample("baocao_outbox_pending") == 0
    assert rig.sample("baocao_outbox_oldest_pending_seconds") == 0
