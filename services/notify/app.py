"""Composition root of the notify service."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
from functools import partial
from typing import Any, Protocol, runtime_checkable

from fastapi import FastAPI, Request

from contracts.topics import (
    DEADLINE_APPROACHING,
    DEADLINE_OVERDUE,
    DEADLINE_SUMMARY,
    EXTENSION_DECIDED,
    FILING_EXCEPTION_GRANTED,
    REPORT_CONSOLIDATED_V2,
    REPORT_REVIEWED,
    SUBMISSION_RECEIVED,
)
from services.common.auth import Role, Staff
from services.common.clock import Clock
from services.common.errors import not_ready, problems
from services.common.mongo import Document
from services.common.reference import Catalog
from services.common.runtime import Runtime
from services.notify.config import NotifySettings
from services.notify.handlers import Delivery, on_event, retry_due
from services.notify.mailer import Mailer, SmtpConfig, SmtpMailer
from services.notify.metrics import NotifyMetrics
from services.notify.sms import ByChannel, HttpSmsGateway, LogSmsProvider, SmsProvider, SmsSender
from services.notify.store import MongoLedger

log = logging.getLogger(__name__)

RETRY_PAUSE, RETRY_MAX_IDLE = 1.0, 30.0


@runtime_checkable
class Closable(Protocol):
    async def close(self) -> None: ...


def build_app(
    settings: NotifySettings,
    *,
    clock: Clock | None = None,
    catalog: Catalog | None = None,
    mailer: Mailer | None = None,
    sms_sender: Mailer | None = None,
) -> FastAPI:
    rt = Runtime("notify", settings, clock=clock, catalog=catalog)
    metrics = NotifyMetrics(rt.registry)
    the_mailer = mailer or SmtpMailer(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            implicit_tls=settings.smtp_implicit_tls,
            validate_certs=settings.smtp_validate_certs,
            cert_bundle=settings.smtp_cert_bundle,
            timeout=settings.smtp_timeout_seconds,
        ),
        sender=settings.mail_from,
        pool_size=settings.smtp_pool_size,
        per_session=settings.smtp_messages_per_session,
        on_session=metrics.smtp_session,
    )

    sms = sms_sender or _sms_sender(settings, metrics)
    channels = ("email", "sms") if sms is not None else ("email",)
    senders: dict[str, Mailer] = {"email": the_mailer}
    if sms is not None:
        senders["sms"] = sms

    async def wire(rt: Runtime) -> None:
        ledger = MongoLedger(rt.db)
        await ledger.create_indexes()
        delivery = Delivery(
            rt.catalog,
            ledger,
            rt.outbox,
            ByChannel(senders),
            rt.clock,
            metrics,
            rt.wake_relay,
            owner=f"{socket.gethostname()}:{os.getpid()}",
            attempts=settings.send_attempts,
            first_delay=settings.send_retry_seconds,
            lease=dt.timedelta(seconds=settings.lease_seconds),
            portal_url=settings.portal_url,
            channels=channels,
            quiet_hours=(settings.sms_quiet_start, settings.sms_quiet_end),
            fan_out=settings.notify_fan_out,
        )
        app.state.delivery = delivery
        handler = partial(on_event, delivery=delivery)
        # A thousand reminders are a thousand events of one or two messages each: the records
        # of a batch are handled concurrently (the ledger makes a redelivery a no-op, and no
        # notice depends on the order of another), Delivery.slots bounding the messages.
        subscribe = partial(rt.subscribe, handler=handler, concurrency=settings.notify_fan_out)
        subscribe(SUBMISSION_RECEIVED, "receipt")
        subscribe(DEADLINE_APPROACHING, "reminder")
        subscribe(DEADLINE_OVERDUE, "overdue")
        # One notice to the office per rung day instead of one per unit that still owes.
        subscribe(DEADLINE_SUMMARY, "summary")
        subscribe(REPORT_REVIEWED, "returned")
        subscribe(EXTENSION_DECIDED, "extension")
        subscribe(FILING_EXCEPTION_GRANTED, "exception")
        # v2: published for every version, also those whose v1 would not fit in a record.
        subscribe(REPORT_CONSOLIDATED_V2, "consolidated")

        async def retrier() -> None:
            # Pauses grow while nothing is due; an entry is due at the earliest a second
            # after it was scheduled, so a one-second pause while work exists loses nothing.
            pause = RETRY_PAUSE
            while True:
                try:
                    tried = await retry_due(delivery)
                    pause = RETRY_PAUSE if tried else min(RETRY_MAX_IDLE, pause * 2)
                    with contextlib.suppress(Exception):
                        if await ledger.inflight.count_documents({}):
                            pause = RETRY_PAUSE
                except Exception as error:  # MongoDB away: the entries wait in the ledger
                    log.warning("notify retrier: %s: %s", type(error).__name__, error)
                    pause = min(RETRY_MAX_IDLE, pause * 2)
                await asyncio.sleep(pause)

        rt.loop(retrier)

        async def say_goodbye() -> None:
            # Cancelled at shutdown: the pool's idle sessions say QUIT, within 2 s.
            try:
                await asyncio.Event().wait()
            finally:
                closers: list[Closable] = []
                for sender in (the_mailer, sms):
                    if isinstance(sender, Closable):
                        closers.append(sender)
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2):
                        await asyncio.gather(*(c.close() for c in closers))

        rt.loop(say_goodbye)

    app = rt.app(wire, title="baocao: thông báo")

    @app.get("/api/v1/notifications", responses=problems())
    async def notifications(
        request: Request,
        who: Staff,
        unit: str | None = None,
        period: str | None = None,
        limit: int = 100,
    ) -> list[Document]:
        """What was sent to whom: notices in flight (status ``pending``, with the last error
        and the next attempt), then finished ones, newest first: ``sent``, or ``failed`` with
        its ``error`` and ``permanent`` (true: refused; false: the retries ran out); an SMS
        with the ``sms_segments`` and ``sms_encoding`` it cost.
        ``unit`` and ``period`` narrow it to one unit's and/or one period's notices. Office
        staff read the notices of the plans their unit consolidates."""
        delivery: Any = getattr(request.app.state, "delivery", None)
        if delivery is None:
            raise not_ready()
        ledger: MongoLedger = delivery.ledger
        plans = [p.id for p in rt.catalog.plans.values() if who.acts_on(p)]
        return await ledger.list(
            min(max(limit, 1), 1000),
            unit_id=unit,
            period_id=period,
            plan_ids=plans if who.role is Role.OFFICE else None,
        )

    return app


def _sms_sender(settings: NotifySettings, metrics: NotifyMetrics) -> SmsSender | None:
    provider: SmsProvider
    if settings.sms_provider == "none":
        return None
    if settings.sms_provider == "log":
        provider = LogSmsProvider()
    else:
        assert settings.sms_gateway_url is not None  # the settings' validator says so
        token = settings.sms_gateway_token
        provider = HttpSmsGateway(
            settings.sms_gateway_url,
            headers={settings.sms_gateway_auth_header: token.get_secret_value()} if token else {},
            body_template=settings.sms_gateway_body,
            content_type=settings.sms_gateway_content_type,
            timeout=settings.sms_timeout_seconds,
            success_pattern=settings.sms_gateway_success_pattern,
            mismatch_permanent=settings.sms_gateway_mismatch_permanent,
        )
    return SmsSender(
        provider, without_diacritics=settings.sms_unaccented, on_segments=metrics.sms_segments
    )
