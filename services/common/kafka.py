"""Kafka wiring: a reliable producer, namespaced topic and group names, topic creation."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry

from contracts.topics import Topic
from services.common.metrics import CommonMetrics

BROKER_GRACEFUL_TIMEOUT = 3.0
"""Seconds broker.stop() waits for in-flight handlers; part of the stop budget in runner.py."""


class Names:
    """Topic and consumer-group names under the deployment's namespace."""

    def __init__(self, namespace: str) -> None:
        self._prefix = f"{namespace}." if namespace else ""

    def topic(self, topic: Topic | str) -> str:
        return self._prefix + (topic if isinstance(topic, str) else topic.name)

    def group(self, service: str, consumer: str) -> str:
        return f"{self._prefix}baocao.{service}.{consumer}"


def build_broker(bootstrap: str, *, service: str, registry: CollectorRegistry) -> KafkaBroker:
    return KafkaBroker(
        bootstrap,
        client_id=f"baocao-{service}",
        # Without these a leader change can lose or duplicate an acknowledged write.
        acks="all",
        enable_idempotence=True,
        # An idempotent producer has one request in flight per broker: records enqueued while
        # it is out travel together in the next, so batches may be large (16 KiB by default,
        # about ten reports, capped the relay at a few hundred events/s).
        max_batch_size=512 * 1024,
        # Per-message lines at DEBUG: visible when asked for, silent by default.
        logger=logging.getLogger(f"baocao.{service}.kafka"),
        log_level=logging.DEBUG,
        # A handler cut short at shutdown is not acknowledged (manual acks), so waiting long
        # for it buys nothing; 3 s keeps the whole stop inside the budget (see runner.py).
        graceful_timeout=BROKER_GRACEFUL_TIMEOUT,
        middlewares=[KafkaPrometheusMiddleware(registry=registry, app_name=f"baocao-{service}")],
    )


class KafkaPublisher:
    """Hands stored outbox entries to Kafka and counts what it acknowledged (every event leaves
    through the outbox: there is no direct publish)."""

    def __init__(self, broker: KafkaBroker, names: Names, metrics: CommonMetrics) -> None:
        self._broker = broker
        self._names = names
        self._metrics = metrics

    async def enqueue_raw(
        self, topic: str, key: str, value: bytes, headers: dict[str, str]
    ) -> Awaitable[None]:
        """Hand a record to the producer; the result resolves once Kafka acknowledged it.

        Records enqueued one after another keep their order per partition (one producer,
        idempotent), so a caller can enqueue a batch and await the acknowledgements together.
        Raises at once for a record the producer refuses to send (e.g. too large).
        """
        delivery = await self._broker.publish(
            value,
            topic=self._names.topic(topic),
            key=key.encode(),
            headers={**headers, "content-type": "application/json"},
            no_confirm=True,
        )

        async def acknowledged() -> None:
            await delivery
            self._metrics.published(topic)

        return acknowledged()


async def ensure_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """Create missing topics with our partition count instead of the broker's default."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, partitions, 1) for n in names if n not in existing]
        if missing:
            # Another service may create one between our list and create: that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    finally:
        await admin.close()
