"""Metrics of the deadlines scheduler, on the service's own registry."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.deadlines.coverage import Coverage
from services.deadlines.domain import EmissionKind


class DeadlinesMetrics:
    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        missing_share_alert: float = 0.2,
        scan_interval: float = 30.0,
    ) -> None:
        self._emitted = Counter(
            "baocao_deadline_events_emitted",
            "announcements decided and queued for publishing",
            ["kind"],
            registry=registry,
        )
        for kind in EmissionKind:  # every series exists from the start, so rate() sees a 0
            self._emitted.labels(kind.value)
        self._skipped = Counter(
            "baocao_deadline_rungs_skipped",
            "reminder-ladder rungs not sent because a later one superseded them (after "
            "downtime), by rung (bounded by the plan's ladder, as for the emitted rungs)",
            ["rung"],
            registry=registry,
        )
        self._rungs_emitted = Counter(
            "baocao_deadline_rungs_emitted",
            "reminder-ladder rungs decided and queued for publishing, by rung ('b14', 'a1', "
            "'a1+7d'...: the plan's ladder bounds them)",
            ["rung"],
            registry=registry,
        )
        self._pending = Gauge(
            "baocao_deadline_rungs_pending",
            "ladder rungs still to come for units that owe a report, by period (periods the "
            "scan considers: open, or locked within the catch-up window)",
            ["plan", "period"],
            registry=registry,
        )
        self._heartbeat = Gauge(
            "baocao_deadline_scan_heartbeat_timestamp_seconds",
            "wall-clock time the scan loop last came round, whether its scan succeeded or not "
            "(a loop that hangs or died stops it; failing scans do not)",
            registry=registry,
        )
        self._interval = Gauge(
            "baocao_deadline_scan_interval_seconds",
            "the scan loop's configured pause between scans (BAOCAO_SCAN_INTERVAL_SECONDS), "
            "for the stalled-loop alert to compare against",
            registry=registry,
        )
        self._interval.set(scan_interval)
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

        # Open periods only: a plan has a handful at a time, so the period label stays bounded.
        period = ["plan", "period"]
        self._expected = Gauge(
            "baocao_period_units_expected",
            "units that must report for an open period",
            period,
            registry=registry,
        )
        self._missing = Gauge(
            "baocao_period_units_missing",
            "units that have not reported yet for an open period",
            period,
            registry=registry,
        )
        self._closes_in = Gauge(
            "baocao_period_closes_in_seconds",
            "seconds until an open period locks, by the service's clock (a rehearsal clock "
            "set by BAOCAO_CLOCK_START counts from its own now)",
            period,
            registry=registry,
        )
        Gauge(
            "baocao_period_missing_share_alert",
            "the office is alerted when a period locks within 24 h with a larger share of its "
            "units missing (BAOCAO_ALERT_MISSING_SHARE)",
            registry=registry,
        ).set(missing_share_alert)

    def coverage(self, periods: list[Coverage]) -> None:
        """Replace the open periods' series: a period that locked disappears."""
        for gauge in (self._expected, self._missing, self._closes_in):
            gauge.clear()
        for c in periods:
            self._expected.labels(c.plan_id, c.period_id).set(c.expected)
            self._missing.labels(c.plan_id, c.period_id).set(c.missing)
            self._closes_in.labels(c.plan_id, c.period_id).set(c.closes_in.total_seconds())

    def emitted(self, kind: EmissionKind) -> None:
        self._emitted.labels(kind.value).inc()

    def rung_emitted(self, rung: str) -> None:
        self._rungs_emitted.labels(rung).inc()

    def pending(self, plan_id: str, counts: dict[str, int]) -> None:
        for period_id, count in counts.items():
            self._pending.labels(plan_id, period_id).set(count)

    def clear_pending(self) -> None:
        """Before a scan sets them again: a period the scan no longer considers disappears."""
        self._pending.clear()

    def loop_turned(self) -> None:
        # Wall time, as for the last success: the alert compares it with Prometheus' time().
        self._heartbeat.set_to_current_time()

    def skipped(self, by_rung: Mapping[str, int]) -> None:
        for rung, count in by_rung.items():
            self._skipped.labels(rung).inc(count)

    def scan_failed(self) -> None:
        self._scan_failures.inc()

    def scan_succeeded(self) -> None:
        # Wall time, not the service clock: a rehearsal clock set to 2027 must not look stale.
        self._last_success.set_to_current_time()
