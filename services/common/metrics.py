"""Metrics every service exposes, on the service's own registry (never the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class CommonMetrics:
    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        self.ready = Gauge(
            "baocao_ready", "1 when Kafka and MongoDB answer", ["service"], registry=registry
        ).labels(service)
        self._dead_letters = Counter(
            "baocao_dead_letters",
            "messages set aside after failing for good",
            ["service", "consumer"],
            registry=registry,
        )
        self._retries = Counter(
            "baocao_handler_retries",
            "handler attempts that failed and will be retried",
            ["service", "consumer"],
            registry=registry,
        )
        self._published = Counter(
            "baocao_events_published",
            "events handed to Kafka and acknowledged by it",
            ["service", "topic"],
            registry=registry,
        )
        self.outbox_pending = Gauge(
            "baocao_outbox_pending",
            "events stored but not yet acknowledged by Kafka",
            ["service"],
            registry=registry,
        ).labels(service)
        self._parked = Counter(
            "baocao_outbox_parked",
            "events set aside because Kafka will never accept them (see /api/v1/outbox/parked)",
            ["service", "topic"],
            registry=registry,
        )
        self._relayed = Counter(
            "baocao_outbox_relayed",
            "outbox entries published and removed: progress of the relay",
            ["service"],
            registry=registry,
        ).labels(service)
        self.dead_letter_write_retries = Counter(
            "baocao_dead_letter_write_retries",
            "failed attempts to store a dead letter (retried until stored: nothing is dropped)",
            ["service"],
            registry=registry,
        ).labels(service)
        self.outbox_oldest_pending_seconds = Gauge(
            "baocao_outbox_oldest_pending_seconds",
            "age of the oldest event waiting to be relayed",
            ["service"],
            registry=registry,
        ).labels(service)

    def dead_lettered(self, consumer: str) -> None:
        self._dead_letters.labels(self.service, consumer).inc()

    def retried(self, consumer: str) -> None:
        self._retries.labels(self.service, consumer).inc()

    def published(self, topic: str) -> None:
        self._published.labels(self.service, topic).inc()

    def parked(self, topic: str) -> None:
        self._parked.labels(self.service, topic).inc()

    def relayed(self) -> None:
        self._relayed.inc()
