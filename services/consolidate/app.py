"""Composition root of the consolidate service."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI

from contracts.events import (
    ExtensionDecided,
    FilingExceptionGranted,
    PeriodClosed,
    ReportReviewed,
    SubmissionReceived,
)
from contracts.topics import (
    EXTENSION_DECIDED,
    FILING_EXCEPTION_GRANTED,
    PERIOD_CLOSED,
    REPORT_REVIEWED,
    SUBMISSION_RECEIVED,
)
from services.common.clock import Clock
from services.common.reference import Catalog
from services.common.runtime import Runtime
from services.consolidate.config import ConsolidateSettings
from services.consolidate.files import GridFSFileStore
from services.consolidate.handlers import (
    Consolidation,
    amend_closed_reports,
    on_extension_decided,
    on_filing_exception_granted,
    on_period_closed,
    on_report_reviewed,
    on_submission_received,
    on_submissions_received,
)
from services.consolidate.metrics import ConsolidateMetrics
from services.consolidate.store import MongoConsolidateStore, MongoTermsStore
from services.consolidate.web import pages, router

log = logging.getLogger(__name__)


def build_app(
    settings: ConsolidateSettings, *, clock: Clock | None = None, catalog: Catalog | None = None
) -> FastAPI:
    rt = Runtime("consolidate", settings, clock=clock, catalog=catalog)
    metrics = ConsolidateMetrics(rt.registry)

    async def wire(rt: Runtime) -> None:
        store = MongoConsolidateStore(rt.db)
        await store.create_indexes()
        # ReportConsolidated (v2, and v1 when it fits) leaves only through the outbox, so a
        # Kafka outage delays it instead of losing it.
        c = Consolidation(
            rt.catalog,
            store,
            rt.outbox,
            rt.clock,
            rt.wake_relay,
            metrics,
            GridFSFileStore(rt.db),
            terms=MongoTermsStore(rt.db),
            public_url=settings.public_url,
            render_pdf=settings.render_pdf,
        )

        async def project(event: SubmissionReceived) -> None:
            await on_submission_received(event, c=c)

        async def project_batch(events: Sequence[SubmissionReceived]) -> None:
            await on_submissions_received(events, c=c)

        async def period_closed(event: PeriodClosed) -> None:
            await on_period_closed(event, c=c)

        async def report_reviewed(event: ReportReviewed) -> None:
            await on_report_reviewed(event, c=c)

        async def extension_decided(event: ExtensionDecided) -> None:
            await on_extension_decided(event, c=c)

        rt.subscribe(SUBMISSION_RECEIVED, "projection", project, together=project_batch)
        rt.subscribe(PERIOD_CLOSED, "period-closed", period_closed)
        rt.subscribe(REPORT_REVIEWED, "report-reviewed", report_reviewed)

        async def exception_granted(event: FilingExceptionGranted) -> None:
            await on_filing_exception_granted(event, c=c)

        rt.subscribe(EXTENSION_DECIDED, "extension-decided", extension_decided)
        rt.subscribe(FILING_EXCEPTION_GRANTED, "filing-exception-granted", exception_granted)
        metrics.watch_pending(c.pending)

        async def amender() -> None:
            while True:
                try:
                    await amend_closed_reports(c)
                except Exception as error:  # MongoDB away: the causes wait in the store
                    log.warning("amendments: %s: %s", type(error).__name__, error)
                await c.pending.nudged()

        rt.loop(amender)
        app.state.consolidation = c

    app = rt.app(wire, title="baocao consolidate")
    app.include_router(router)
    app.include_router(pages)
    return app
