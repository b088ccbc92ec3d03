"""P2: how fast one service's subscriber takes events in, against a raw aiokafka consumer.

baocao: consolidate's projection behind ``Consumption`` (FastStream, manual ack, dead letters)
storing the ``SubmissionReceived`` of each fetched batch idempotently in a fresh database, in
one ``insert_many`` per batch (one by one if that fails), as the service does.
Baseline: ``AIOKafkaConsumer.getmany`` over the same topic, each record parsed into the same
pydantic model, offsets committed per batch. Both are timed from the first record handled to
the N-th, so joining the consumer group is left out of both.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry

from bench.context import Run
from bench.events import send_all, submission_events
from bench.harness import Row, Spread, log, ratio_text
from bench.system import database_name
from contracts.events import SubmissionReceived
from contracts.topics import SUBMISSION_RECEIVED
from services.common.clock import SystemClock
from services.common.consumer import Consumption
from services.common.kafka import Names, build_broker, ensure_topics
from services.common.metrics import CommonMetrics
from services.common.mongo import DeadLetters, connect
from services.consolidate.store import MongoConsolidateStore

ID = "P2"
GOAL_SHARE = 0.60
MAX_SECONDS = 60.0


class Clock:
    """First and last handled record: the rate excludes group joining."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.done = asyncio.Event()

    def handled(self) -> None:
        now = time.perf_counter()
        if self.count == 0:
            self.first = now
        self.count += 1
        self.last = now
        if self.count >= self.expected:
            self.done.set()

    @property
    def rate(self) -> float:
        return (self.count - 1) / (self.last - self.first) if self.count > 1 else 0.0


async def run(run: Run) -> list[Row]:
    b = run.bounds
    namespace = run.sub_namespace("p2")
    names = Names(namespace)
    topic = names.topic(SUBMISSION_RECEIVED)
    await ensure_topics(run.servers.kafka, [topic], 3)
    producer = AIOKafkaProducer(bootstrap_servers=run.servers.kafka, acks="all")
    await producer.start()
    try:
        await send_all(producer, topic, submission_events(b.p2_events))
    finally:
        await producer.stop()
    log(f"P2: {b.p2_events} events on {topic}")

    client = connect(run.servers.mongo_uri)
    try:
        raw_rates, sub_rates, short = [], [], 0
        for rep in range(b.repetitions + 1):  # the first of each is the warm-up
            raw = await _raw(run.servers.kafka, topic, b.p2_events)
            sub = await _subscriber(run, client, names, f"{namespace}-r{rep}", b.p2_events)
            label = "warm-up" if rep == 0 else f"repetition {rep}"
            log(f"P2: {label}: raw {raw.rate:.0f}/s, subscriber {sub.rate:.0f}/s ({sub.count})")
            if rep:
                raw_rates.append(raw.rate)
                sub_rates.append(sub.rate)
                short += b.p2_events - sub.count
    finally:
        await client.close()

    sub_spread, raw_spread = Spread.of(sub_rates), Spread.of(raw_rates)
    share = Spread.paired(sub_rates, raw_rates)
    return [
        Row(
            ID,
            f"consolidate subscriber (manual ack, parse, idempotent store), {b.p2_events} events",
            sub_spread.text("ev/s", 0) + (f"; {short} not handled in time" if short else ""),
            f"{raw_spread.text('ev/s', 0)} raw getmany + pydantic",
            ratio_text(share),
            f"≥ {GOAL_SHARE:.0%} of raw",
            share.median >= GOAL_SHARE and short == 0,
            {"subscriber_rates": sub_rates, "raw_rates": raw_rates, "not_handled": short},
        )
    ]


async def _raw(bootstrap: str, topic: str, expected: int) -> Clock:
    clock = Clock(expected)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        deadline = time.perf_counter() + MAX_SECONDS
        while clock.count < expected and time.perf_counter() < deadline:
            batches = await consumer.getmany(timeout_ms=100, max_records=500)
            for records in batches.values():
                for record in records:
                    SubmissionReceived.model_validate_json(record.value)
                    clock.handled()
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()
    return clock


async def _subscriber(run: Run, client: object, names: Names, db_namespace: str, n: int) -> Clock:
    clock = Clock(n)
    db = client[database_name(db_namespace, "consolidate")]  # type: ignore[index]
    store = MongoConsolidateStore(db)
    await store.create_indexes()
    dead_letters = DeadLetters(db)
    await dead_letters.create_indexes()
    registry = CollectorRegistry()
    broker = build_broker(run.servers.kafka, service="consolidate", registry=registry)
    consumption = Consumption(
        "consolidate", names, dead_letters, CommonMetrics(registry, "consolidate"), SystemClock()
    )

    # As consolidate wires its projection: a fetched batch stored together, one by one if
    # that fails.
    async def project(event: SubmissionReceived) -> None:
        await store.add_submission(event.payload)
        clock.handled()

    async def project_batch(events: Sequence[SubmissionReceived]) -> None:
        await store.add_submissions([event.payload for event in events])
        for _ in events:
            clock.handled()

    consumption.subscribe(
        broker, SUBMISSION_RECEIVED, f"bench-{db_namespace}", project, together=project_batch
    )
    await broker.start()
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(clock.done.wait(), MAX_SECONDS)
    finally:
        await broker.stop()
        await client.drop_database(db.name)  # type: ignore[attr-defined]
    return clock
