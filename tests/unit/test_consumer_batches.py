"""``Consumption.handle_batch``: what is committed and where a partition is rewound, one by one
and with records handled concurrently (notify's subscriptions). No broker: records as aiokafka
hands them over, and a stand-in for the consumer's ``seek``/``commit``."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition
from prometheus_client import CollectorRegistry
from pymongo.errors import AutoReconnect

from contracts.envelope import Event
from contracts.topics import SUBMISSION_RECEIVED
from services.common.clock import FixedClock
from services.common.consumer import Consumption, RetryPolicy
from services.common.kafka import Names
from services.common.metrics import CommonMetrics
from services.common.periods import find_period
from tests.support.events import submission_received
from tests.support.fakes import MemoryDeadLetters
from tests.support.plans import make_plan, task, unit

pytestmark = pytest.mark.unit

UNITS = [f"xa-{n:02d}" for n in range(12)]
PLAN = make_plan(
    plan_id="kh-lo",
    consolidating_unit_id="xa-00",
    units=[unit(u, f"UBND xã {u}", "commune") for u in UNITS],
    tasks=[task("nv-1", "I", "Nhiệm vụ", UNITS)],
)
PERIOD = find_period(PLAN, "kh-lo.2027.6-thang")
assert PERIOD is not None
AT = dt.datetime(2027, 6, 1, 3, 0, tzinfo=dt.UTC)
TOPIC = f"unit.{SUBMISSION_RECEIVED.name}"


def records() -> list[ConsumerRecord[bytes, bytes]]:
    """One record per unit, on two partitions (even units on 0, odd on 1)."""
    assert PERIOD is not None
    found = []
    for n, unit_id in enumerate(UNITS):
        value = submission_received(PERIOD, unit_id, AT).model_dump_json().encode()
        found.append(
            ConsumerRecord(
                topic=TOPIC,
                partition=n % 2,
                offset=100 + n // 2,
                timestamp=0,
                timestamp_type=0,
                key=unit_id.encode(),
                value=value,
                checksum=None,
                serialized_key_size=len(unit_id),
                serialized_value_size=len(value),
                headers=[("event_type", b"submission.received")],
            )
        )
    return found


class KafkaConsumer:
    """What handle_batch asks of aiokafka's consumer: seek and commit, recorded."""

    def __init__(self) -> None:
        self.seeks: dict[TopicPartition, int] = {}
        self.commits: list[dict[TopicPartition, int]] = []
        self.acks = 0

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks[partition] = offset

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))

    async def ack(self) -> None:
        self.acks += 1


class Handler:
    """Counts the events in progress at once; the units in ``away`` find MongoDB away."""

    def __init__(self, away: frozenset[str] = frozenset()) -> None:
        self.away = away
        self.in_progress = self.peak = 0
        self.handled: list[str] = []

    async def __call__(self, event: Event) -> None:
        unit_id = event.payload.unit_id  # type: ignore[attr-defined]
        self.in_progress += 1
        self.peak = max(self.peak, self.in_progress)
        try:
            for _ in range(3):
                await asyncio.sleep(0)
            if unit_id in self.away:
                raise AutoReconnect("connection refused")
            self.handled.append(unit_id)
        finally:
            self.in_progress -= 1


def consumption() -> Consumption:
    return Consumption(
        "unit",
        Names("unit"),
        MemoryDeadLetters(),
        CommonMetrics(CollectorRegistry(), "unit"),
        FixedClock(AT),
        # no time for in-place retries: infrastructure away hands the record back at once
        RetryPolicy(max_attempts=3, first_delay=0.001, max_delay=0.002, transient_budget=0.0),
    )


async def handle(handler: Handler, kafka: KafkaConsumer, concurrency: int) -> None:
    await consumption().handle_batch(
        SUBMISSION_RECEIVED,
        "notify-like",
        handler,
        records(),
        kafka,
        kafka.ack,
        concurrency=concurrency,
    )


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_a_batch_is_handled_with_its_bound_and_acknowledged_once(concurrency: int) -> None:
    handler, kafka = Handler(), KafkaConsumer()

    await handle(handler, kafka, concurrency)

    assert handler.peak == concurrency
    assert sorted(handler.handled) == UNITS
    assert kafka.acks == 1 and kafka.seeks == {}


async def test_concurrently_a_record_to_deliver_again_rewinds_to_it_and_commits_before() -> None:
    # xa-05 is the sixth record: partition 1, offset 102
    handler, kafka = Handler(away=frozenset({"xa-05"})), KafkaConsumer()

    await handle(handler, kafka, 4)

    assert kafka.acks == 0  # nothing past the record is committed
    assert kafka.seeks == {TopicPartition(TOPIC, 1): 102, TopicPartition(TOPIC, 0): 103}
    # the records before it (xa-00..xa-04) are committed: partition 0 up to 102, 1 up to 101
    assert kafka.commits == [{TopicPartition(TOPIC, 0): 103, TopicPartition(TOPIC, 1): 102}]
    # and the records after it were handled all the same (delivered again: no-ops for notify)
    assert "xa-05" not in handler.handled and len(handler.handled) == len(UNITS) - 1


async def test_one_by_one_a_record_to_deliver_again_stops_the_batch_there() -> None:
    handler, kafka = Handler(away=frozenset({"xa-05"})), KafkaConsumer()

    await handle(handler, kafka, 1)

    assert handler.handled == UNITS[:5]
    assert kafka.acks == 0
    assert kafka.seeks == {TopicPartition(TOPIC, 1): 102, TopicPartition(TOPIC, 0): 103}


class Together:
    """A batch handler: records each call's units; fails while ``failing``."""

    def __init__(self, failing: Exception | None = None) -> None:
        self.failing = failing
        self.calls: list[list[str]] = []

    async def __call__(self, events: Sequence[Event]) -> None:
        self.calls.append([e.payload.unit_id for e in events])  # type: ignore[attr-defined]
        if self.failing is not None:
            raise self.failing


async def handle_together(
    handler: Handler, together: Together, kafka: KafkaConsumer, batch: list[Any]
) -> Consumption:
    c = consumption()
    await c.handle_batch(
        SUBMISSION_RECEIVED, "projection-like", handler, batch, kafka, kafka.ack, together=together
    )
    return c


async def test_together_takes_the_whole_batch_in_one_call_and_it_is_acknowledged_once() -> None:
    handler, together, kafka = Handler(), Together(), KafkaConsumer()

    await handle_together(handler, together, kafka, records())

    assert together.calls == [UNITS]
    assert handler.handled == []
    assert kafka.acks == 1 and kafka.seeks == {} and kafka.commits == []


async def test_a_batch_that_fails_together_is_handled_one_by_one_with_its_rewind() -> None:
    handler = Handler(away=frozenset({"xa-05"}))
    together, kafka = Together(failing=AutoReconnect("connection refused")), KafkaConsumer()

    await handle_together(handler, together, kafka, records())

    assert together.calls == [UNITS]
    # exactly as without ``together``: up to the record MongoDB was away for, then rewound
    assert handler.handled == UNITS[:5]
    assert kafka.acks == 0
    assert kafka.seeks == {TopicPartition(TOPIC, 1): 102, TopicPartition(TOPIC, 0): 103}


async def test_a_record_that_is_no_event_is_dead_lettered_on_its_own_and_the_rest_handled() -> None:
    batch = records()
    batch[3] = dataclasses.replace(batch[3], value=b'{"not": "an event"}')
    handler, together, kafka = Handler(), Together(), KafkaConsumer()

    c = await handle_together(handler, together, kafka, batch)

    assert together.calls == []  # never handed a batch it cannot take whole
    assert handler.handled == UNITS[:3] + UNITS[4:]
    dead = c.dead_letters
    assert isinstance(dead, MemoryDeadLetters)
    letters = [(d["partition"], d["offset"], d["reason"]) for d in dead.letters.values()]
    assert letters == [(1, 101, "invalid_message")]
    assert kafka.acks == 1
