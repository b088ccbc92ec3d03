"""Consuming an event so that nothing acknowledged is ever lost.

FastStream's Kafka default (ACK_FIRST) commits before the handler runs: at-most-once. We use
MANUAL acknowledgement and commit only after the handler succeeded or the message was set
aside as a dead letter. Infrastructure failures (MongoDB, Kafka, network) are retried in place
with capped backoff for as long as they last: returning to the poll loop would let a later
message commit past this one (faststream#2618). A message that fails for any other reason is
retried ``max_attempts`` times, then dead-lettered with its raw bytes and acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure

from contracts.envelope import Event
from contracts.topics import Topic
from services.common.clock import Clock
from services.common.kafka import Names
from services.common.metrics import CommonMetrics
from services.common.mongo import DeadLetters

log = logging.getLogger(__name__)

Handler = Callable[[Any], Awaitable[None]]


class TransientError(Exception):
    """A dependency is unavailable; the same message will succeed later. Retried without limit."""


class PermanentError(Exception):
    """The message can never be processed; it goes to the dead letters at once."""


TRANSIENT = (TransientError, ConnectionFailure, KafkaError, OSError, TimeoutError)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    first_delay: float = 0.2
    max_delay: float = 30.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.first_delay * 2 ** (attempt - 1)))


@dataclass
class Consumption:
    """Everything a subscription needs besides its handler."""

    service: str
    names: Names
    dead_letters: DeadLetters
    metrics: CommonMetrics
    clock: Clock
    policy: RetryPolicy = RetryPolicy()

    def subscribe(self, broker: KafkaBroker, topic: Topic, consumer: str, handler: Handler) -> None:
        """Register ``handler(event)`` for ``topic`` in its own consumer group."""

        @broker.subscriber(
            self.names.topic(topic),
            group_id=self.names.group(self.service, consumer),
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            title=f"{self.service}.{consumer}",
        )
        async def on_message(message: KafkaMessage) -> None:
            await self.process(topic, consumer, handler, message.raw_message, message.body)
            await message.ack()

    async def process(
        self, topic: Topic, consumer: str, handler: Handler, record: Any, body: bytes
    ) -> None:
        """Handle one record until it succeeded or is safely dead-lettered."""
        try:
            event: Event = topic.event.model_validate_json(body)
        except ValidationError as error:
            await self._dead_letter(consumer, record, body, "invalid_message", error, 1)
            return
        attempt = 0
        while True:
            attempt += 1
            try:
                await handler(event)
                return
            except PermanentError as error:
                await self._dead_letter(consumer, record, body, "rejected", error, attempt)
                return
            except TRANSIENT as error:
                self._retrying(consumer, str(event.event_id), attempt, error)
            except Exception as error:
                if attempt >= self.policy.max_attempts:
                    log.exception(
                        "%s: giving up on %s after %d attempts", consumer, event.event_id, attempt
                    )
                    await self._dead_letter(
                        consumer, record, body, "handler_failed", error, attempt
                    )
                    return
                self._retrying(consumer, str(event.event_id), attempt, error)
            await asyncio.sleep(self.policy.delay(attempt))

    def _retrying(self, consumer: str, what: str, attempt: int, error: Exception) -> None:
        self.metrics.retried(consumer)
        log.warning(
            "%s: attempt %d for %s failed: %s: %s",
            consumer,
            attempt,
            what,
            type(error).__name__,
            error,
        )

    async def _dead_letter(
        self, consumer: str, record: Any, body: bytes, reason: str, error: Exception, attempts: int
    ) -> None:
        attempt = 0
        while True:  # the dead-letter store is MongoDB: wait for it rather than drop
            attempt += 1
            try:
                await self.dead_letters.put(
                    consumer=consumer,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key,
                    value=body,
                    reason=reason,
                    error=f"{type(error).__name__}: {error}",
                    attempts=attempts,
                    at=self.clock.now(),
                )
                break
            except TRANSIENT as store_error:
                self._retrying(consumer, "its dead letter", attempt, store_error)
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
