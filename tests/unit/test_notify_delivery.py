"""What notify sends for an event (``messages_for``) and how it delivers it (``deliver``,
``retry_due``), against in-memory fakes of the ledger and outbox."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import re
import unicodedata
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from pymongo.errors import AutoReconnect

from contracts.events import (
    DeadlineApproaching,
    DeadlineApproachingPayload,
    DeadlineOverdue,
    DeadlineOverduePayload,
    NotificationFailed,
    NotificationSent,
    SubmissionReceived,
    SubmissionReceivedPayload,
    Submitter,
    TaskReport,
)
from contracts.plan import Plan
from contracts.topics import NOTIFICATION_FAILED, NOTIFICATION_SENT
from services.common.failures import PermanentError
from services.common.reference import Catalog
from services.notify.domain import messages_for
from services.notify.handlers import deliver, on_event, retry_due
from services.notify.mailer import SendFailed
from services.notify.metrics import OUTCOME_LABELS, NotifyMetrics
from services.notify.store import FAILED, SENT
from tests.support.fakes import FakeLedger
from tests.support.notify import FIRST_DELAY, LEASE, FakeMailer, Notifier, transient

pytestmark = pytest.mark.unit

SEED = Path(__file__).resolve().parents[2] / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"
PLAN_ID = "kh-nq35-ngoc-hoi"
PERIOD = "kh-nq35-ngoc-hoi.2027.6-thang"
DUE_AT = dt.datetime(2027, 6, 14, 17, 0, tzinfo=dt.UTC)  # 15/06/2027 00:00 giờ Việt Nam
RECEIVED_AT = dt.datetime(2027, 6, 14, 16, 30, tzinfo=dt.UTC)  # 23:30 ngày 14/06/2027
NOW = dt.datetime(2027, 6, 14, 16, 31, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def plan() -> Plan:
    loaded = Catalog.load([SEED]).plan(PLAN_ID)
    assert loaded is not None
    return loaded


def plan_with_contacts(contacts: list[dict[str, Any]]) -> Plan:
    """The seed plan, with UBND xã Bờ Y's contacts replaced."""
    raw = yaml.safe_load(SEED.read_text(encoding="utf-8"))
    raw = copy.deepcopy(raw)
    unit = next(u for u in raw["units"] if u["id"] == "xa-bo-y")
    unit["contacts"] = contacts
    return Plan.model_validate(raw)


def receipt(
    *,
    unit_id: str = "xa-bo-y",
    revision: int = 1,
    on_time: bool = True,
    submitter: str = "Nguyễn Thị Hà",
    plan_id: str = PLAN_ID,
) -> SubmissionReceived:
    return SubmissionReceived(
        occurred_at=RECEIVED_AT,
        producer="submissions",
        correlation_id=uuid.uuid4(),
        payload=SubmissionReceivedPayload(
            submission_id=str(uuid.uuid4()),
            receipt_no="TN-2027-000042",
            plan_id=plan_id,
            period_id=PERIOD,
            unit_id=unit_id,
            revision=revision,
            received_at=RECEIVED_AT,
            due_at=DUE_AT,
            on_time=on_time,
            submitted_by=Submitter(name=submitter),
            tasks=[
                TaskReport(
                    task_id="ii-1-1-tuyen-truyen-giao-duc",
                    status="completed",
                    results="Tổ chức 4 buổi quán triệt.",
                )
            ],
        ),
    )


def reminder(days_before: int = 3) -> DeadlineApproaching:
    return DeadlineApproaching(
        occurred_at=NOW,
        producer="deadlines",
        correlation_id=uuid.uuid4(),
        payload=DeadlineApproachingPayload(
            plan_id=PLAN_ID,
            period_id=PERIOD,
            report_kind="6-thang",
            year=2027,
            due_at=DUE_AT,
            unit_id="xa-bo-y",
            days_before=days_before,
            reminder_at=NOW,
        ),
    )


def overdue() -> DeadlineOverdue:
    return DeadlineOverdue(
        occurred_at=NOW,
        producer="deadlines",
        correlation_id=uuid.uuid4(),
        payload=DeadlineOverduePayload(
            plan_id=PLAN_ID,
            period_id=PERIOD,
            report_kind="6-thang",
            year=2027,
            due_at=DUE_AT,
            unit_id="xa-bo-y",
        ),
    )


def nfc(text: str) -> bool:
    return unicodedata.is_normalized("NFC", text)


# --- messages_for ---------------------------------------------------------------------------


def test_a_receipt_names_the_receipt_number_and_local_times(plan: Plan) -> None:
    # The submitter's name arrives decomposed (NFD), as some keyboards send it.
    event = receipt(submitter=unicodedata.normalize("NFD", "Nguyễn Thị Hà"))

    [message] = messages_for(event, plan)

    assert message.template == "receipt"
    assert message.subject.startswith("Đã tiếp nhận ")
    assert "Báo cáo 6 tháng năm 2027" in message.subject
    assert message.subject.endswith("– Ủy ban nhân dân xã Bờ Y")
    assert nfc(message.subject)
    assert nfc(message.text)
    assert "Kính gửi: Ủy ban nhân dân xã Bờ Y," in message.text
    assert "TN-2027-000042" in message.text
    assert "23:30 ngày 14/06/2027 (giờ Việt Nam)" in message.text
    assert "trước ngày 15/06/2027" in message.text  # not the UTC date 14/06
    assert "Đúng hạn" in message.text
    assert "Người gửi:      Nguyễn Thị Hà" in message.text
    assert "Đơn vị tổng hợp: Phòng Văn hóa và Thông tin" in message.text


def test_a_late_correction_says_so(plan: Plan) -> None:
    [message] = messages_for(receipt(revision=3, on_time=False), plan)

    assert "bổ sung lần 2" in message.subject
    assert "bổ sung lần 2" in message.text
    assert "Quá hạn" in message.text
    assert "Đúng hạn" not in message.text


def test_a_receipt_does_not_say_bao_cao_twice(plan: Plan) -> None:
    [message] = messages_for(receipt(), plan)

    assert "báo cáo báo cáo" not in message.subject.lower()
    assert "báo cáo báo cáo" not in message.text.lower()


def test_a_reminder_says_how_many_days_are_left_and_the_local_due_date(plan: Plan) -> None:
    [message] = messages_for(reminder(days_before=3), plan)

    assert message.template == "reminder"
    assert message.subject == "Nhắc hạn: Báo cáo 6 tháng năm 2027 – còn 3 ngày"
    assert nfc(message.subject)
    assert nfc(message.text)
    assert "Kính gửi: Ủy ban nhân dân xã Bờ Y," in message.text
    assert "Hạn báo cáo: trước ngày 15/06/2027 (còn 3 ngày)" in message.text
    assert "Gửi về: Phòng Văn hóa và Thông tin" in message.text
    assert "{{" not in message.text
    assert "{#" not in message.text


def test_an_overdue_notice_names_the_unit_and_the_local_due_date(plan: Plan) -> None:
    [message] = messages_for(overdue(), plan)

    assert message.template == "overdue"
    assert message.subject == "Quá hạn: Báo cáo 6 tháng năm 2027 – Ủy ban nhân dân xã Bờ Y"
    assert nfc(message.subject)
    assert nfc(message.text)
    assert "Đã quá hạn báo cáo (trước ngày 15/06/2027)" in message.text
    assert "chưa nhận được Báo cáo 6 tháng năm 2027 của đơn vị" in message.text  # capitals kept


def test_one_message_per_contact_that_has_an_email_and_receives_email() -> None:
    plan = plan_with_contacts(
        [
            {"name": "A Khánh", "email": "xaboy@ngochoi.example", "receives": ["email", "sms"]},
            {"name": "Y Blông", "phone": "+84 900 000 099", "receives": ["sms"]},
            {"name": "Rơ Mah Hiền", "email": "chi-sms@ngochoi.example", "receives": ["sms"]},
            {"name": "Lê Văn Đức", "receives": ["email"]},  # no address to write to
            {"name": "Hồ Thị Xuân", "email": "chutich.boy@ngochoi.example"},  # email by default
        ]
    )
    event = receipt()

    messages = messages_for(event, plan)

    assert [(m.recipient, m.recipient_name) for m in messages] == [
        ("xaboy@ngochoi.example", "A Khánh"),
        ("chutich.boy@ngochoi.example", "Hồ Thị Xuân"),
    ]
    assert [m.notification_id for m in messages] == [
        f"{event.event_id}|receipt|email|xaboy@ngochoi.example",
        f"{event.event_id}|receipt|email|chutich.boy@ngochoi.example",
    ]
    assert all(m.channel == "email" and m.cause == event for m in messages)
    assert all(
        (m.unit_id, m.plan_id, m.period_id) == ("xa-bo-y", PLAN_ID, PERIOD) for m in messages
    )


def test_a_unit_with_two_email_contacts_gets_two_messages(plan: Plan) -> None:
    messages = messages_for(receipt(unit_id="phong-vhtt"), plan)

    assert [m.recipient for m in messages] == [
        "vanhoa@ngochoi.example",
        "truongphong.vanhoa@ngochoi.example",
    ]
    assert len({m.notification_id for m in messages}) == 2


def test_an_event_about_a_unit_or_period_the_plan_does_not_know_sends_nothing(plan: Plan) -> None:
    assert messages_for(receipt(unit_id="xa-khong-ton-tai"), plan) == []
    unknown_period = overdue().model_copy(
        update={
            "payload": overdue().payload.model_copy(
                update={"period_id": "kh-nq35-ngoc-hoi.2027.quy-1"}
            )
        }
    )
    assert messages_for(unknown_period, plan) == []


# --- deliver / on_event / retry_due --------------------------------------------------------


async def test_a_delivered_message_is_sent_and_announced_through_the_outbox() -> None:
    n = Notifier(FakeMailer())
    event = receipt()

    await on_event(event, delivery=n.delivery)

    [sent] = n.mailer.sent
    outcome = n.only_outcome()
    announced = n.announced()
    [entry] = n.outbox.all()
    assert sent.recipient == "xaboy@ngochoi.example"
    assert outcome["status"] == SENT
    assert outcome["event_id"] == entry["_id"] == str(announced.event_id)
    assert entry["topic"] == NOTIFICATION_SENT.name
    assert entry["key"] == "xa-bo-y"
    assert isinstance(announced, NotificationSent)
    assert announced.payload.notification_id == sent.notification_id == outcome["_id"]
    assert announced.payload.recipient == "xaboy@ngochoi.example"
    assert announced.payload.template == "receipt"
    assert announced.payload.cause_event_id == str(event.event_id)
    assert announced.payload.cause_event_type == "submission.received"
    assert announced.payload.attempts == 1
    assert announced.payload.sent_at == NOW
    assert announced.causation_id == event.event_id
    assert announced.correlation_id == event.correlation_id
    assert n.ledger.inflight == {}
    assert n.wakes == 1
    assert n.outcome("sent") == 1


async def test_a_redelivered_event_sends_nothing_new() -> None:
    n = Notifier(FakeMailer())
    event = receipt(unit_id="phong-vhtt")  # two contacts

    await on_event(event, delivery=n.delivery)
    await on_event(event, delivery=n.delivery)

    assert n.mailer.calls == 2
    assert len(n.ledger.outcomes) == 2
    assert len(n.outbox.all()) == 2
    assert n.outcome("sent") == 2
    assert n.outcome("duplicate") == 2
    assert n.wakes == 2


async def test_a_message_that_failed_for_good_is_not_sent_again_either() -> None:
    n = Notifier(FakeMailer(SendFailed("550 5.1.1 mailbox unavailable", permanent=True)))
    [message] = messages_for(overdue(), n.catalog.plans[PLAN_ID])

    await deliver(message, n.delivery)
    await deliver(message, n.delivery)

    assert n.mailer.calls == 1
    assert n.outcome("duplicate") == 1


async def test_a_message_in_flight_is_not_sent_by_a_redelivery_either() -> None:
    n = Notifier(FakeMailer(transient()))
    [message] = messages_for(reminder(), n.catalog.plans[PLAN_ID])

    await deliver(message, n.delivery)  # failed once, waits for the retrier
    await deliver(message, n.delivery)

    assert n.mailer.calls == 1
    assert n.outcome("duplicate") == 1


async def test_a_transient_failure_makes_one_attempt_and_schedules_the_next() -> None:
    n = Notifier(FakeMailer(transient()))

    await on_event(reminder(), delivery=n.delivery)

    entry = n.only_in_flight()
    assert n.mailer.calls == 1  # returned after one attempt
    assert n.clock.now() == NOW  # and did not wait for the next one
    assert entry["attempts"] == 1
    assert entry["last_error"] == "421 4.3.2 Service not available"
    # A jittered first_delay from now; the lease ends then, so any retrier may take it.
    wait = entry["next_attempt_at"] - NOW
    assert 0.8 * FIRST_DELAY - 0.001 <= wait.total_seconds() <= 1.2 * FIRST_DELAY
    assert entry["lease_until"] == entry["next_attempt_at"]
    assert n.ledger.outcomes == {}
    assert n.outbox.all() == []
    assert n.outcome("retried") == 1
    assert n.wakes == 0


async def test_the_retrier_sends_a_scheduled_message_when_it_is_due() -> None:
    n = Notifier(FakeMailer(transient()))
    await on_event(reminder(), delivery=n.delivery)

    assert await retry_due(n.delivery) == 0  # not due yet
    assert n.mailer.calls == 1
    assert await n.retry_when_due() == 1

    [sent] = n.mailer.sent
    announced = n.announced()
    assert isinstance(announced, NotificationSent)
    assert announced.payload.notification_id == sent.notification_id
    assert announced.payload.attempts == 2  # the sent event counts every attempt
    assert n.only_outcome()["status"] == SENT
    assert n.ledger.inflight == {}
    assert n.outcome("sent") == 1
    assert n.wakes == 1
    assert await retry_due(n.delivery) == 0  # nothing left


async def test_transient_failures_beyond_the_attempts_fail_the_message() -> None:
    n = Notifier(FakeMailer(*(transient() for _ in range(10))), attempts=3)

    await on_event(receipt(), delivery=n.delivery)
    await n.retry_when_due()
    await n.retry_when_due()

    outcome = n.only_outcome()
    assert n.mailer.calls == 3
    assert n.mailer.sent == []
    assert (outcome["status"], outcome["attempts"]) == (FAILED, 3)
    failed = n.announced()
    assert isinstance(failed, NotificationFailed)
    assert failed.payload.attempts == 3
    assert "421" in failed.payload.error
    # Gave up, not refused: and the record keeps why.
    assert failed.payload.permanent is False
    assert (outcome["error"], outcome["permanent"]) == (failed.payload.error, False)
    assert n.ledger.inflight == {}
    assert n.outcome("retried") == 2
    assert n.outcome("failed") == 1


async def test_a_permanent_failure_is_not_retried_and_is_announced() -> None:
    n = Notifier(FakeMailer(SendFailed("550 5.1.1 mailbox unavailable", permanent=True)))
    event = overdue()

    await on_event(event, delivery=n.delivery)

    outcome = n.only_outcome()
    [entry] = n.outbox.all()
    assert n.mailer.calls == 1
    assert n.mailer.sent == []
    assert outcome["status"] == FAILED
    assert entry["topic"] == NOTIFICATION_FAILED.name
    failed = n.announced()
    assert isinstance(failed, NotificationFailed)
    assert failed.payload.permanent is True
    assert failed.payload.attempts == 1
    assert failed.payload.error == "550 5.1.1 mailbox unavailable"
    assert (outcome["error"], outcome["permanent"]) == ("550 5.1.1 mailbox unavailable", True)
    assert failed.payload.cause_event_id == str(event.event_id)
    assert failed.payload.cause_event_type == "deadline.overdue"
    assert failed.payload.failed_at == NOW
    assert n.ledger.inflight == {}
    assert await retry_due(n.delivery) == 0
    assert n.outcome("failed") == 1
    assert n.wakes == 1


async def test_a_claim_left_by_a_crashed_process_is_sent_once_its_lease_ran_out() -> None:
    n = Notifier(FakeMailer())
    [message] = messages_for(reminder(), n.catalog.plans[PLAN_ID])
    await n.ledger.claim(message, "crashed:7", NOW, LEASE)  # then the process died

    assert await retry_due(n.delivery) == 0  # its lease still holds
    n.clock.advance(LEASE)
    assert await retry_due(n.delivery) == 1

    [sent] = n.mailer.sent
    assert sent.notification_id == message.notification_id
    assert sent.cause == message.cause
    announced = n.announced()
    assert announced.payload.attempts == 1


async def test_a_retried_delivery_resumes_its_attempt_count() -> None:
    n = Notifier(FakeMailer(), attempts=4)
    [message] = messages_for(reminder(), n.catalog.plans[PLAN_ID])
    await n.ledger.claim(message, "crashed:7", NOW, LEASE)
    # two failed tries recorded before the process died
    await n.ledger.attempted(message.notification_id, 2, "421", NOW + dt.timedelta(seconds=8))

    await n.retry_when_due()

    assert n.mailer.calls == 1
    assert n.announced().payload.attempts == 3


async def test_two_retriers_reading_the_same_entry_send_it_once() -> None:
    here = Notifier(FakeMailer(transient()))
    await on_event(reminder(), delivery=here.delivery)
    here.clock.at = here.only_in_flight()["next_attempt_at"]
    [entry] = await here.ledger.due(here.clock.now(), 10)

    assert await here.ledger.take_over(entry, "here:1", here.clock.now(), LEASE) is True
    assert await here.ledger.take_over(entry, "there:2", here.clock.now(), LEASE) is False
    assert await here.ledger.due(here.clock.now(), 10) == []  # leased again: not due


async def test_an_event_of_a_plan_not_loaded_here_is_rejected_for_good() -> None:
    n = Notifier(FakeMailer())

    with pytest.raises(PermanentError):
        await on_event(receipt(plan_id="ke-hoach-khac"), delivery=n.delivery)

    assert n.mailer.calls == 0
    assert n.ledger.deliveries == set()
    assert n.outbox.all() == []
    assert n.wakes == 0


class LedgerAwayOnFinish(FakeLedger):
    """The store goes away right after the mail server accepted the message (FerretDB
    restarting), for ``outages`` attempts to record it."""

    def __init__(self, outages: int) -> None:
        super().__init__()
        self.outages = outages

    async def finish(self, *args: Any, **kwargs: Any) -> bool:
        if self.outages:
            self.outages -= 1
            raise AutoReconnect("FerretDB đang khởi động lại")
        return await super().finish(*args, **kwargs)


async def test_a_sent_message_whose_outcome_cannot_be_stored_yet_is_not_sent_again() -> None:
    """Found by the fault suite: the outcome write failed after SMTP accepted the message, the
    entry stayed in flight and the retrier sent it again when its lease ran out."""
    n = Notifier(FakeMailer())
    n.ledger = LedgerAwayOnFinish(outages=2)
    n.delivery = dataclasses.replace(n.delivery, ledger=n.ledger)

    await on_event(receipt(), delivery=n.delivery)

    assert len(n.mailer.sent) == 1
    assert n.only_outcome()["status"] == SENT
    assert n.ledger.inflight == {}
    assert n.outcome("finish_retried") == 2
    n.clock.advance(LEASE * 2)
    assert await retry_due(n.delivery) == 0
    assert len(n.mailer.sent) == 1


def test_every_outcome_notify_counts_is_named_in_the_help_and_exists_from_the_start() -> None:
    # The values handlers pass to metrics.outcome (literals, and the ledger's final statuses).
    source = (Path(__file__).parents[2] / "services" / "notify" / "handlers.py").read_text()
    used = set(re.findall(r'metrics\.outcome\([^,]+, "([a-z_]+)"', source)) | {SENT, FAILED}
    assert "finish_retried" in used
    assert used <= set(OUTCOME_LABELS)
    registry = CollectorRegistry()
    NotifyMetrics(registry)
    (family,) = [f for f in registry.collect() if f.name == "baocao_notifications"]
    for outcome in OUTCOME_LABELS:
        assert f"{outcome}: " in family.documentation
        for channel in ("email", "sms"):
            labels = {"channel": channel, "outcome": outcome}
            assert registry.get_sample_value("baocao_notifications_total", labels) == 0
