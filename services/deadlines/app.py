"""Composition root of the deadlines service."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from fastapi import FastAPI

from contracts.events import (
    ExtensionDecided,
    FilingExceptionGranted,
    ReportReviewed,
    SubmissionReceived,
)
from contracts.plan.workdays import load_day_changes, plan_calendar
from contracts.topics import (
    EXTENSION_DECIDED,
    FILING_EXCEPTION_GRANTED,
    REPORT_REVIEWED,
    SUBMISSION_RECEIVED,
)
from services.common.clock import Clock
from services.common.errors import not_ready
from services.common.mongo import Document
from services.common.periods import periods_around
from services.common.reference import Catalog
from services.common.runtime import Runtime
from services.deadlines.config import DeadlinesSettings
from services.deadlines.feed import FeedPeriod, unit_calendar
from services.deadlines.handlers import (
    on_extension_decided,
    on_filing_exception_granted,
    on_report_reviewed,
    on_submission_received,
    scan,
)
from services.deadlines.metrics import DeadlinesMetrics
from services.deadlines.schedule import UnitSchedule, period_schedule
from services.deadlines.store import (
    DeadlinesStore,
    MongoDeadlinesStore,
    MongoTermsStore,
    TermsStore,
)
from services.deadlines.web import build_router

log = logging.getLogger(__name__)


class Scheduler:
    """Runs scans, one at a time, for the background loop and the HTTP trigger alike."""

    def __init__(self, rt: Runtime, settings: DeadlinesSettings, metrics: DeadlinesMetrics) -> None:
        self._rt = rt
        self._interval = settings.scan_interval_seconds
        self._catch_up = dt.timedelta(days=settings.catch_up_days)
        self._metrics = metrics
        # Read once: the swaps change a few times a year, with a deployment.
        self._day_changes = load_day_changes(settings.calendar_file)
        self._lock = asyncio.Lock()
        self.store: DeadlinesStore | None = None
        self.terms: TermsStore | None = None

    async def scan(self) -> int:
        if self.store is None:
            raise not_ready()
        async with self._lock:
            return await scan(
                catalog=self._rt.catalog,
                store=self.store,
                clock=self._rt.clock,
                wake=self._rt.wake_relay,
                metrics=self._metrics,
                catch_up=self._catch_up,
                terms=self.terms,
                day_changes=self._day_changes,
            )

    async def period_schedule(self, period_id: str) -> list[UnitSchedule] | None:
        """Each unit's rungs of the period, from the store and the plan (None: no period)."""
        if self.store is None or self.terms is None:
            raise not_ready()
        found = self._rt.catalog.period(period_id)
        if found is None:
            return None
        plan, period = found
        ids = [period.id]
        submitted = await self.store.submitted_units(ids)
        return period_schedule(
            plan,
            period,
            plan_calendar(plan, self._day_changes),
            self._rt.clock.now(),
            submitted=submitted.get(period.id, set()),
            decisions=await self.store.decisions(period.id),
            extended=(await self.terms.extended(ids)).get(period.id),
            returned=(await self.store.returned_units(ids)).get(period.id),
            reopened=(await self.terms.reopened(ids)).get(period.id),
        )

    async def unit_feed(self, unit_id: str) -> bytes | None:
        """The unit's calendar feed: the periods of last, this and next year of every plan it
        reports in, with its extensions (None: no plan has the unit report)."""
        if self.terms is None:
            raise not_ready()
        now = self._rt.clock.now()
        periods: list[FeedPeriod] = []
        name = None
        for plan in self._rt.catalog.plans.values():
            unit = next((u for u in plan.reporting_units() if u.id == unit_id), None)
            if unit is None:
                continue
            name = name or unit.name
            around = periods_around(plan, now)
            extended = await self.terms.extended(p.id for p in around)
            periods += [FeedPeriod(plan, p, extended.get(p.id, {}).get(unit_id)) for p in around]
        if name is None:
            return None
        return unit_calendar(unit_id, name, periods, now)

    async def unit_terms(
        self, period_id: str, unit_id: str
    ) -> tuple[Document | None, Document | None]:
        """The unit's approved extension and filing exception for the period."""
        if self.terms is None:
            raise not_ready()
        return (
            await self.terms.extension(period_id, unit_id),
            await self.terms.exception(period_id, unit_id),
        )

    async def run(self) -> None:
        """Scan now, then every interval; a failed scan is retried at the next tick."""
        while True:
            try:
                await self.scan()
            except Exception as error:  # MongoDB away: nothing was lost, the next scan redoes it
                self._metrics.scan_failed()
                log.warning(
                    "deadline scan failed: %s: %s (will retry)", type(error).__name__, error
                )
            # Success or not, the loop came round: a scan stuck on an await, or a loop that
            # died, stops this beat (BaocaoDeadlinesScanStalled); failing scans do not.
            self._metrics.loop_turned()
            await asyncio.sleep(self._interval)


def build_app(
    settings: DeadlinesSettings, *, clock: Clock | None = None, catalog: Catalog | None = None
) -> FastAPI:
    rt = Runtime("deadlines", settings, clock=clock, catalog=catalog)
    metrics = DeadlinesMetrics(
        rt.registry,
        missing_share_alert=settings.alert_missing_share,
        scan_interval=settings.scan_interval_seconds,
    )
    scheduler = Scheduler(rt, settings, metrics)

    async def wire(rt: Runtime) -> None:
        store = MongoDeadlinesStore(rt.db, rt.outbox)
        await store.create_indexes()

        async def submitted(event: SubmissionReceived) -> None:
            await on_submission_received(event, store=store)

        async def reviewed(event: ReportReviewed) -> None:
            await on_report_reviewed(event, store=store)

        terms = MongoTermsStore(rt.db)

        async def extension_decided(event: ExtensionDecided) -> None:
            await on_extension_decided(event, terms=terms)

        async def exception_granted(event: FilingExceptionGranted) -> None:
            await on_filing_exception_granted(event, terms=terms)

        rt.subscribe(SUBMISSION_RECEIVED, "submitted", submitted)
        rt.subscribe(REPORT_REVIEWED, "report-reviewed", reviewed)
        rt.subscribe(EXTENSION_DECIDED, "extension-decided", extension_decided)
        rt.subscribe(FILING_EXCEPTION_GRANTED, "exception-granted", exception_granted)
        scheduler.store = store
        scheduler.terms = terms
        rt.loop(scheduler.run)

    app = rt.app(wire, title="baocao deadlines")
    app.state.scheduler = scheduler
    app.include_router(
        build_router(
            rt.catalog,
            rt.clock,
            scheduler.scan,
            scheduler.unit_terms,
            schedule=scheduler.period_schedule,
            feed=scheduler.unit_feed,
            feed_key=rt.verifier.public_key,
        )
    )
    return app
