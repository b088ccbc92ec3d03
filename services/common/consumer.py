"""Consuming an event so that nothing acknowledged is ever lost and nothing is skipped.

FastStream's Kafka default (ACK_FIRST) commits before the handler runs: at-most-once. We use
MANUAL acknowledgement and commit only after the handler succeeded or the record was stored
as a dead letter. Every record reaches :meth:`Consumption.process` as raw bytes: FastStream's
own decoding (JSON by content type, strict UTF-8 headers) raises before any handler runs, and
the next ack would then commit past a record nobody looked at (faststream#2618).

- A record that can never be an event (bad headers, too large, not the contract) is
  dead-lettered at once.
- Unavailable infrastructure is retried in place for at most ``transient_budget`` seconds,
  well inside Kafka's poll interval; then the partition is rewound to the record (nack) and
  the poll loop delivers it again, so the consumer never leaves its group over an outage.
- Any other failure is retried ``max_attempts`` times, then dead-lettered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from aiokafka.structs import TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from pydantic import ValidationError

from contracts.envelope import Event
from contracts.topics import Topic
from services.common.clock import Clock
from services.common.failures import PermanentError, TransientError, is_transient
from services.common.kafka import Names
from services.common.lag import partition_lag
from services.common.metrics import CommonMetrics
from services.common.mongo import DeadLetters

log = logging.getLogger(__name__)

Handler = Callable[[Any], Awaitable[None]]
BatchHandler = Callable[[Sequence[Any]], Awaitable[None]]
"""Handles a fetched batch's events at once (one store round trip for all of them)."""

BATCH_RECORDS, BATCH_WAIT_MS = 100, 1000
"""A batch is what one fetch returns, up to 100 records; an idle consumer waits 1 s per poll
(records that arrive meanwhile are returned at once, so this adds no latency, only fewer
wake-ups while idle)."""

FETCH_WAIT_MS, FETCHER_WAKE_MS = 2000, 1000
"""How long the broker may hold a fetch that finds nothing, and how often aiokafka's fetcher
wakes up with nothing to do (its defaults: 500 and 200 ms). The broker answers a fetch as soon
as a record arrives and the fetcher wakes on every answer, so neither delays a record. An idle
notify (eight consumers), in % of a core: 2.9-3.1 with the defaults, 2.2 with the wake-up at
1 s, 1.1 with the fetch held 2 s too, the same with 5 s. Not longer, because the consumer's
other requests to the broker (the offsets the lag gauges read) queue behind a held fetch on the
same connection, and a partition rewound after an outage (see :class:`Outcome`) waits for the
fetch in flight before it is read again."""

MAX_EVENT_BYTES = 1024 * 1024 - 16 * 1024
"""The largest event value our producers send: aiokafka's max_request_size (1 MiB) less room
for the key, headers and batch framing. Intake refuses a report whose event would be larger,
and a consumer dead-letters a larger record: it cannot be one of ours."""

OBSERVE_SECONDS = 5.0
"""How often lag and waiting dead letters are measured: fresher than a scrape interval (15 s),
and no Kafka or MongoDB round trip inside a scrape."""

__all__ = ["Consumption", "Outcome", "PermanentError", "RetryPolicy", "TransientError"]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    first_delay: float = 0.2
    max_delay: float = 10.0
    transient_budget: float = 60.0
    """Seconds of in-place retries before the record is handed back to the poll loop."""

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.first_delay * 2 ** (attempt - 1)))


class Outcome(Enum):
    HANDLED = "handled"
    DEAD_LETTERED = "dead_lettered"
    AGAIN = "again"
    """Infrastructure still away: rewind the partition so the poll loop delivers it again."""


class Rejected(Exception):
    """The record is not an event this consumer can ever handle."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass
class Consumption:
    """Everything a subscription needs besides its handler."""

    service: str
    names: Names
    dead_letters: DeadLetters
    metrics: CommonMetrics
    clock: Clock
    policy: RetryPolicy = RetryPolicy()

    watched: list[tuple[Topic, Any]] = dataclasses.field(default_factory=list)
    """The subscriptions, for :meth:`observe` (FastStream subscriber objects)."""

    def subscribe(
        self,
        broker: KafkaBroker,
        topic: Topic,
        consumer: str,
        handler: Handler,
        *,
        concurrency: int = 1,
        together: BatchHandler | None = None,
    ) -> None:
        """Register ``handler(event)`` for ``topic`` in its own consumer group.

        ``concurrency`` > 1 handles up to that many records of a batch at once: only for a
        handler whose effects are idempotent and need no order between events (see
        :meth:`handle_batch`). ``together(events)`` does what ``handler`` does for a whole
        batch at once; ``handler`` still takes any batch it fails."""
        self.metrics.consuming(consumer)
        subscriber = broker.subscriber(
            self.names.topic(topic),
            group_id=self.names.group(self.service, consumer),
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            title=f"{self.service}.{consumer}",
            # Records come in batches and are handled one by one, in order; the offsets are
            # committed once per batch instead of once per record (one Kafka round trip).
            batch=True,
            max_records=BATCH_RECORDS,
            batch_timeout_ms=BATCH_WAIT_MS,
            fetch_max_wait_ms=FETCH_WAIT_MS,
            consumer_timeout_ms=FETCHER_WAKE_MS,
            parser=_lenient_parser,
            decoder=_raw_body,
        )
        self.watched.append((topic, subscriber))

        @subscriber
        async def on_batch(message: KafkaMessage) -> None:
            await self.handle_batch(
                topic,
                consumer,
                handler,
                message.raw_message,
                message.consumer,
                message.ack,
                concurrency=concurrency,
                together=together,
            )

    async def handle_batch(
        self,
        topic: Topic,
        consumer: str,
        handler: Handler,
        records: Any,
        kafka: Any,
        ack: Callable[[], Awaitable[None]],
        *,
        concurrency: int = 1,
        together: BatchHandler | None = None,
    ) -> None:
        """Handle one fetched batch, then commit it (``ack``); if a record must be delivered
        again, commit what precedes it and rewind ``kafka`` (the aiokafka consumer) to it.

        One by one and in order by default. With ``concurrency`` > 1, up to that many records
        at once, committed only when all have ended; a record to deliver again rewinds to it,
        so records after it that were handled meanwhile are delivered again, which an
        idempotent handler turns into nothing.

        With ``together``, a batch whose records all parse is handled in one call first; if
        that call fails, whatever it did is done again one record at a time as above
        (idempotent handlers turn it into nothing), so retries, rewinds and dead letters work
        per record exactly as without it."""
        if together is not None and await self._together(topic, consumer, together, records):
            await ack()
            return
        if concurrency > 1:
            slots = asyncio.Semaphore(concurrency)

            async def one(record: Any) -> Outcome:
                async with slots:
                    return await self.process(topic, consumer, handler, record)

            outcomes = await asyncio.gather(*(one(r) for r in records))
            again = [n for n, outcome in enumerate(outcomes) if outcome is Outcome.AGAIN]
            if again:
                await _commit_and_rewind(kafka, records[: again[0]], records[again[0] :])
                return
            await ack()
            return
        for n, record in enumerate(records):

            async def keep_progress(n: int = n) -> None:
                # A record that needs retries may take a while (or the process may stop
                # meanwhile): what was handled before it is committed first.
                await _commit_and_rewind(kafka, records[:n], ())

            outcome = await self.process(topic, consumer, handler, record, keep_progress)
            if outcome is Outcome.AGAIN:
                await _commit_and_rewind(kafka, records[:n], records[n:])
                return
        await ack()

    async def _together(
        self, topic: Topic, consumer: str, together: BatchHandler, records: Any
    ) -> bool:
        """Whether ``together`` handled every record of the batch."""
        try:
            events = [parse(topic, record) for record in records]
        except Rejected:
            return False  # one by one: the rejected record is dead-lettered on its own
        try:
            await together(events)
        except Exception as error:
            log.info(
                "%s: a batch of %d failed together (%s: %s); one by one now",
                consumer,
                len(events),
                type(error).__name__,
                error,
            )
            return False
        return True

    async def observe(self, interval: float = OBSERVE_SECONDS) -> None:
        """Until cancelled: measure what operators watch (see :mod:`services.common.lag`)."""
        while True:
            try:
                async with asyncio.timeout(interval * 2):
                    await self.measure()
            except Exception as error:  # Kafka or MongoDB away: the gauges keep their values
                log.warning("consumer gauges: %s: %s", type(error).__name__, error)
            await asyncio.sleep(interval)

    async def measure(self) -> None:
        """The dead letters nobody has handled yet, and each subscription's lag."""
        # Dead letters first: they come from the database, and a slow lag must not hold them.
        self.metrics.dead_letters_waiting(await self.dead_letters.waiting())
        # Every consumer at once: the broker answers a consumer's offset request only after
        # the empty fetch it holds on the same connection (up to FETCH_WAIT_MS), so one after
        # another eight consumers outlasted observe's timeout and no gauge was ever set.
        watched = [(t, s.consumer) for t, s in self.watched if s.consumer is not None]
        lags = await asyncio.gather(*(partition_lag(consumer) for _, consumer in watched))
        for (topic, _), lag in zip(watched, lags, strict=True):
            self.metrics.consumer_lag(topic.name, lag)

    async def process(
        self,
        topic: Topic,
        consumer: str,
        handler: Handler,
        record: Any,
        before_retrying: Callable[[], Awaitable[None]] | None = None,
    ) -> Outcome:
        """Handle one record: handled, dead-lettered, or to be delivered again later."""
        try:
            event = parse(topic, record)
        except Rejected as error:
            await self.dead_letter(consumer, record, error.reason, error, 1)
            return Outcome.DEAD_LETTERED
        loop = asyncio.get_running_loop()
        give_back_at = loop.time() + self.policy.transient_budget
        attempt = failures = 0
        while True:
            attempt += 1
            try:
                await handler(event)
                return Outcome.HANDLED
            except PermanentError as error:
                await self.dead_letter(consumer, record, "rejected", error, attempt)
                return Outcome.DEAD_LETTERED
            except Exception as error:
                if is_transient(error):
                    if loop.time() >= give_back_at:
                        self._retrying(consumer, event, attempt, error, "handed back to Kafka")
                        return Outcome.AGAIN
                else:
                    failures += 1
                    if failures >= self.policy.max_attempts:
                        log.exception("%s: giving up on %s", consumer, event.event_id)
                        await self.dead_letter(consumer, record, "handler_failed", error, attempt)
                        return Outcome.DEAD_LETTERED
                self._retrying(consumer, event, attempt, error, "retrying")
            if attempt == 1 and before_retrying is not None:
                await before_retrying()
            await asyncio.sleep(self.policy.delay(attempt))

    def _retrying(
        self, consumer: str, event: Event, attempt: int, error: Exception, what: str
    ) -> None:
        self.metrics.retried(consumer)
        log.warning(
            "%s: attempt %d for %s failed (%s): %s: %s",
            consumer,
            attempt,
            event.event_id,
            what,
            type(error).__name__,
            error,
        )

    async def dead_letter(
        self, consumer: str, record: Any, reason: str, error: Exception, attempts: int
    ) -> None:
        """Store the record as a dead letter, waiting as long as it takes: never drop it."""
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.dead_letters.put(
                    consumer=consumer,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key,
                    value=record.value or b"",
                    headers=list(record.headers or ()),
                    reason=reason,
                    error=f"{type(error).__name__}: {error}",
                    attempts=attempts,
                    at=self.clock.now(),
                )
                break
            except Exception as store_error:
                self.metrics.dead_letter_write_retries.inc()
                log.error(
                    "%s: cannot store dead letter %s[%s]@%s yet (attempt %d): %s: %s",
                    consumer,
                    record.topic,
                    record.partition,
                    record.offset,
                    attempt,
                    type(store_error).__name__,
                    store_error,
                )
                await asyncio.sleep(self.policy.delay(attempt))
        self.metrics.dead_lettered(consumer)
        log.error(
            "%s: dead-lettered %s[%s]@%s (%s): %s",
            consumer,
            record.topic,
            record.partition,
            record.offset,
            reason,
            error,
        )


async def _commit_and_rewind(consumer: Any, handled: Any, rest: Any) -> None:
    """Commit what was handled and rewind each partition to its first record not handled,
    so that the poll loop delivers it again and no commit ever passes it."""
    done: dict[TopicPartition, int] = {}
    for record in handled:
        done[TopicPartition(record.topic, record.partition)] = record.offset + 1
    again: dict[TopicPartition, int] = {}
    for record in rest:
        again.setdefault(TopicPartition(record.topic, record.partition), record.offset)
    for partition, offset in again.items():
        consumer.seek(partition, offset)
    commit = {tp: offset for tp, offset in done.items() if tp not in again}
    commit.update({tp: done[tp] for tp in again if tp in done})
    if commit:
        await consumer.commit(commit)


def parse(topic: Topic, record: Any) -> Event:
    """The event a raw record carries, or :class:`Rejected` saying why it is none."""
    for name, value in record.headers or ():
        if value is None:  # Kafka allows a header without a value
            continue
        try:
            value.decode("utf-8")
        except (UnicodeDecodeError, AttributeError):
            raise Rejected("invalid_headers", f"header {name!r} is not UTF-8 text") from None
    body = record.value or b""
    if len(body) > MAX_EVENT_BYTES:
        raise Rejected("too_large", f"{len(body)} bytes, more than {MAX_EVENT_BYTES}")
    try:
        event: Event = topic.event.model_validate_json(body)
    except ValidationError as error:
        raise Rejected("invalid_message", str(error)[:2000]) from error
    return event


async def _lenient_parser(
    record: Any, original: Callable[[Any], Awaitable[StreamMessage[Any]]]
) -> StreamMessage[Any]:
    """FastStream's parser, minus its strict header decoding (judged later, in ``parse``)."""
    try:
        return await original(record)
    except (UnicodeDecodeError, AttributeError):  # not UTF-8, or no value at all
        batch = record if isinstance(record, tuple) else (record,)
        clean = tuple(
            dataclasses.replace(r, headers=[(k, _utf8_or_empty(v)) for k, v in r.headers])
            for r in batch
        )
        message = await original(clean if isinstance(record, tuple) else clean[0])
        message.raw_message = record
        return message


def _utf8_or_empty(value: bytes | None) -> bytes:
    if value is None:
        return b""
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return b""
    return value


async def _raw_body(message: StreamMessage[Any], _: Callable[..., Any]) -> Any:
    """No decoding by content type: a non-JSON body under a JSON header is ours to judge."""
    return message.body
