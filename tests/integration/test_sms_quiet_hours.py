"""Quiet hours on the real ledger and a real HTTP SMS gateway: an SMS due at night waits in
FerretDB until 07:00 local, then goes out once; the e-mail of the same notice goes at once."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry

from contracts.events import (
    NotificationSent,
)
from services.common.clock import FixedClock
from services.common.reference import Catalog
from services.notify.handlers import Delivery, on_event, retry_due
from services.notify.mailer import SmtpConfig, SmtpMailer
from services.notify.metrics import NotifyMetrics
from services.notify.sms import ByChannel, HttpSmsGateway, SmsSender
from services.notify.store import MongoLedger
from tests.conftest import Servers
from tests.support import mailpit, notices
from tests.support.fakes import MemoryOutbox
from tests.support.mongo import throwaway_database
from tests.support.notices import SEED
from tests.support.sms_gateway import SmsGatewayServer
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
QUIET = (dt.time(21), dt.time(7))


def local(hour: int, minute: int = 0, day: int = 14) -> dt.datetime:
    return dt.datetime(2027, 6, day, hour, minute, tzinfo=HCM).astimezone(dt.UTC)


async def test_an_sms_due_at_night_waits_in_the_ledger_until_seven_then_goes_once(
    servers: Servers, namespace: str
) -> None:
    gateway = SmsGatewayServer()
    await gateway.start()
    clock = FixedClock(local(22, 15))
    token = uuid.uuid4().hex
    email = SmtpMailer(
        SmtpConfig(host=servers.smtp_host, port=servers.smtp_port, timeout=5),
        sender=f"Hệ thống báo cáo <{token}@baocao.example>",
    )
    sms = HttpSmsGateway(gateway.url, headers={"Authorization": "Bearer t0k3n"}, timeout=5)
    try:
        async with throwaway_database(servers.mongo_uri, f"{namespace}_quiet") as db:
            ledger = MongoLedger(db)
            delivery = Delivery(
                Catalog.load([SEED]),
                ledger,
                MemoryOutbox(clock),
                ByChannel({"email": email, "sms": SmsSender(sms)}),
                clock,
                NotifyMetrics(CollectorRegistry()),
                lambda: None,
                owner="here:1",
                channels=("email", "sms"),
                quiet_hours=QUIET,
            )
            event = notices.sms_reminder(clock.now())

            await on_event(event, delivery=delivery)

            assert gateway.received == []  # 22:15: the SMS waits
            [waiting] = await ledger.inflight.find({}).to_list()
            assert waiting["channel"] == "sms"
            assert waiting["next_attempt_at"].replace(tzinfo=dt.UTC) == local(7, 0, day=15)

            clock.at = local(6, 59, day=15)
            assert await retry_due(delivery) == 0
            assert gateway.received == []

            clock.at = local(7, 0, day=15)
            assert await retry_due(delivery) == 1
            await on_event(event, delivery=delivery)  # Kafka delivers the event again
            assert await retry_due(delivery) == 0

            [request] = gateway.received
            assert request.headers["authorization"] == "Bearer t0k3n"
            body = request.json()
            assert body["to"] == "+84900000028"
            assert body["text"].startswith("UBND xã Bờ Y: chưa nhận được Báo cáo 6 tháng")
            assert await ledger.inflight.count_documents({}) == 0
            sent = [e for e in delivery.outbox.events() if isinstance(e, NotificationSent)]  # type: ignore[attr-defined]
            assert sorted(e.payload.channel for e in sent) == ["email", "sms"]

        async def mailed() -> list[dict[str, object]]:
            return await mailpit.search(servers.mailpit_api, token)

        assert len(await eventually(mailed, what="the reminder's e-mail")) == 1
    finally:
        await email.close()
        await sms.close()
        await gateway.stop()
