"""Metrics of the consolidate service, on the registry the runtime owns."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from services.consolidate.domain import Trigger


class ConsolidateMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._consolidated = Counter(
            "baocao_reports_consolidated",
            "reports recorded (and queued for publication)",
            ["trigger"],
            registry=registry,
        )

    def consolidated(self, trigger: Trigger) -> None:
        self._consolidated.labels(trigger).inc()
