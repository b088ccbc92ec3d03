"""``Consumption`` on the real Kafka and FerretDB: nothing acknowledged is lost, nothing skipped."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect

from contracts.events import DeadlineOverdue, DeadlineOverduePayload
from contracts.topics import DEADLINE_OVERDUE
from services.common.clock import FixedClock
from services.common.consumer import (
    Consumption,
    PermanentError,
    RetryPolicy,
    TransientError,
)
from services.common.kafka import Names, build_broker, ensure_topics
from services.common.metrics import CommonMetrics
from services.common.mongo import DeadLetters, Document, connect
from tests.conftest import Servers
from tests.support.mongo import throwaway_database
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

AT = dt.datetime(2027, 6, 16, 1, 0, tzinfo=dt.UTC)
DUE_AT = dt.datetime(2027, 6, 14, 17, 0, tzinfo=dt.UTC)
CONSUMER = "overdue"
FAST = RetryPolicy(max_attempts=3, first_delay=0.01, max_delay=0.05)


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

    def __init__(
        self,
        servers: Servers,
        namespace: str,
        db: AsyncDatabase[Document],
        policy: RetryPolicy = FAST,
    ) -> None:
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
            policy,
        )
        self.brokers: list[KafkaBroker] = []

    async def create_topic(self) -> None:
        await ensure_topics(self.servers.kafka_bootstrap, [self.topic], 1)

    async def publish(
        self,
        *values: bytes,
        key: bytes = b"xa-bo-y",
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Records on the one partition, in order, each with ``headers`` (none by default)."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.servers.kafka_bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(self.topic, value, key=key, headers=headers)
        finally:
            await producer.stop()

    async def start(
        self, handler: Callable[[Any], Awaitable[None]], concurrency: int = 1
    ) -> KafkaBroker:
        # The services' broker; a handler retrying a TransientError in place does not return
        # within its graceful timeout, and an unacknowledged record is simply delivered again.
        # (Each broker its own registry: FastStream's middleware registers its metrics once.)
        broker = build_broker(
            self.servers.kafka_bootstrap, service="test", registry=CollectorRegistry()
        )
        self.consumption.subscribe(
            broker, DEADLINE_OVERDUE, CONSUMER, handler, concurrency=concurrency
        )
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
        """Stored dead letters, raw bytes included, in offset order."""
        return await self.db["dead_letters"].find().sort("offset", 1).to_list()

    async def listed(self) -> list[Document]:
        """What operators see (``GET /api/v1/dead-letters``): without the raw bytes."""
        return sorted(await self.consumption.dead_letters.list(), key=lambda d: d["offset"])

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
    assert bytes(letter["value"]) == poison
    assert bytes(letter["key"]) == b"xa-bo-y"
    assert letter["preview"] == poison.decode()
    assert (letter["value_bytes"], letter["value_sha256"]) == (
        len(poison),
        hashlib.sha256(poison).hexdigest(),
    )
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
        # PostgreSQL, FerretDB's other backend, refuses NUL in text: the preview and the
        # error (which quotes the input) must still be storable.
        pytest.param(b"\x00not an event{\x00", id="nul-bytes"),
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
    assert bytes(letter["value"]) == body
    assert (letter["reason"], letter["attempts"], letter["offset"]) == ("invalid_message", 1, 0)
    assert letter["error"].startswith("Rejected: ") and "validation error" in letter["error"]
    assert "\x00" not in letter["preview"] + letter["error"]
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


async def test_a_dead_letter_keeps_the_record_headers(rig: Rig) -> None:
    """Every record our producers send has headers (event_id, event_type, content-type)."""
    await asyncio.wait_for(
        rig.consumption.dead_letters.put(
            consumer=CONSUMER,
            topic=rig.topic,
            partition=0,
            offset=7,
            key=b"xa-bo-y",
            value=b"{}",
            headers=[("event_id", b"e-1"), ("content-type", b"application/json")],
            reason="invalid_message",
            error="Rejected: ...",
            attempts=1,
            at=AT,
        ),
        timeout=10,
    )

    [letter] = await rig.dead_letters()
    assert header_values(letter) == [b"e-1", b"application/json"]


async def test_records_faststream_cannot_decode_are_dead_lettered_and_the_next_is_handled(
    rig: Rig,
) -> None:
    """Guards issue 7's undecodable records: before the redesign FastStream decoded the body by
    its ``content-type`` and the headers as strict UTF-8 *before* our handler ran, so such a
    record raised outside our dead-lettering and a later ack committed past it: lost without a
    trace. Both are now dead letters (raw bytes kept) and the good record after them on the
    same partition is handled."""
    handled: list[str] = []

    async def handler(event: DeadlineOverdue) -> None:
        handled.append(event.payload.unit_id)

    not_json = "không phải JSON {".encode()
    bad_header = overdue("xa-hong")
    await rig.publish(not_json, headers=[("content-type", b"application/json")])
    await rig.publish(bad_header, headers=[("event_id", b"\xff\xfe ma-hong")])
    await rig.publish(
        overdue("xa-sau"),
        headers=[("content-type", b"application/json"), ("event_type", b"deadline.overdue")],
    )
    await rig.start(handler)

    await eventually(
        lambda: _true(handled == ["xa-sau"]), timeout=15, what="the good record after them"
    )
    first, second = await rig.listed()
    assert (first["offset"], first["reason"], first["attempts"]) == (0, "invalid_message", 1)
    assert first["preview"] == not_json.decode()
    assert (second["offset"], second["reason"]) == (1, "invalid_headers")
    assert "event_id" in second["error"]
    assert "value" not in first  # the listing leaves the raw bytes out...
    stored = await rig.dead_letters()
    assert bytes(stored[1]["value"]) == bad_header  # ...the store keeps them
    assert header_values(stored[1]) == [b"\xff\xfe ma-hong"]
    await eventually(lambda: _equals(rig.committed(), 3), what="all three offsets committed")
    assert rig.metric("baocao_dead_letters_total") == 2


def header_values(letter: Document) -> list[bytes]:
    """The raw header values of a stored dead letter, whatever the shape of each header."""
    values: list[bytes] = []
    for header in letter["headers"]:
        parts = header.values() if isinstance(header, dict) else header
        values += [bytes(p) for p in parts if isinstance(p, bytes)]
    return values


async def test_a_missing_file_is_not_retried_for_ever(rig: Rig) -> None:
    """Guards issue 7's endless retry: before the redesign every ``OSError`` counted as
    transient, so a handler failing with FileNotFoundError (a template missing from the image)
    was retried in place for ever and blocked its partition. It is a permanent failure after
    ``max_attempts`` now."""
    attempts: list[str] = []

    async def handler(event: DeadlineOverdue) -> None:
        attempts.append(event.payload.unit_id)
        if event.payload.unit_id == "xa-1":
            raise FileNotFoundError(2, "No such file or directory", "templates/overdue.txt")

    await rig.publish(overdue("xa-1"), overdue("xa-2"))
    await rig.start(handler)

    await eventually(lambda: _true(attempts[-1:] == ["xa-2"]), what="the next record")
    assert attempts == ["xa-1"] * 3 + ["xa-2"]
    [letter] = await rig.listed()
    assert (letter["reason"], letter["attempts"], letter["offset"]) == ("handler_failed", 3, 0)
    assert letter["error"].startswith("FileNotFoundError")
    await eventually(lambda: _equals(rig.committed(), 2), what="both offsets committed")


async def test_a_mongodb_failover_is_retried_past_max_attempts(rig: Rig) -> None:
    """Guards the other side of the classification: pymongo's AutoReconnect (a fail-over, a
    dropped connection) is transient, so it is retried beyond ``max_attempts`` rather than
    dead-lettered, and the record is handled once MongoDB answers."""
    calls: list[str] = []

    async def handler(event: DeadlineOverdue) -> None:
        calls.append(event.payload.unit_id)
        if event.payload.unit_id == "xa-1" and calls.count("xa-1") <= 5:
            raise AutoReconnect("127.0.0.1:27017: connection closed")

    await rig.publish(overdue("xa-1"), overdue("xa-2"))
    await rig.start(handler)

    await eventually(lambda: _true(calls[-1:] == ["xa-2"]), what="the next record")
    assert calls == ["xa-1"] * 6 + ["xa-2"]
    assert await rig.dead_letters() == []
    assert rig.metric("baocao_handler_retries_total") == 5
    await eventually(lambda: _equals(rig.committed(), 2), what="both offsets committed")


async def test_an_outage_longer_than_the_budget_is_handed_back_and_delivered_again(
    servers: Servers, namespace: str
) -> None:
    """After ``transient_budget`` seconds of in-place retries the record is handed back to
    Kafka (nack: the partition is rewound to it), not dead-lettered and not skipped."""
    async with throwaway_database(servers.mongo_uri, f"{namespace}_consumer") as db:
        policy = RetryPolicy(max_attempts=3, first_delay=0.01, max_delay=0.02, transient_budget=0)
        rig = Rig(servers, namespace, db, policy)
        await rig.create_topic()
        calls: list[str] = []

        async def handler(event: DeadlineOverdue) -> None:
            calls.append(event.payload.unit_id)
            if event.payload.unit_id == "xa-1" and calls.count("xa-1") <= 4:
                raise TransientError("MongoDB không trả lời")

        await rig.publish(overdue("xa-1"), overdue("xa-2"))
        try:
            await rig.start(handler)
            await eventually(lambda: _true(calls[-1:] == ["xa-2"]), what="the next record")
            await eventually(lambda: _equals(rig.committed(), 2), what="both offsets committed")
        finally:
            for broker in rig.brokers:
                await broker.stop()

        assert calls == ["xa-1"] * 5 + ["xa-2"]  # each delivery tried once, then given back
        assert await rig.dead_letters() == []


async def test_records_handled_concurrently_are_all_handled_and_committed(
    servers: Servers, namespace: str
) -> None:
    """notify's subscriptions: a batch's records handled four at once; a record handed back to
    Kafka rewinds the partition to it, and every record ends handled and committed."""
    async with throwaway_database(servers.mongo_uri, f"{namespace}_consumer") as db:
        policy = RetryPolicy(max_attempts=3, first_delay=0.01, max_delay=0.02, transient_budget=0)
        rig = Rig(servers, namespace, db, policy)
        await rig.create_topic()
        units = [f"xa-{n:02d}" for n in range(30)]
        calls: list[str] = []
        running, peak = 0, 0

        async def handler(event: DeadlineOverdue) -> None:
            nonlocal running, peak
            unit_id = event.payload.unit_id
            calls.append(unit_id)
            running += 1
            peak = max(peak, running)
            try:
                await asyncio.sleep(0.01)
                if unit_id == "xa-07" and calls.count("xa-07") <= 2:
                    raise TransientError("MongoDB không trả lời")
            finally:
                running -= 1

        await rig.publish(*(overdue(u) for u in units))
        try:
            await rig.start(handler, concurrency=4)
            await eventually(lambda: _equals(rig.committed(), 30), what="every offset committed")
        finally:
            for broker in rig.brokers:
                await broker.stop()

        assert set(calls) == set(units)  # none skipped
        assert calls.count("xa-07") == 3  # handed back twice, then handled
        assert 1 < peak <= 4
        assert await rig.dead_letters() == []


async def _true(value: bool) -> bool:
    return value


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected
