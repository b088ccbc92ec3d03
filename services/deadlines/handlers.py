"""Orchestration: project submissions, and turn due announcements into outbox entries."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator

from contracts.events import (
    ExtensionDecided,
    FilingExceptionGranted,
    ReportReviewed,
    SubmissionReceived,
)
from contracts.plan.workdays import DayChanges, plan_calendar
from services.common.chunks import chunked
from services.common.clock import Clock
from services.common.periods import periods_around
from services.common.reference import Catalog
from services.deadlines.coverage import Coverage, open_coverage
from services.deadlines.domain import Emission, emissions_due, is_relevant
from services.deadlines.metrics import DeadlinesMetrics
from services.deadlines.pending import pending_rungs
from services.deadlines.store import DeadlinesStore, TermsStore

log = logging.getLogger(__name__)

SCAN_CHUNK = 1_000
"""Announcements a scan decides, then stores, at a time. On a rung day every unit owes one
(100,000 events for a province): decided all at once, they held 450 MB and the event loop
for 12 s; a chunk is a few MB and tens of milliseconds, and the relay is woken each time a
chunk's worth is stored, so publishing starts while the scan goes on (bench/README.md,
"The deadlines tick")."""


def decision_chunks(emissions: Iterable[Emission]) -> Iterator[list[Emission]]:
    """The scan's announcements as it takes them: ``SCAN_CHUNK`` at a time, each chunk made
    only once the one before is stored, with the collector paused while it is made (its
    events all live until it is stored; see ``chunked``)."""
    return chunked(emissions, SCAN_CHUNK, collect=False)


async def on_submission_received(event: SubmissionReceived, *, store: DeadlinesStore) -> None:
    # Any revision stops the reminders for that unit; the first one received is kept.
    p = event.payload
    await store.record_submission(p.period_id, p.unit_id, p.received_at)


async def on_report_reviewed(event: ReportReviewed, *, store: DeadlinesStore) -> None:
    # Returned for revision: the unit owes a report again and re-enters the reminder ladder
    # until a new version arrives. Accepted: nothing changes (it had reported).
    p = event.payload
    if p.decision == "returned":
        await store.record_return(p.period_id, p.unit_id, p.reviewed_at)


async def on_extension_decided(event: ExtensionDecided, *, terms: TermsStore) -> None:
    # Approved: the unit's reminders and overdue notice follow its new due instant from the
    # next scan on. Refused: nothing changes.
    await terms.record_extension(event.payload)


async def on_filing_exception_granted(event: FilingExceptionGranted, *, terms: TermsStore) -> None:
    await terms.record_exception(event.payload)


async def scan(
    *,
    catalog: Catalog,
    store: DeadlinesStore,
    clock: Clock,
    wake: Callable[[], None],
    metrics: DeadlinesMetrics,
    catch_up: dt.timedelta,
    terms: TermsStore | None = None,
    day_changes: DayChanges | None = None,
) -> int:
    """Record every announcement that is due and not yet recorded; returns how many."""
    now = clock.now()
    recorded = unannounced = 0
    coverage: list[Coverage] = []
    pending: list[tuple[str, dict[str, int]]] = []
    for plan in catalog.plans.values():
        periods = [p for p in periods_around(plan, now) if is_relevant(p, now, catch_up)]
        if not periods:
            continue
        submitted = await store.submitted_units(p.id for p in periods)
        coverage += open_coverage(plan, periods, submitted, now)
        unit_ids = [u.id for u in plan.reporting_units()]  # 0.1 s for 100,000 units: once
        extended = await terms.extended(p.id for p in periods) if terms else {}
        returned = await store.returned_units(p.id for p in periods)
        reopened = await terms.reopened(p.id for p in periods) if terms else {}
        calendar = plan_calendar(plan, day_changes or DayChanges())
        pending.append(
            (
                plan.id,
                pending_rungs(
                    plan,
                    periods,
                    submitted,
                    now,
                    calendar,
                    extended=extended,
                    returned=returned,
                    reopened=reopened,
                    unit_ids=unit_ids,
                ),
            )
        )
        emissions = emissions_due(
            plan,
            periods,
            submitted,
            now,
            catch_up=catch_up,
            extended=extended,
            calendar=calendar,
            returned=returned,
            reopened=reopened,
            decided=store.known_decided,
            unit_ids=unit_ids,
        )
        # Each chunk is stored before the next is decided: the scan holds a chunk's events,
        # not the day's. Whatever the order they are stored in, the relay publishes oldest
        # first (``domain.publish_order``).
        for chunk in decision_chunks(emissions):
            stored = await _record(chunk, store=store, metrics=metrics, now=now)
            recorded += stored
            unannounced += stored
            if unannounced >= SCAN_CHUNK:
                wake()
                unannounced = 0
    if recorded:
        log.info("scan at %s recorded %d announcement(s)", now.isoformat(), recorded)
    if unannounced:
        wake()
    metrics.coverage(coverage)
    metrics.clear_pending()
    for plan_id, counts in pending:
        metrics.pending(plan_id, counts)
    metrics.scan_succeeded()
    return recorded


async def _record(
    emissions: list[Emission], *, store: DeadlinesStore, metrics: DeadlinesMetrics, now: dt.datetime
) -> int:
    """Record each decision not recorded before, with its event queued; returns how many."""
    # Recorded before it is published: a crash after this line publishes it later, a crash
    # before it decides it again at the next scan. Either way, once.
    recorded = await store.record_emissions(emissions, recorded_at=now)
    for emission in recorded:
        metrics.emitted(emission.kind)
        if emission.rung:  # a unit's ladder rung (not the office summary)
            metrics.rung_emitted(emission.rung)
        log.debug("recorded %s", emission.key)
    # Also for decisions made before: a crash may have come between the two.
    metrics.skipped(await store.record_skipped(emissions, recorded_at=now))
    return len(recorded)
