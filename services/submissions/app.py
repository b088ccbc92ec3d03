"""Composition root of the submissions service."""

from __future__ import annotations

from fastapi import FastAPI

from services.common.clock import Clock
from services.common.reference import Catalog
from services.common.runtime import Runtime
from services.submissions import web
from services.submissions.config import SubmissionsSettings
from services.submissions.store import MongoSubmissionsStore, SubmissionsStore


def build_app(
    settings: SubmissionsSettings, *, clock: Clock | None = None, catalog: Catalog | None = None
) -> FastAPI:
    rt = Runtime("submissions", settings, clock=clock, catalog=catalog)
    store: list[SubmissionsStore] = []  # filled once MongoDB is connected

    async def wire(rt: Runtime) -> None:
        mongo = MongoSubmissionsStore(rt.db)
        await mongo.create_indexes()
        rt.outbox([mongo.submissions])
        store[:] = [mongo]

    app = rt.app(wire, title="baocao: tiếp nhận báo cáo")
    app.include_router(web.router(rt, store, settings.max_body_bytes))
    return app
