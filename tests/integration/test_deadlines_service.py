"""The deadlines service on the real Kafka and MongoDB-wire server: what reaches the topics."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

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
)
from contracts.topics import (
    DEADLINE_APPROACHING,
    DEADLINE_OVERDUE,
    PERIOD_CLOSED,
    PERIOD_OPENED,
    SUBMISSION_RECEIVED,
    Topic,
)
from services.common.auth import Role
from services.common.clock import FixedClock
from services.common.kafka import Names
from services.common.outbox import Outbox
from services.common.periods import Period, find_period
from services.common.reference import Catalog
from services.common.runtime import Runtime
from services.deadlines.app import build_app
from services.deadlines.config import DeadlinesSettings
from services.deadlines.store import MongoDeadlinesStore
from tests.conftest import Servers
from tests.support.auth import bearer
from tests.support.events import submission_received
from tests.support.plans import three_units_plan
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

OUTPUT_TOPICS = (PERIOD_OPENED, DEADLINE_APPROACHING, DEADLINE_OVERDUE, PERIOD_CLOSED)
DAY = dt.timedelta(days=1)

# Three reporting units and one report kind, due before 15 June (local time).
PLAN = three_units_plan()
UNITS = ("van-phong", "xa-a", "xa-b")


def the_period() -> Period:
    period = find_period(PLAN, f"{PLAN.id}.2027.6-thang")
    assert period is not None
    return period


def settings_for(servers: Servers, namespace: str) -> DeadlinesSettings:
    # A long interval: the loop scans once at start, the test triggers every later scan.
    return DeadlinesSettings(
        kafka_bootstrap=servers.kafka_bootstrap,
        mongo_uri=servers.mongo_uri,
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
        """Wait until every recorded event is acknowledged by Kafka (gone from the outbox)."""

        async def nothing_waiting() -> bool:
            return await self.outbox.waiting(1) == []

        await eventually(nothing_waiting, what="every recorded event relayed")

    @property
    def outbox(self) -> Outbox:
        runtime: Runtime = self.app.state.runtime
        return runtime.outbox


@asynccontextmanager
async def running(servers: Servers, namespace: str, clock: FixedClock) -> AsyncIterator[Running]:
    app = build_app(settings_for(servers, namespace), clock=clock, catalog=Catalog({PLAN.id: PLAN}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://deadlines",
            headers=bearer(Role.ADMIN),
        ) as http,
    ):
        yield Running(app, http)


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

    def __init__(self, servers: Servers, namespace: str) -> None:
        names = Names(namespace)
        self._topics = {names.topic(t): t for t in OUTPUT_TOPICS}
        self._consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=servers.kafka_bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self.received: list[Received] = []

    async def __aenter__(self) -> Tap:
        await self._consumer.start()
        try:
            # Without a group every partition is assigned once the metadata arrives.
            async def assigned() -> bool:
                await self._poll()
                return {tp.topic for tp in self._consumer.assignment()} == set(self._topics)

            await eventually(assigned, what="every output topic assigned")
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
        """Everything read so far, once ``done`` says it is enough (never for an empty list)."""

        async def probe() -> list[Received] | None:
            await self._poll()
            return self.received if done(self.received) else None

        return await eventually(probe, what="the expected events on the output topics")

    async def drain(self) -> list[Received]:
        """Everything on the topics now: read up to the end offsets, however long it takes."""
        assignment = self._consumer.assignment()
        ends = await self._consumer.end_offsets(list(assignment))

        async def caught_up() -> bool:
            await self._poll()
            return all([await self._consumer.position(tp) >= end for tp, end in ends.items()])

        await eventually(caught_up, what="the end of the output topics")
        return self.received


def of_kind(received: list[Received], kind: type[Event]) -> list[Received]:
    return [r for r in received if isinstance(r.event, kind)]


async def publish_submission(
    servers: Servers, namespace: str, period: Period, unit_id: str, at: dt.datetime
) -> None:
    event = submission_received(period, unit_id, at)
    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka_bootstrap, acks="all")
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


async def test_reminders_go_to_units_that_have_not_reported(
    servers: Servers, namespace: str
) -> None:
    period = the_period()
    clock = FixedClock(period.opens_at + DAY)
    async with running(servers, namespace, clock) as service, Tap(servers, namespace) as tap:
        await publish_submission(servers, namespace, period, "xa-a", clock.now())

        async def projected() -> bool:
            found = await service.store.submitted_units([period.id])
            return "xa-a" in found.get(period.id, set())

        await eventually(projected, what="xa-a's submission projected")
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


async def test_each_announcement_is_published_once_across_restarts(
    servers: Servers, namespace: str
) -> None:
    period = the_period()
    clock = FixedClock(period.due_at - DAY + dt.timedelta(minutes=5))
    expected = 1 + len(UNITS)  # opened + the 1-day reminder per unit (7 and 3 days are stale)

    async with running(servers, namespace, clock) as first, Tap(servers, namespace) as tap:
        await first.scan()
        await tap.wait_for(lambda r: len(r) >= expected)
        await first.relayed()

    for _ in range(2):  # a new process, same database and topics, same moment
        async with running(servers, namespace, clock) as again:
            assert await again.scan() == 0
            await again.relayed()

    async with Tap(servers, namespace) as tap:
        received = await tap.drain()

    by_key = Counter(r.logical_key for r in received)
    by_event_id = Counter(r.event.event_id for r in received)
    assert len(received) == expected, by_key
    assert set(by_key.values()) == {1}
    assert set(by_event_id.values()) == {1}
    assert {r.event.payload.days_before for r in of_kind(received, DeadlineApproaching)} == {1}


async def test_overdue_then_closed_as_the_clock_moves_on(servers: Servers, namespace: str) -> None:
    period = the_period()
    clock = FixedClock(period.opens_at + dt.timedelta(hours=1))
    async with running(servers, namespace, clock) as service, Tap(servers, namespace) as tap:
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
