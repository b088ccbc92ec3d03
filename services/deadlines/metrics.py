"""Metrics of the deadlines scheduler, on the service's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.deadlines.domain import EmissionKind


class DeadlinesMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._emitted = Counter(
            "baocao_deadline_events_emitted",
            "announcements decided and queued for publishing",
            ["kind"],
            registry=registry,
        )
        for kind in EmissionKind:  # every series exists from the start, so rate() sees a 0
            self._emitted.labels(kind.value)
        self._scan_failures = Counter(
            "baocao_deadline_scan_failures",
            "scans that failed and will be retried",
            registry=registry,
        )
        self._last_success = Gauge(
            "baocao_deadline_scan_last_success_timestamp_seconds",
            "wall-clock time of the last scan that completed (alerts compare it with time())",
            registry=registry,
        )

    def emitted(self, kind: EmissionKind) -> None:
        self._emitted.labels(kind.value).inc()

    def scan_failed(self) -> None:
        self._scan_failures.inc()

    def scan_succeeded(self) -> None:
        # Wall time, not the service clock: a rehearsal clock set to 2027 must not look stale.
        self._last_success.set_to_current_time()
