"""The deadlines service on the real Kafka and MongoDB-wire server: what reaches the topics."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI

from contracts.envelope import Event
from contracts.events import (
    DeadlineApproaching,
    DeadlineOverdue,
    PeriodClosed,
    PeriodOpened,
    SubmissionReceived,
)
from contracts.plan import Plan
from contracts.topics import (
    DEADLINE_APPROACHING,
    DEADLINE_OVERDUE,
    PERIOD_CLOSED,
    PERIOD_OPENED,
    SUBMISSION_RECEIVED,
    Topic,
)
from services.common.clock import FixedClock
from services.common.kafka import Names
from services.common.periods import Period, find_period
from services.common.reference import Catalog
from services.deadlines.app import build_app
from services.deadlines.config import DeadlinesSettings
from services.deadlines.store import MongoDeadlinesStore

pytestmark = pytest.mark.integration

KAFKA = os.environ.get("BAOCAO_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
MONGO = os.environ.get("BAOCAO_MONGO_URI", "mongodb://127.0.0.1:27017/")
OUTPUT_TOPICS = (PERIOD_OPENED, DEADLINE_APPROACHING, DEADLINE_OVERDUE, PERIOD_CLOSED)
DAY = dt.timedelta(days=1)
WAIT = 30.0
T = TypeVar("T")


def the_plan() -> Plan:
    """Three reporting units and one report kind, due before 15 June (local time)."""
    return Plan.model_validate(
        {
            "id": "kh-tich-hop",
            "title": "Kế hoạch kiểm thử tích hợp",
            "issuer": "UBND huyện Thử",
            "issuer_place": "Thử",
            "effective_from": "2025-01-01",
            "consolidating_unit_id": "van-phong",
            "upward_recipient": "UBND tỉnh",
            "units": [
                {"id": "van-phong", "name": "Văn phòng HĐND và UBND", "kind": "specialised_office"},
                {"id": "xa-a", "name": "UBND xã A", "kind": "commune"},
                {"id": "xa-b", "name": "UBND xã B", "kind": "commune"},
            ],
            "tasks": [
                {
                    "id": "nv-1",
                    "section": "II.1",
                    "title": "Nhiệm vụ",
                    "text": "Làm việc",
                    "assignments": [{"unit_id": u} for u in ("van-phong", "xa-a", "xa-b")],
                }
            ],
            "schedule": [
                {
                    "code": "6-thang",
                    "title": "Báo cáo 6 tháng",
                    "due_before": "06-15",
                    "data_from": "12-15",
                    "data_from_previous_year": True,
                    "data_to": "06-14",
                }
            ],
        }
    )


PLAN = the_plan()
UNITS = ("van-phong", "xa-a", "xa-b")


def the_period() -> Period:
    period = find_period(PLAN, f"{PLAN.id}.2027.6-thang")
    assert period is not None
    return period


def settings_for(namespace: str) -> DeadlinesSettings:
    # A long interval: the loop scans once at start, the test triggers every later scan.
    return DeadlinesSettings(
        kafka_bootstrap=KAFKA,
        mongo_uri=MONGO,
        namespace=namespace,
        scan_interval_seconds=3600,
        topic_partitions=2,
    )


@dataclass
class Running:
    app: FastAPI
    http: httpx.AsyncClient

    @property
    def store(self) -> MongoDeadlinesStore:
        store = self.app.state.scheduler.store
        assert isinstance(store, MongoDeadlinesStore)
        return store

    async def scan(self) -> int:
        response = await self.http.post("/api/v1/scan")
        assert response.status_code == 200, response.text
        recorded = response.json()["recorded"]
        assert isinstance(recorded, int)
        return recorded

    async def relayed(self) -> None:
        """Wait until every recorded event is acknowledged by Kafka and marked so."""
        await until(
            lambda: self.store.emissions.count_documents({"outbox.pending": True}),
            lambda pending: pending == 0,
        )


@asynccontextmanager
async def running(namespace: str, clock: FixedClock) -> AsyncIterator[Running]:
    app = build_app(settings_for(namespace), clock=clock, catalog=Catalog({PLAN.id: PLAN}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://deadlines"
        ) as http,
    ):
        yield Running(app, http)


async def until(probe: Callable[[], Awaitable[T]], done: Callable[[T], bool]) -> T:
    """Poll ``probe`` until ``done`` says yes; fail after ``WAIT`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        value = await probe()
        if done(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"still {value!r} after {WAIT}s")
        await asyncio.sleep(0.1)


@dataclass(frozen=True)
class Received:
    topic: Topic
    key: str
    headers: dict[str, str]
    event: Event

    @property
    def logical_key(self) -> str:
        """What makes the announcement unique, independently of the event id."""
        p = self.event.payload
        return "|".join(
            str(x)
            for x in (
                self.event.event_type,
                p.period_id,
                getattr(p, "unit_id", ""),
                getattr(p, "days_before", ""),
            )
        )


class Tap:
    """Reads the service's output topics from the beginning with a plain consumer."""

    def __init__(self, namespace: str) -> None:
        names = Names(namespace)
        self._topics = {names.topic(t): t for t in OUTPUT_TOPICS}
        self._consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=KAFKA,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self.received: list[Received] = []

    async def __aenter__(self) -> Tap:
        await self._consumer.start()
        try:
            # Without a group every partition is assigned once the metadata arrives.
            async def assigned() -> set[str]:
                await self._poll()
                return {tp.topic for tp in self._consumer.assignment()}

            await until(assigned, lambda topics: topics == set(self._topics))
        except BaseException:
            await self._consumer.stop()
            raise
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()

    async def _poll(self) -> None:
        batches = await self._consumer.getmany(timeout_ms=200)
        for tp, records in batches.items():
            topic = self._topics[tp.topic]
            for record in records:
                self.received.append(
                    Received(
                        topic,
                        record.key.decode(),
                        {k: v.decode() for k, v in record.headers},
                        topic.event.model_validate_json(record.value),
                    )
                )

    async def wait_for(self, done: Callable[[list[Received]], bool]) -> list[Received]:
        async def probe() -> list[Received]:
            await self._poll()
            return self.received

        return await until(probe, done)

    async def drain(self) -> list[Received]:
        """Everything on the topics now: read up to the end offsets, however long it takes."""
        assignment = self._consumer.assignment()
        ends = await self._consumer.end_offsets(list(assignment))

        async def caught_up() -> bool:
            await self._poll()
            return all([await self._consumer.position(tp) >= end for tp, end in ends.items()])

        await until(caught_up, bool)
        return self.received


def of_kind(received: list[Received], kind: type[Event]) -> list[Received]:
    return [r for r in received if isinstance(r.event, kind)]


async def publish_submission(namespace: str, period: Period, unit_id: str, at: dt.datetime) -> None:
    event = SubmissionReceived.model_validate(
        {
            "occurred_at": at,
            "producer": "submissions",
            "correlation_id": uuid.uuid4(),
            "payload": {
                "submission_id": uuid.uuid4().hex,
                "receipt_no": "BC-2027-0001",
                "plan_id": period.plan_id,
                "period_id": period.id,
                "unit_id": unit_id,
                "revision": 1,
                "received_at": at,
                "due_at": period.due_at,
                "on_time": at < period.due_at,
                "tasks": [{"task_id": "nv-1", "status": "in_progress", "results": "Đã triển khai"}],
            },
        }
    )
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            Names(namespace).topic(SUBMISSION_RECEIVED),
            event.model_dump_json().encode(),
            key=unit_id.encode(),
            headers=[("event_id", str(event.event_id).encode())],
        )
    finally:
        await producer.stop()


def new_namespace() -> str:
    return "t" + uuid.uuid4().hex[:10]


async def test_reminders_go_to_units_that_have_not_reported() -> None:
    namespace, period = new_namespace(), the_period()
    clock = FixedClock(period.opens_at + DAY)
    async with running(namespace, clock) as service, Tap(namespace) as tap:
        await publish_submission(namespace, period, "xa-a", clock.now())
        await until(
            lambda: service.store.submitted_units([period.id]),
            lambda found: "xa-a" in found.get(period.id, set()),
        )
        clock.at = period.due_at - 3 * DAY + dt.timedelta(hours=1)

        await service.scan()
        received = await tap.wait_for(lambda r: len(of_kind(r, DeadlineApproaching)) >= 2)
        await service.relayed()
        received = await tap.drain()

    [opened] = of_kind(received, PeriodOpened)
    assert opened.key == period.id
    reminders = of_kind(received, DeadlineApproaching)
    assert sorted(r.key for r in reminders) == ["van-phong", "xa-b"]  # not xa-a: it reported
    for reminder in reminders:
        assert isinstance(reminder.event, DeadlineApproaching)
        assert reminder.event.payload.days_before == 3
        assert reminder.event.occurred_at == period.due_at - 3 * DAY
        assert reminder.event.correlation_id == opened.event.correlation_id
        assert reminder.headers["event_id"] == str(reminder.event.event_id)


async def test_each_announcement_is_published_once_across_restarts() -> None:
    namespace, period = new_namespace(), the_period()
    clock = FixedClock(period.due_at - DAY + dt.timedelta(minutes=5))
    expected = 1 + len(UNITS)  # opened + the 1-day reminder per unit (7 and 3 days are stale)

    async with running(namespace, clock) as first, Tap(namespace) as tap:
        await first.scan()
        await tap.wait_for(lambda r: len(r) >= expected)
        await first.relayed()

    for _ in range(2):  # a new process, same database and topics, same moment
        async with running(namespace, clock) as again:
            assert await again.scan() == 0
            await again.relayed()

    async with Tap(namespace) as tap:
        received = await tap.drain()

    by_key = Counter(r.logical_key for r in received)
    by_event_id = Counter(r.event.event_id for r in received)
    assert len(received) == expected, by_key
    assert set(by_key.values()) == {1}
    assert set(by_event_id.values()) == {1}
    assert {r.event.payload.days_before for r in of_kind(received, DeadlineApproaching)} == {1}


async def test_overdue_then_closed_as_the_clock_moves_on() -> None:
    namespace, period = new_namespace(), the_period()
    clock = FixedClock(period.opens_at + dt.timedelta(hours=1))
    async with running(namespace, clock) as service, Tap(namespace) as tap:
        await service.scan()
        await tap.wait_for(lambda r: len(of_kind(r, PeriodOpened)) == 1)

        clock.at = period.due_at + dt.timedelta(hours=2)
        assert await service.scan() == len(UNITS)
        received = await tap.wait_for(lambda r: len(of_kind(r, DeadlineOverdue)) == len(UNITS))

        clock.at = period.closes_at + dt.timedelta(hours=2)
        assert await service.scan() == 1
        received = await tap.wait_for(lambda r: len(of_kind(r, PeriodClosed)) == 1)
        await service.relayed()
        received = await tap.drain()

    [opened] = of_kind(received, PeriodOpened)
    overdue = of_kind(received, DeadlineOverdue)
    [closed] = of_kind(received, PeriodClosed)
    assert sorted(r.key for r in overdue) == sorted(UNITS)
    assert all(r.event.occurred_at == period.due_at for r in overdue)
    assert closed.key == period.id
    assert isinstance(closed.event, PeriodClosed)
    assert closed.event.payload.closed_at == period.closes_at
    assert {r.event.correlation_id for r in received} == {opened.event.correlation_id}
    assert not of_kind(received, DeadlineApproaching)  # the jump skipped every reminder
    assert len(received) == 1 + len(UNITS) + 1
