"""SMS rules (segments, không dấu, quiet hours) and the SMS channel of a delivery."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry

from contracts.events import NotificationSent
from services.common.clock import FixedClock
from services.common.reference import Catalog
from services.notify.domain import Outgoing
from services.notify.handlers import Delivery, on_event, retry_due
from services.notify.mailer import Mailer
from services.notify.metrics import NotifyMetrics
from services.notify.sms import ByChannel, LogSmsProvider, SmsSender
from services.notify.sms_rules import quiet_until, segments, unaccented
from tests.support import notices
from tests.support.fakes import FakeLedger, MemoryOutbox

pytestmark = pytest.mark.unit

SEED = Path(__file__).resolve().parents[2] / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
QUIET = (dt.time(21), dt.time(7))


def test_gsm7_text_is_160_a_segment_then_153() -> None:
    assert segments("a" * 160) == segments("a" * 160)
    assert (segments("a" * 160).encoding, segments("a" * 160).count) == ("gsm7", 1)
    assert segments("a" * 161).count == 2
    assert segments("a" * 306).count == 2
    assert segments("a" * 307).count == 3
    assert segments("[" * 80).count == 1  # two septets each
    assert segments("[" * 81).count == 2


def test_one_vietnamese_letter_makes_the_message_ucs2_70_then_67() -> None:
    assert (segments("ư" * 70).encoding, segments("ư" * 70).count) == ("ucs2", 1)
    assert segments("a" * 70 + "ư").count == 2
    assert segments("a" * 133 + "ư").count == 2
    assert segments("a" * 134 + "ư").count == 3


def test_unaccented_vietnamese_is_gsm7_and_shorter_in_segments() -> None:
    text = "UBND xã Đắk Xú: đã quá hạn Báo cáo 6 tháng năm 2027 – đề nghị gửi ngay “hôm nay”."

    plain = unaccented(text)

    assert plain == (
        'UBND xa Dak Xu: da qua han Bao cao 6 thang nam 2027 - de nghi gui ngay "hom nay".'
    )
    assert segments(plain).encoding == "gsm7"
    assert segments(text).encoding == "ucs2"
    assert segments(plain).count < segments(text).count


def local(hour: int, minute: int = 0, day: int = 14) -> dt.datetime:
    return dt.datetime(2027, 6, day, hour, minute, tzinfo=HCM)


@pytest.mark.parametrize(
    ("at", "until"),
    [
        (local(20, 59), None),
        (local(21, 0), local(7, 0, day=15)),
        (local(23, 30), local(7, 0, day=15)),
        (local(0, 10, day=15), local(7, 0, day=15)),
        (local(6, 59, day=15), local(7, 0, day=15)),
        (local(7, 0, day=15), None),
        (local(12, 0), None),
    ],
)
def test_quiet_hours_run_over_midnight_to_the_morning(
    at: dt.datetime, until: dt.datetime | None
) -> None:
    assert quiet_until(at.astimezone(dt.UTC), HCM, *QUIET) == until


def test_quiet_hours_within_one_day_and_none() -> None:
    assert quiet_until(local(13), HCM, dt.time(12), dt.time(14)) == local(14)
    assert quiet_until(local(15), HCM, dt.time(12), dt.time(14)) is None
    assert quiet_until(local(23), HCM, dt.time(0), dt.time(0)) is None


class RecordingMailer(Mailer):
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def send(self, message: Outgoing) -> None:
        self.sent.append(message)


class Setup:
    def __init__(self, at: dt.datetime, *, without_diacritics: bool = False) -> None:
        self.clock = FixedClock(at)
        self.ledger = FakeLedger()
        self.outbox = MemoryOutbox(self.clock)
        self.registry = CollectorRegistry()
        metrics = NotifyMetrics(self.registry)
        self.email = RecordingMailer()
        self.provider = LogSmsProvider()
        sms = SmsSender(
            self.provider, without_diacritics=without_diacritics, on_segments=metrics.sms_segments
        )
        self.delivery = Delivery(
            Catalog.load([SEED]),
            self.ledger,
            self.outbox,
            ByChannel({"email": self.email, "sms": sms}),
            self.clock,
            metrics,
            lambda: None,
            owner="here:1",
            portal_url="https://baocao.ngochoi.example",
            channels=("email", "sms"),
            quiet_hours=QUIET,
        )

    def metric(self, name: str, labels: dict[str, str]) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


async def test_an_sms_due_in_quiet_hours_waits_for_seven_in_the_morning() -> None:
    s = Setup(local(22, 15).astimezone(dt.UTC))

    await on_event(notices.sms_reminder(s.clock.now()), delivery=s.delivery)

    assert len(s.email.sent) == 1  # e-mail has no quiet hours
    assert s.provider.sent == []
    [waiting] = s.ledger.inflight.values()
    assert waiting["channel"] == "sms"
    assert waiting["attempts"] == 0
    assert s.metric("baocao_notifications_total", {"channel": "sms", "outcome": "deferred"}) == 1
    by_type = {"channel": "sms", "template": "reminder", "outcome": "deferred"}
    assert s.metric("baocao_notices_total", by_type) == 1

    s.clock.at = local(6, 59, day=15).astimezone(dt.UTC)
    assert await retry_due(s.delivery) == 0
    s.clock.at = local(7, 0, day=15).astimezone(dt.UTC)
    assert await retry_due(s.delivery) == 1

    [(number, text)] = s.provider.sent
    assert number == "+84900000028"
    assert text.startswith("UBND xã Bờ Y: chưa nhận được Báo cáo 6 tháng năm 2027")
    assert s.ledger.inflight == {}
    by_type = {"channel": "sms", "template": "reminder", "outcome": "sent"}
    assert s.metric("baocao_notices_total", by_type) == 1
    sent = [e for e in s.outbox.events() if isinstance(e, NotificationSent)]
    assert sorted(e.payload.channel for e in sent) == ["email", "sms"]


async def test_unaccented_sms_costs_fewer_segments_and_is_counted() -> None:
    s = Setup(local(10).astimezone(dt.UTC), without_diacritics=True)

    await on_event(notices.sms_reminder(s.clock.now()), delivery=s.delivery)

    [(_, text)] = s.provider.sent
    assert text.startswith("UBND xa Bo Y: chua nhan duoc Bao cao 6 thang nam 2027")
    assert text.isascii()
    gsm = s.metric("baocao_notify_sms_segments_total", {"encoding": "gsm7"})
    assert gsm == segments(text).count == 2  # 3 in UCS-2 with the diacritics kept


@pytest.mark.parametrize(
    ("without_diacritics", "cost"), [(False, (3, "ucs2")), (True, (2, "gsm7"))]
)
async def test_an_sms_notice_records_its_segments_and_encoding_as_sent(
    without_diacritics: bool, cost: tuple[int, str]
) -> None:
    s = Setup(local(10).astimezone(dt.UTC), without_diacritics=without_diacritics)

    await on_event(notices.sms_reminder(s.clock.now()), delivery=s.delivery)

    [(_, text)] = s.provider.sent
    assert (segments(text).count, segments(text).encoding) == cost
    outcomes = {o["recipient"]: o for o in s.ledger.outcomes.values()}
    assert (
        outcomes["+84900000028"]["sms_segments"],
        outcomes["+84900000028"]["sms_encoding"],
    ) == cost
    assert "sms_segments" not in outcomes["xaboy@ngochoi.example"]  # e-mail costs no segments
    sent = {
        e.payload.channel: e.payload for e in s.outbox.events() if isinstance(e, NotificationSent)
    }
    assert (sent["sms"].sms_segments, sent["sms"].sms_encoding) == cost
    assert sent["email"].sms_segments is None and sent["email"].sms_encoding is None
