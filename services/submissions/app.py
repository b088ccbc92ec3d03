"""Composition root of the submissions service."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI

from services.common.admission import Admission
from services.common.clock import Clock
from services.common.reference import Catalog
from services.common.runtime import Runtime
from services.submissions import web
from services.submissions.config import SubmissionsSettings
from services.submissions.handlers import Intake
from services.submissions.store import MongoSubmissionsStore

log = logging.getLogger(__name__)

KEY_SWEEP_SECONDS = 3600.0


def build_app(
    settings: SubmissionsSettings, *, clock: Clock | None = None, catalog: Catalog | None = None
) -> FastAPI:
    rt = Runtime("submissions", settings, clock=clock, catalog=catalog)

    async def wire(rt: Runtime) -> None:
        store = MongoSubmissionsStore(rt.db)
        await store.create_indexes()
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
        )

        async def forget_expired_keys() -> None:
            # Keeps the idempotency collection to about a day of keys: it is read on repeats.
            while True:
                try:
                    await store.forget_expired_keys(rt.clock.now())
                except Exception as error:  # MongoDB away: the next sweep does it
                    log.warning("idempotency sweep: %s: %s", type(error).__name__, error)
                await asyncio.sleep(KEY_SWEEP_SECONDS)

        rt.loop(forget_expired_keys)

    app = rt.app(wire, title="baocao: tiếp nhận báo cáo", max_body_bytes=settings.max_body_bytes)
    app.include_router(web.router)
    return app
