"""The office's summary (DeadlineSummary): one notice to the consolidating office's contacts
listing the units that still owe the report, delivered once like every other notice."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import uuid
from functools import partial

import pytest
import yaml
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry
from pymongo.errors import AutoReconnect

from contracts.events import DeadlineSummary, NotificationSent
from contracts.plan import Plan
from contracts.topics import DEADLINE_SUMMARY
from services.common.clock import FixedClock
from services.common.consumer import Consumption, Outcome, RetryPolicy
from services.common.failures import PermanentError
from services.common.kafka import Names
from services.common.metrics import CommonMetrics
from services.notify.domain import Outgoing, messages_for
from services.notify.handlers import on_event
from services.notify.store import SENT
from tests.support import notices
from tests.support.fakes import FakeLedger, MemoryDeadLetters
from tests.support.notify import NOW, SEED, FakeMailer, Notifier, transient

pytestmark = pytest.mark.unit

OFFICE = ["vanhoa@ngochoi.example", "truongphong.vanhoa@ngochoi.example"]
LEADERSHIP = ["ubnd@ngochoi.example"]
"""The office's parent in the seed plan (UBND huyện): told once the summary reaches it."""


def fresh(event: DeadlineSummary) -> DeadlineSummary:
    """The case with an id of its own (deadlines derives it from period and day)."""
    return event.model_copy(update={"event_id": uuid.uuid4()})


def plan_with_office_head() -> Plan:
    """The seed plan, where the office's Trưởng phòng has the duty of a head."""
    raw = copy.deepcopy(yaml.safe_load(SEED.read_text(encoding="utf-8")))
    office = next(u for u in raw["units"] if u["id"] == "phong-vhtt")
    office["contacts"][1]["duty"] = "head"
    return Plan.model_validate(raw)


def test_the_summary_goes_to_the_consolidating_office_not_to_the_units() -> None:
    plan = Notifier(FakeMailer()).catalog.plans[notices.PLAN_ID]

    messages = messages_for(notices.summary(overdue=False), plan, notices.PORTAL)

    assert [m.recipient for m in messages] == OFFICE
    assert {m.unit_id for m in messages} == {"phong-vhtt"}
    assert {m.template for m in messages} == {"summary"}
    text = messages[0].text
    # every pending unit by name, with its own due date (the extension's for Đắk Xú)
    assert "Ủy ban nhân dân xã Đắk Xú: hạn trước ngày 22/06/2027" in text
    assert "Ủy ban nhân dân xã Bờ Y: hạn trước ngày 15/06/2027" in text
    assert "Phòng Tư pháp: hạn trước ngày 15/06/2027" in text
    assert "còn 3 trên tổng số 25 đơn vị" in text


def test_an_overdue_summary_lists_the_overdue_units_first_and_reaches_head_and_leadership() -> None:
    plan = plan_with_office_head()
    before = messages_for(notices.summary(overdue=False), plan, notices.PORTAL)
    after = messages_for(notices.summary(overdue=True), plan, notices.PORTAL)

    assert [m.recipient for m in before] == OFFICE[:1]  # a head is told on escalation only
    assert [m.recipient for m in after] == OFFICE + LEADERSHIP
    # The leadership gets the same summary, one message for all units, addressed to itself.
    leadership = after[-1]
    assert (leadership.unit_id, leadership.template) == ("ubnd-huyen", "summary")
    assert leadership.text.startswith("Kính gửi: Ủy ban nhân dân huyện Ngọc Hồi,")
    assert leadership.text.rstrip().endswith("gửi cho Ủy ban nhân dân huyện Ngọc Hồi.")
    assert leadership.subject == after[0].subject
    lines = [line.strip() for line in after[0].text.splitlines() if line[:4] in ("  1.", "  2.")]
    assert all("đã quá hạn" in line for line in lines)
    assert "trong đó 2 đơn vị đã quá hạn" in after[0].text


def test_a_unit_the_plan_no_longer_lists_is_shown_by_its_id() -> None:
    plan = Notifier(FakeMailer()).catalog.plans[notices.PLAN_ID]
    event = notices.summary(overdue=False)
    gone = event.payload.pending[0].model_copy(update={"unit_id": "xa-da-sap-nhap"})
    event = event.model_copy(
        update={"payload": event.payload.model_copy(update={"pending": [gone]})}
    )

    [message, *_] = messages_for(event, plan, notices.PORTAL)

    assert "1. xa-da-sap-nhap: hạn trước ngày" in message.text
    assert message.subject.startswith("Tổng hợp ngày 11/06/2027: 1/25 đơn vị chưa gửi ")


async def test_the_summary_is_delivered_once_per_office_contact_and_announced() -> None:
    n = Notifier(FakeMailer())
    event = fresh(notices.summary(overdue=True))

    await on_event(event, delivery=n.delivery)
    await on_event(event, delivery=n.delivery)  # redelivered by Kafka

    told = OFFICE + LEADERSHIP  # overdue: the summary reaches the leadership
    assert sorted(m.recipient for m in n.mailer.sent) == sorted(told)
    assert n.mailer.calls == 3
    assert {o["status"] for o in n.ledger.outcomes.values()} == {SENT}
    assert set(n.ledger.outcomes) == {f"{event.event_id}|summary|email|{a}" for a in told}
    announced = n.outbox.events()
    assert len(announced) == 3
    assert all(isinstance(e, NotificationSent) for e in announced)
    assert {e.payload.template for e in announced} == {"summary"}  # type: ignore[attr-defined]
    assert n.outcome("duplicate") == 3


async def test_a_summary_whose_send_fails_is_retried_from_the_ledger() -> None:
    n = Notifier(FakeMailer(transient()), fan_out=1)
    event = fresh(notices.summary(overdue=False))

    await on_event(event, delivery=n.delivery)

    entry = n.only_in_flight()
    assert entry["template"] == "summary" and entry["attempts"] == 1
    assert await n.retry_when_due() == 1
    assert sorted(m.recipient for m in n.mailer.sent) == sorted(OFFICE)
    assert n.ledger.inflight == {}


async def test_a_summary_of_a_plan_not_loaded_is_refused_for_the_dead_letters() -> None:
    n = Notifier(FakeMailer())
    event = fresh(notices.summary(overdue=False))
    event = event.model_copy(
        update={"payload": event.payload.model_copy(update={"plan_id": "kh-khong-co"})}
    )

    with pytest.raises(PermanentError):
        await on_event(event, delivery=n.delivery)
    assert n.mailer.calls == 0


def test_summary_local_times_are_vietnamese() -> None:
    plan = Notifier(FakeMailer()).catalog.plans[notices.PLAN_ID]
    event = notices.summary(overdue=False)
    # 17:30 UTC on the 10th is 00:30 on the 11th in Hà Nội: the day named is the local one
    at = dt.datetime(2027, 6, 10, 17, 30, tzinfo=dt.UTC)
    event = event.model_copy(
        update={"payload": event.payload.model_copy(update={"summary_at": at})}
    )

    [message, *_] = messages_for(event, plan, notices.PORTAL)

    assert message.subject.startswith("Tổng hợp ngày 11/06/2027:")
    assert "Đến 00:30 ngày 11/06/2027 (giờ Việt Nam)" in message.text


# --- through the consumer: retried in place, dead-lettered like every other notice --------


class LedgerAwayOnce(FakeLedger):
    """MongoDB away for the first claim: the consumer retries the record in place."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    async def claim(
        self, message: Outgoing, owner: str, now: dt.datetime, lease: dt.timedelta
    ) -> bool:
        if not self.refused:
            self.refused += 1
            raise AutoReconnect("connection refused")
        return await super().claim(message, owner, now, lease)


def summary_record(event: DeadlineSummary) -> ConsumerRecord[bytes, bytes]:
    value = event.model_dump_json().encode()
    return ConsumerRecord(
        topic=DEADLINE_SUMMARY.name,
        partition=0,
        offset=11,
        timestamp=0,
        timestamp_type=0,
        key=event.payload.period_id.encode(),
        value=value,
        checksum=None,
        serialized_key_size=len(event.payload.period_id),
        serialized_value_size=len(value),
        headers=[("event_type", b"deadline.summary")],
    )


def consumption(dead_letters: MemoryDeadLetters) -> Consumption:
    return Consumption(
        "notify",
        Names("notify"),
        dead_letters,
        CommonMetrics(CollectorRegistry(), "notify"),
        FixedClock(NOW),
        RetryPolicy(max_attempts=3, first_delay=0.001, max_delay=0.002),
    )


async def test_a_summary_record_survives_the_ledger_being_away_and_is_sent_once() -> None:
    n = Notifier(FakeMailer())
    n.ledger = LedgerAwayOnce()
    n.delivery = dataclasses.replace(n.delivery, ledger=n.ledger)
    letters = MemoryDeadLetters()
    handler = partial(on_event, delivery=n.delivery)
    record = summary_record(fresh(notices.summary(overdue=False)))

    outcome = await consumption(letters).process(DEADLINE_SUMMARY, "summary", handler, record)

    assert outcome is Outcome.HANDLED
    assert sorted(m.recipient for m in n.mailer.sent) == sorted(OFFICE)
    assert letters.letters == {}


async def test_a_summary_record_of_an_unknown_plan_is_dead_lettered() -> None:
    n = Notifier(FakeMailer())
    letters = MemoryDeadLetters()
    event = fresh(notices.summary(overdue=False))
    event = event.model_copy(
        update={"payload": event.payload.model_copy(update={"plan_id": "kh-khong-co"})}
    )
    handler = partial(on_event, delivery=n.delivery)

    outcome = await consumption(letters).process(
        DEADLINE_SUMMARY, "summary", handler, summary_record(event)
    )

    assert outcome is Outcome.DEAD_LETTERED
    [letter] = letters.letters.values()
    assert letter["reason"] == "rejected" and "kh-khong-co" in letter["error"]
    assert n.mailer.calls == 0
