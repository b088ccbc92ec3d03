"""Metrics every service exposes, on the service's own registry (never the global one)."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.metrics import latency, requests

HTTP_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds; up to 10 s because a report stored on FerretDB under load can take seconds."""


def instrument_http(app: FastAPI, registry: CollectorRegistry) -> None:
    """RED metrics of every route (rate, errors, duration) on the service's registry:
    ``http_requests_total{handler, method, status}`` and
    ``http_request_duration_seconds{handler, method}``. ``handler`` is the route's template
    (a path that matches no route counts as ``none``), so labels stay bounded. Prometheus's own
    scrapes of /metrics are left out."""
    Instrumentator(
        should_group_status_codes=False,
        excluded_handlers=["^/metrics$"],
        registry=registry,
    ).add(requests(registry=registry)).add(
        latency(should_include_status=False, buckets=HTTP_LATENCY_BUCKETS, registry=registry)
    ).instrument(app)


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
        self.outbox_parked_entries = Gauge(
            "baocao_outbox_parked_entries",
            "events set aside and not replayed yet (an operator has to look at them)",
            ["service"],
            registry=registry,
        ).labels(service)
        self._dead_letters_waiting = Gauge(
            "baocao_dead_letters_waiting",
            "dead letters neither replayed nor discarded (an operator has to look at them)",
            ["service", "consumer"],
            registry=registry,
        )
        self._consumer_lag = Gauge(
            "baocao_consumer_lag",
            "records of a partition this process consumes that its group has not committed: "
            "the high-water mark less the committed offset",
            ["service", "topic", "partition"],
            registry=registry,
        )
        self._consumers: set[str] = set()
        self._lag_partitions: dict[str, set[int]] = {}

    def consuming(self, consumer: str) -> None:
        """Create a consumer's series at 0: ``increase()`` sees the first dead letter only if
        the series existed before it (a series born at 1 shows no increase)."""
        self._dead_letters.labels(self.service, consumer)
        self._retries.labels(self.service, consumer)
        self._dead_letters_waiting.labels(self.service, consumer)
        self._consumers.add(consumer)

    def dead_letters_waiting(self, waiting: dict[str, int]) -> None:
        """Set every consumer's count; a consumer missing from ``waiting`` has none."""
        self._consumers |= set(waiting)
        for consumer in self._consumers:
            self._dead_letters_waiting.labels(self.service, consumer).set(waiting.get(consumer, 0))

    def consumer_lag(self, topic: str, lag: dict[int, int]) -> None:
        """The lag of each partition of ``topic`` assigned here now; the series of partitions
        no longer assigned (a rebalance gave them to another process) are removed."""
        for gone in self._lag_partitions.get(topic, set()) - set(lag):
            self._consumer_lag.remove(self.service, topic, str(gone))
        self._lag_partitions[topic] = set(lag)
        for partition, records in lag.items():
            self._consumer_lag.labels(self.service, topic, str(partition)).set(records)

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
