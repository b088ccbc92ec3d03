"""Metrics of the consolidate service, on the registry the runtime owns."""

from __future__ import annotations

from collections.abc import Sized

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.consolidate.domain import Trigger


class ConsolidateMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._consolidated = Counter(
            "baocao_reports_consolidated",
            "report versions recorded, by trigger: counted when a version and its events "
            "are committed to the outbox, before the relay publishes them (what Kafka "
            'acknowledged: baocao_events_published_total{topic=~".*report-consolidated.*"})',
            ["trigger"],
            registry=registry,
        )
        self._v1_withheld = Counter(
            "baocao_reports_v1_withheld",
            "report versions published on ReportConsolidated v2 only: their v1 event (every "
            "unit's detail inline) would not fit in a Kafka record",
            registry=registry,
        )
        self._pending = Gauge(
            "baocao_amendments_pending",
            "submissions and decisions learnt after a close, not yet counted by an amendment",
            registry=registry,
        )

    def watch_pending(self, pending: Sized) -> None:
        self._pending.set_function(lambda: len(pending))

    def consolidated(self, trigger: Trigger) -> None:
        self._consolidated.labels(trigger).inc()

    def v1_withheld(self) -> None:
        self._v1_withheld.inc()
