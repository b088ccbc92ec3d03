"""Composition root of the notify service."""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI

from contracts.topics import DEADLINE_APPROACHING, DEADLINE_OVERDUE, SUBMISSION_RECEIVED
from services.common.clock import Clock
from services.common.errors import not_ready
from services.common.mongo import Document
from services.common.reference import Catalog
from services.common.runtime import Runtime
from services.notify.config import NotifySettings
from services.notify.handlers import Delivery, on_event
from services.notify.mailer import Mailer, SmtpMailer
from services.notify.metrics import NotifyMetrics
from services.notify.store import Ledger, MongoLedger


def build_app(
    settings: NotifySettings,
    *,
    clock: Clock | None = None,
    catalog: Catalog | None = None,
    mailer: Mailer | None = None,
) -> FastAPI:
    rt = Runtime("notify", settings, clock=clock, catalog=catalog)
    metrics = NotifyMetrics(rt.registry)
    ledgers: list[Ledger] = []
    the_mailer = mailer or SmtpMailer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.mail_from,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        timeout=settings.smtp_timeout_seconds,
    )

    async def wire(rt: Runtime) -> None:
        ledger = MongoLedger(rt.db)
        await ledger.create_indexes()
        ledgers[:] = [ledger]
        delivery = Delivery(
            rt.catalog,
            ledger,
            the_mailer,
            rt.clock,
            metrics,
            rt.wake_relay,
            settings.send_attempts,
            settings.send_retry_seconds,
        )
        handler = partial(on_event, delivery=delivery)
        rt.subscribe(SUBMISSION_RECEIVED, "receipt", handler)
        rt.subscribe(DEADLINE_APPROACHING, "reminder", handler)
        rt.subscribe(DEADLINE_OVERDUE, "overdue", handler)
        rt.outbox([ledger.notifications])

    app = rt.app(wire, title="baocao: thông báo")

    @app.get("/api/v1/notifications")
    async def notifications(limit: int = 100) -> list[Document]:
        """The delivery ledger, newest first (operators' view)."""
        if not ledgers:
            raise not_ready()
        return await ledgers[0].list(min(max(limit, 1), 1000))

    return app
