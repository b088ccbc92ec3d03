"""P3: how fast the outbox relay empties a backlog, against a raw producer sending the same.

baocao: N events stored with ``Outbox.put`` (not timed), then ``OutboxRelay.relay_once`` until
all are published through the service's broker (acks=all, idempotence) and marked.
Baseline: a raw aiokafka producer with acks=1 queues the same N records and awaits them all,
the library's own batching: the ceiling a relay could approach on this machine. The same
producer sending one record at a time is kept in the figures: the ceiling of a relay that
awaits each record.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from bench.context import Run
from bench.events import send_all, submission_events
from bench.harness import Row, Spread, log, ratio_text
from bench.system import database_name
from contracts.topics import SUBMISSION_RECEIVED
from services.common import outbox as outbox_module
from services.common.clock import SystemClock
from services.common.kafka import KafkaPublisher, Names, build_broker, ensure_topics
from services.common.metrics import CommonMetrics
from services.common.mongo import connect

ID = "P3"
GOAL_SHARE = 0.60
MAX_SECONDS = 60.0
"""A relay slower than N / 60 events/s is reported with what it managed."""


async def run(run: Run) -> list[Row]:
    b = run.bounds
    namespace = run.sub_namespace("p3")
    names = Names(namespace)
    topic = names.topic(SUBMISSION_RECEIVED)
    await ensure_topics(run.servers.kafka, [topic], 3)
    events = submission_events(b.p3_events)
    client = connect(run.servers.mongo_uri)
    producer = AIOKafkaProducer(bootstrap_servers=run.servers.kafka, acks=1)
    await producer.start()
    registry = CollectorRegistry()
    broker = build_broker(run.servers.kafka, service="submissions", registry=registry)
    await broker.start()
    metrics = CommonMetrics(registry, "submissions")
    publisher = KafkaPublisher(broker, names, metrics)
    clock = SystemClock()
    try:

        async def raw(batch: list[Any]) -> float:
            began = time.perf_counter()
            await send_all(producer, topic, batch)
            return len(batch) / (time.perf_counter() - began)

        async def raw_one_by_one(batch: list[Any]) -> float:
            # What a relay that awaits each record could reach at best: Kafka's round trip.
            began = time.perf_counter()
            for event in batch:
                await send_all(producer, topic, [event])
            return len(batch) / (time.perf_counter() - began)

        async def relay(batch: list[Any], label: str) -> tuple[float, int]:
            db = client[database_name(f"{namespace}-{label}", "submissions")]
            outbox = _outbox(db, clock)
            if hasattr(outbox, "create_indexes"):
                await outbox.create_indexes()
            stored = time.perf_counter()
            for event in batch:
                await outbox.put(event)
            log(f"P3: {len(batch)} entries stored in {time.perf_counter() - stored:.1f} s")
            relay = outbox_module.OutboxRelay(outbox, publisher.enqueue_raw, clock, metrics)
            sent, began = 0, time.perf_counter()
            while sent < len(batch) and time.perf_counter() - began < MAX_SECONDS:
                done = await relay.relay_once()
                if done == 0:
                    break
                sent += done
            elapsed = time.perf_counter() - began
            await client.drop_database(db.name)
            return sent / elapsed, sent

        log("P3: warming up")
        warm = events[: min(100, len(events))]
        await raw(warm)
        await relay(warm, "warm")

        raw_rates, relay_rates, one_by_one, short = [], [], [], 0
        for rep in range(b.repetitions):
            raw_rates.append(await raw(events))
            one_by_one.append(await raw_one_by_one(events))
            rate, sent = await relay(events, f"r{rep}")
            relay_rates.append(rate)
            short += len(events) - sent
            log(
                f"P3: repetition {rep + 1}: raw {raw_rates[-1]:.0f}/s, raw one by one "
                f"{one_by_one[-1]:.0f}/s, relay {rate:.0f}/s"
            )
    finally:
        await broker.stop()
        await producer.stop()
        await client.close()

    relay_spread, raw_spread = Spread.of(relay_rates), Spread.of(raw_rates)
    share = Spread.paired(relay_rates, raw_rates)
    return [
        Row(
            ID,
            f"outbox relay, {b.p3_events} stored events → Kafka (acks=all, idempotent)",
            relay_spread.text("ev/s", 0) + (f"; {short} not sent in time" if short else ""),
            f"{raw_spread.text('ev/s', 0)} raw aiokafka acks=1",
            ratio_text(share),
            f"≥ {GOAL_SHARE:.0%} of raw",
            share.median >= GOAL_SHARE and short == 0,
            {
                "relay_rates": relay_rates,
                "raw_rates": raw_rates,
                "raw_one_by_one_rates": one_by_one,
                "not_sent": short,
            },
        )
    ]


def _outbox(db: Any, clock: SystemClock) -> Any:
    """``Outbox(db)`` as promised, or ``Outbox(db, clock)`` as the redesign has it today."""
    cls = outbox_module.Outbox
    takes_clock = "clock" in inspect.signature(cls).parameters
    return cls(db, clock) if takes_clock else cls(db)
