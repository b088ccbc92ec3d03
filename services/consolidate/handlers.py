"""Orchestration: events and requests in, reports (with their outbox event) stored."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from contracts.events import (
    PeriodClosed,
    ReportConsolidated,
    ReportConsolidatedPayload,
    SubmissionReceived,
)
from contracts.plan import Plan
from services.common.clock import Clock
from services.common.consumer import PermanentError
from services.common.mongo import to_millis
from services.common.periods import Period
from services.common.reference import Catalog
from services.consolidate.domain import (
    Trigger,
    consolidate,
    report_id_for_closing,
    report_id_for_request,
)
from services.consolidate.metrics import ConsolidateMetrics
from services.consolidate.store import ConsolidateStore, ReportExists, VersionTaken

log = logging.getLogger(__name__)

PRODUCER = "consolidate"
MAX_VERSION_RACES = 20
"""Consolidations of one period racing each other; more than this means something is wrong."""


class UnknownPeriod(PermanentError):
    """The period is not in any plan this deployment runs."""


class TooManyVersionConflicts(Exception):
    """Consolidations of one period kept taking the version this one was about to record."""


async def on_submission_received(event: SubmissionReceived, *, store: ConsolidateStore) -> None:
    if not await store.add_submission(event.payload):
        log.debug("submission %s already projected", event.payload.submission_id)


async def on_period_closed(
    event: PeriodClosed,
    *,
    catalog: Catalog,
    store: ConsolidateStore,
    clock: Clock,
    wake: Callable[[], None],
    metrics: ConsolidateMetrics,
) -> None:
    plan, period = _resolve(catalog, event.payload.period_id)
    await _record(
        plan,
        period,
        store=store,
        clock=clock,
        wake=wake,
        metrics=metrics,
        trigger="period_closed",
        report_id=report_id_for_closing(event.event_id),
        cause=str(event.event_id),
        correlation_id=event.correlation_id,
        causation_id=event.event_id,
    )


async def consolidate_now(
    period_id: str,
    *,
    catalog: Catalog,
    store: ConsolidateStore,
    clock: Clock,
    wake: Callable[[], None],
    metrics: ConsolidateMetrics,
    request_id: str,
) -> ReportConsolidatedPayload:
    """Consolidate on request; the same ``request_id`` again returns the same report."""
    plan, period = _resolve(catalog, period_id)
    report_id = report_id_for_request(period.id, request_id)
    return await _record(
        plan,
        period,
        store=store,
        clock=clock,
        wake=wake,
        metrics=metrics,
        trigger="requested",
        report_id=report_id,
        cause=request_id,
        correlation_id=uuid.UUID(report_id),
        causation_id=None,
    )


async def preview(
    period_id: str, *, catalog: Catalog, store: ConsolidateStore, clock: Clock
) -> ReportConsolidatedPayload:
    """What a consolidation would say now; nothing is stored or published."""
    plan, period = _resolve(catalog, period_id)
    return consolidate(
        plan,
        period,
        await store.submissions(period.id),
        now=to_millis(clock.now()),
        trigger="requested",
        version=await store.latest_version(period.id) + 1,
        report_id="preview",
    )


def _resolve(catalog: Catalog, period_id: str) -> tuple[Plan, Period]:
    found = catalog.period(period_id)
    if found is None:
        raise UnknownPeriod(period_id)
    return found


async def _record(
    plan: Plan,
    period: Period,
    *,
    store: ConsolidateStore,
    clock: Clock,
    wake: Callable[[], None],
    metrics: ConsolidateMetrics,
    trigger: Trigger,
    report_id: str,
    cause: str,
    correlation_id: uuid.UUID,
    causation_id: uuid.UUID | None,
) -> ReportConsolidatedPayload:
    existing = await store.report(report_id)
    if existing is not None:
        log.info("report %s for %s already recorded (cause %s)", report_id, period.id, cause)
        return existing.payload
    submissions = await store.submissions(period.id)
    # BSON keeps milliseconds: the stored report must equal the published one.
    now = to_millis(clock.now())
    version = await store.latest_version(period.id) + 1
    for _ in range(MAX_VERSION_RACES):
        payload = consolidate(
            plan,
            period,
            submissions,
            now=now,
            trigger=trigger,
            version=version,
            report_id=report_id,
        )
        event = ReportConsolidated(
            occurred_at=now,
            producer=PRODUCER,
            correlation_id=correlation_id,
            causation_id=causation_id,
            payload=payload,
        )
        try:
            await store.add_report(event, cause=cause)
        except VersionTaken:
            version += 1
            continue
        except ReportExists:
            stored = await store.report(report_id)
            if stored is None:  # only if someone deletes reports by hand
                raise
            return stored.payload
        metrics.consolidated(trigger)
        wake()
        log.info(
            "report %s v%d for %s recorded (%s): %d/%d received",
            report_id,
            version,
            period.id,
            trigger,
            payload.received,
            payload.expected,
        )
        return payload
    raise TooManyVersionConflicts(f"{period.id}: {MAX_VERSION_RACES} conflicts in a row")
