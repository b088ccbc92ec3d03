"""Composition root of the submissions service."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from fastapi import FastAPI, Request, Response
from starlette.middleware.base import RequestResponseEndpoint

from contracts.report_v2 import ReportConsolidatedV2
from contracts.topics import REPORT_CONSOLIDATED_V2
from services.common.admission import Admission
from services.common.auth import TokenSigner, load_private_key
from services.common.clock import Clock
from services.common.reference import Catalog
from services.common.runtime import Runtime
from services.submissions import (
    attachments_api,
    auth_api,
    calendar_api,
    drafts_api,
    pages,
    review_api,
    web,
)
from services.submissions.account_store import MongoAccountStore
from services.submissions.attachment_store import GridFSAttachmentStore
from services.submissions.audit import AuditTrail
from services.submissions.config import SubmissionsSettings
from services.submissions.consolidated import ConsolidatedReports, on_report_consolidated
from services.submissions.drafts import MongoDraftStore
from services.submissions.handlers import Intake
from services.submissions.identity import Identity
from services.submissions.review_handlers import Office
from services.submissions.review_store import MongoReviewStore
from services.submissions.store import MongoSubmissionsStore

log = logging.getLogger(__name__)

KEY_SWEEP_SECONDS = 3600.0


def build_app(
    settings: SubmissionsSettings, *, clock: Clock | None = None, catalog: Catalog | None = None
) -> FastAPI:
    rt = Runtime("submissions", settings, clock=clock, catalog=catalog)
    signer = TokenSigner(load_private_key(settings.auth_private_key_file))

    async def wire(rt: Runtime) -> None:
        store = MongoSubmissionsStore(rt.db)
        await store.create_indexes()
        audit = AuditTrail(rt.db, rt.clock)
        accounts = MongoAccountStore(rt.db)
        identity = Identity(
            accounts,
            signer,
            rt.verifier,
            rt.clock,
            audit,
            session_lifetime=dt.timedelta(hours=settings.session_hours),
            idle=dt.timedelta(minutes=settings.session_idle_minutes),
            cookie_secure=settings.cookie_secure,
        )
        app.state.audit = audit
        app.state.calendar_links = calendar_api.CalendarLinks(
            signer.private_key, settings.deadlines_url, rt.catalog, rt.clock
        )
        app.state.identity = identity
        app.state.drafts = MongoDraftStore(rt.db)
        reports = ConsolidatedReports(rt.db)
        app.state.consolidated = reports

        async def report_consolidated(event: ReportConsolidatedV2) -> None:
            await on_report_consolidated(event, reports=reports)

        # The office's period page links each version's files (see consolidated.py).
        rt.subscribe(REPORT_CONSOLIDATED_V2, "consolidated-reports", report_consolidated)
        # Sessions, account state and API tokens are checked here, not only signatures.
        app.state.authenticator = identity
        decisions = MongoReviewStore(rt.db)
        attachments = GridFSAttachmentStore(rt.db)
        await attachments.create_indexes()
        app.state.attachments = attachments_api.AttachmentDesk(
            attachments,
            rt.catalog,
            rt.clock,
            max_file_bytes=settings.max_attachment_bytes,
            max_unit_bytes=settings.max_report_attachment_bytes,
        )
        app.state.intake = Intake(
            rt.catalog,
            store,
            rt.outbox,
            rt.clock,
            rt.wake_relay,
            admission=Admission(
                settings.max_concurrent_submissions,
                settings.max_waiting_submissions,
                settings.max_wait_seconds,
            ),
            decisions=decisions,
            attachments=attachments,
        )
        app.state.office = Office(
            rt.catalog,
            store,
            decisions,
            rt.outbox,
            rt.clock,
            rt.wake_relay,
            resubmit_grace_days=settings.resubmit_grace_days,
        )

        async def forget_expired_keys() -> None:
            # Keeps the idempotency keys to about a day and sessions to the live ones: both
            # are read on requests.
            while True:
                try:
                    await store.forget_expired_keys(rt.clock.now())
                    await accounts.sweep_sessions(rt.clock.now())
                except Exception as error:  # MongoDB away: the next sweep does it
                    log.warning("idempotency sweep: %s: %s", type(error).__name__, error)
                await asyncio.sleep(KEY_SWEEP_SECONDS)

        rt.loop(forget_expired_keys)

    app = rt.app(
        wire,
        title="baocao: tiếp nhận báo cáo",
        max_body_bytes=settings.max_body_bytes,
        streamed=[
            attachments_api.upload_route(settings.max_attachment_bytes),
            *pages.form_routes(settings.max_body_bytes, settings.max_attachment_bytes),
        ],
    )
    app.include_router(web.router)
    app.include_router(auth_api.router)
    app.include_router(review_api.router)
    app.include_router(attachments_api.router)
    app.include_router(calendar_api.router)
    app.include_router(drafts_api.router)
    pages.install(app)

    @app.middleware("http")
    async def renew_session(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        identity: Identity | None = getattr(app.state, "identity", None)
        if identity is not None:
            identity.renew_cookie(request, response)
        return response

    return app
