"""``Consumption`` on the real Kafka and FerretDB: nothing acknowledged is lost, nothing skipped."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from contracts.events import DeadlineOverdue, DeadlineOverduePayload
from contracts.topics import DEADLINE_OVERDUE
from services.common.clock import FixedClock
from services.common.consumer import (
    Consumption,
    PermanentError,
    RetryPolicy,
    TransientError,
)
from services.common.kafka import Names, ensure_topics
from services.common.metrics import CommonMetrics
from services.common.mongo import DeadLetters, Document, connect
from tests.conftest import Servers
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

AT = dt.datetime(2027, 6, 16, 1, 0, tzinfo=dt.UTC)
DUE_AT = dt.datetime(2027, 6, 14, 17, 0, tzinfo=dt.UTC)
CONSUMER = "overdue"


def overdue(unit_id: str) -> bytes:
    return (
        DeadlineOverdue(
            occurred_at=AT,
            producer="deadlines",
            correlation_id=uuid.uuid4(),
            payload=DeadlineOverduePayload(
                plan_id="kh-nq35-ngoc-hoi",
                period_id="kh-nq35-ngoc-hoi.2027.6-thang",
                report_kind="6-thang",
                year=2027,
                due_at=DUE_AT,
                unit_id=unit_id,
            ),
        )
        .model_dump_json()
        .encode()
    )


class Rig:
    """One topic (one partition), one consumer group and one dead-letter store for one test."""

    def __init__(self, servers: Servers, namespace: str, db: AsyncDatabase[Document]) -> None:
        self.servers = servers
        self.names = Names(namespace)
        self.topic = self.names.topic(DEADLINE_OVERDUE)
        self.group = self.names.group("test", CONSUMER)
        self.db = db
        self.registry = CollectorRegistry()
        self.consumption = Consumption(
            "test",
            self.names,
            DeadLetters(db),
            CommonMetrics(self.registry, "test"),
            FixedClock(AT),
            RetryPolicy(max_attempts=3, first_delay=0.01, max_delay=0.05),
        )
        self.brokers: list[KafkaBroker] = []

    async def create_topic(self) -> None:
        await ensure_topics(self.servers.kafka_bootstrap, [self.topic], 1)

    async def publish(self, *values: bytes, key: bytes = b"xa-bo-y") -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.servers.kafka_bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(self.topic, value, key=key)
        finally:
            await producer.stop()

    async def start(self, handler: Callable[[Any], Awaitable[None]]) -> KafkaBroker:
        # A handler retrying a TransientError never returns: do not wait 15 s for it at stop.
        broker = KafkaBroker(self.servers.kafka_bootstrap, graceful_timeout=0.5)
        self.consumption.subscribe(broker, DEADLINE_OVERDUE, CONSUMER, handler)
        await broker.start()
        self.brokers.append(broker)
        return broker

    async def committed(self) -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.servers.kafka_bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(self.group)
        finally:
            await admin.close()
        return sum(o.offset for tp, o in offsets.items() if tp.topic == self.topic)

    async def dead_letters(self) -> list[Document]:
        return await self.db["dead_letters"].find().sort("offset", 1).to_list()

    def metric(self, name: str) -> float:
        return (
            self.registry.get_sample_value(name, {"service": "test", "consumer": CONSUMER}) or 0.0
        )


@pytest.fixture
async def rig(servers: Servers, namespace: str) -> AsyncIterator[Rig]:
    client = connect(servers.mongo_uri)
    name = f"{namespace}_consumer"
    rig = Rig(servers, namespace, client[name])
    await rig.consumption.dead_letters.create_indexes()
    await rig.create_topic()
    try:
        yield rig
    finally:
        for broker in rig.brokers:
            await broker.stop()
        await client.drop_database(name)
        await client.close()


async def test_a_message_that_fails_twice_is_processed_before_the_next_one(rig: Rig) -> None:
    calls: list[str] = []
    done: list[str] = []

    async def handler(event: DeadlineOverdue) -> None:
        unit = event.payload.unit_id
        calls.append(unit)
        if unit == "xa-1" and calls.count("xa-1") <= 2:
            raise RuntimeError("MongoDB trả lời sai lần thứ " + str(calls.count("xa-1")))
        done.append(unit)

    await rig.publish(overdue("xa-1"), overdue("xa-2"))
    await rig.start(handler)

    await eventually(lambda: _true(len(done) >= 2), what="both messages handled")
    assert calls == ["xa-1", "xa-1", "xa-1", "xa-2"]
    assert done == ["xa-1", "xa-2"]
    await eventually(lambda: _equals(rig.committed(), 2), what="offset 2 committed")
    assert await rig.dead_letters() == []
    assert rig.metric("baocao_handler_retries_total") == 2


async def test_a_message_that_always_fails_is_dead_lettered_and_the_next_is_processed(
    rig: Rig,
) -> None:
    attempts: list[str] = []
    done: list[str] = []
    poison = overdue("xa-doc-hai")

    async def handler(event: DeadlineOverdue) -> None:
        attempts.append(event.payload.unit_id)
        if event.payload.unit_id == "xa-doc-hai":
            raise ValueError("dữ liệu không xử lý được")
        done.append(event.payload.unit_id)

    await rig.publish(poison, overdue("xa-sau"), key=b"xa-bo-y")
    await rig.start(handler)

    await eventually(lambda: _true(done == ["xa-sau"]), what="the message after the poison")
    assert attempts == ["xa-doc-hai"] * 3 + ["xa-sau"]
    [letter] = await rig.dead_letters()
    assert letter["value"].encode() == poison
    assert letter["key"] == "xa-bo-y"
    assert (letter["topic"], letter["partition"], letter["offset"]) == (rig.topic, 0, 0)
    assert (letter["consumer"], letter["reason"], letter["attempts"]) == (
        CONSUMER,
        "handler_failed",
        3,
    )
    assert letter["error"] == "ValueError: dữ liệu không xử lý được"
    assert letter["at"] == AT
    await eventually(lambda: _equals(rig.committed(), 2), what="both offsets committed")
    assert rig.metric("baocao_dead_letters_total") == 1


async def test_a_message_rejected_for_good_is_dead_lettered_at_once(rig: Rig) -> None:
    attempts: list[str] = []

    async def handler(event: DeadlineOverdue) -> None:
        attempts.append(event.payload.unit_id)
        if event.payload.unit_id == "xa-la":
            raise PermanentError("kế hoạch không được nạp ở đây")

    await rig.publish(overdue("xa-la"), overdue("xa-sau"))
    await rig.start(handler)

    await eventually(lambda: _true(attempts[-1:] == ["xa-sau"]), what="the next message")
    assert attempts == ["xa-la", "xa-sau"]
    [letter] = await rig.dead_letters()
    assert (letter["reason"], letter["attempts"], letter["offset"]) == ("rejected", 1, 0)
    assert letter["error"] == "PermanentError: kế hoạch không được nạp ở đây"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("không phải JSON {".encode(), id="not-json"),
        pytest.param(
            b'{"event_type": "deadline.overdue", "payload": {"unit_id": "xa-1"}}',
            id="json-of-the-wrong-shape",
        ),
    ],
)
async def test_a_message_that_is_not_the_event_is_dead_lettered_as_invalid(
    rig: Rig, body: bytes
) -> None:
    handled: list[str] = []

    async def handler(event: DeadlineOverdue) -> None:
        handled.append(event.payload.unit_id)

    await rig.publish(body, overdue("xa-sau"))
    await rig.start(handler)

    await eventually(lambda: _true(handled == ["xa-sau"]), what="the valid message")
    [letter] = await rig.dead_letters()
    assert letter["value"].encode() == body
    assert (letter["reason"], letter["attempts"], letter["offset"]) == ("invalid_message", 1, 0)
    assert letter["error"].startswith("ValidationError")
    await eventually(lambda: _equals(rig.committed(), 2), what="both offsets committed")


async def test_after_a_restart_only_the_unacknowledged_message_is_delivered_again(rig: Rig) -> None:
    first_run: list[str] = []

    async def failing_on_the_second(event: DeadlineOverdue) -> None:
        first_run.append(event.payload.unit_id)
        if event.payload.unit_id == "xa-2":
            raise TransientError("MongoDB không trả lời")

    await rig.publish(overdue("xa-1"), overdue("xa-2"))
    broker = await rig.start(failing_on_the_second)
    await eventually(
        lambda: _true(first_run.count("xa-2") >= 3), what="the second message retried in place"
    )
    assert await rig.committed() == 1  # the first one only
    await broker.stop()
    rig.brokers.remove(broker)
    assert await rig.committed() == 1

    second_run: list[str] = []

    async def succeeding(event: DeadlineOverdue) -> None:
        second_run.append(event.payload.unit_id)

    await rig.start(succeeding)
    await rig.publish(overdue("xa-3"))

    await eventually(
        lambda: _true(len(second_run) >= 2), timeout=60, what="the redelivered and the new message"
    )
    assert second_run == ["xa-2", "xa-3"]
    assert first_run[0] == "xa-1"
    assert set(first_run[1:]) == {"xa-2"}
    await eventually(lambda: _equals(rig.committed(), 3), what="all three offsets committed")
    assert await rig.dead_letters() == []


async def _true(value: bool) -> bool:
    return value


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected
