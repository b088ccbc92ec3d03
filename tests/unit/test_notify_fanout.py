"""Fan-out: the messages of one event (or one retrier pass) go out a bounded number at once,
and one recipient's failure neither loses nor repeats another's message."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as dt
import uuid

import pytest
import yaml

from contracts.events import DeadlineApproaching, DeadlineApproachingPayload
from contracts.plan import Plan
from services.common.reference import Catalog
from services.notify.domain import Outgoing
from services.notify.fanout import each_bounded
from services.notify.handlers import on_event, retry_due
from services.notify.mailer import Mailer, SendFailed
from services.notify.store import FAILED, SENT
from tests.support.fakes import FakeLedger
from tests.support.notify import NOW, SEED, Notifier

pytestmark = pytest.mark.unit

PLAN_ID = "kh-nq35-ngoc-hoi"
DUE_AT = dt.datetime(2027, 6, 14, 17, 0, tzinfo=dt.UTC)
CONTACTS = 40


class BusyError(Exception):
    """A failure that is no SendFailed: a bug or an outage under the mailer."""


class CountingMailer(Mailer):
    """Takes a few loop turns per send, counting the sends in progress at once; fails the
    recipients it is told to, the way it is told to."""

    def __init__(self, fail: dict[str, Exception] | None = None) -> None:
        self.fail = dict(fail or {})
        self.in_progress = self.peak = 0
        self.sent: list[str] = []

    async def send(self, message: Outgoing) -> None:
        self.in_progress += 1
        self.peak = max(self.peak, self.in_progress)
        try:
            for _ in range(3):
                await asyncio.sleep(0)
            if message.recipient in self.fail:
                raise self.fail.pop(message.recipient)
            self.sent.append(message.recipient)
        finally:
            self.in_progress -= 1


def address(n: int) -> str:
    return f"can-bo-{n:02d}@ngochoi.example"


def many_contacts_catalog() -> Catalog:
    """The seed plan, where UBND xã Bờ Y has 40 officers with an e-mail address each."""
    raw = copy.deepcopy(yaml.safe_load(SEED.read_text(encoding="utf-8")))
    unit = next(u for u in raw["units"] if u["id"] == "xa-bo-y")
    unit["contacts"] = [{"name": f"Cán bộ số {n}", "email": address(n)} for n in range(CONTACTS)]
    return Catalog({PLAN_ID: Plan.model_validate(raw)})


def reminder() -> DeadlineApproaching:
    return DeadlineApproaching(
        occurred_at=NOW,
        producer="deadlines",
        correlation_id=uuid.uuid4(),
        payload=DeadlineApproachingPayload(
            plan_id=PLAN_ID,
            period_id="kh-nq35-ngoc-hoi.2027.6-thang",
            report_kind="6-thang",
            year=2027,
            due_at=DUE_AT,
            unit_id="xa-bo-y",
            days_before=3,
            reminder_at=NOW,
        ),
    )


def notifier(mailer: Mailer, fan_out: int) -> Notifier:
    n = Notifier(mailer, fan_out=fan_out)
    n.catalog = many_contacts_catalog()
    n.delivery = dataclasses.replace(n.delivery, catalog=n.catalog)
    return n


# --- each_bounded ---------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 3, 8])
async def test_never_more_than_the_bound_at_once_and_the_bound_is_used(limit: int) -> None:
    running = peak = 0
    done: list[int] = []

    async def work(item: int) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        running -= 1
        done.append(item)

    await each_bounded(range(20), limit, work)

    assert peak == limit
    assert sorted(done) == list(range(20))


async def test_a_failure_raises_only_after_every_other_item_has_ended() -> None:
    done: list[int] = []

    async def work(item: int) -> None:
        await asyncio.sleep(0)
        if item in (3, 7):
            raise BusyError(f"item {item}")
        await asyncio.sleep(0)
        done.append(item)

    with pytest.raises(BusyError, match="item 3"):  # the first in item order
        await each_bounded(range(12), 4, work)

    assert sorted(done) == [n for n in range(12) if n not in (3, 7)]


async def test_no_items_no_work() -> None:
    async def work(item: int) -> None:
        raise AssertionError("called")

    await each_bounded([], 4, work)


async def test_a_bound_below_one_is_refused() -> None:
    async def work(item: int) -> None:
        return None

    with pytest.raises(ValueError, match="at least 1"):
        await each_bounded([1], 0, work)


# --- a reminder to many contacts -------------------------------------------------------------


@pytest.mark.parametrize("fan_out", [1, 5])
async def test_a_reminder_to_many_contacts_is_sent_with_the_configured_bound(fan_out: int) -> None:
    mailer = CountingMailer()
    n = notifier(mailer, fan_out)

    await on_event(reminder(), delivery=n.delivery)

    assert mailer.peak == fan_out
    assert sorted(mailer.sent) == sorted(address(k) for k in range(CONTACTS))
    assert len(n.ledger.outcomes) == CONTACTS
    assert n.ledger.inflight == {}


async def test_one_transient_failure_is_scheduled_and_the_others_sent_once() -> None:
    mailer = CountingMailer({address(7): SendFailed("452 4.5.3 Too many", permanent=False)})
    n = notifier(mailer, 5)
    event = reminder()

    await on_event(event, delivery=n.delivery)  # returns: the failure waits in the ledger

    assert len(mailer.sent) == CONTACTS - 1
    [entry] = n.ledger.inflight.values()
    assert entry["recipient"] == address(7) and entry["attempts"] == 1
    n.clock.at = entry["next_attempt_at"]
    assert await retry_due(n.delivery) == 1
    await on_event(event, delivery=n.delivery)  # and a redelivery sends nothing new
    assert sorted(mailer.sent) == sorted(address(k) for k in range(CONTACTS))
    assert {o["status"] for o in n.ledger.outcomes.values()} == {SENT}


async def test_one_permanent_failure_fails_that_recipient_only() -> None:
    refused = SendFailed("550 5.1.1 mailbox unavailable", permanent=True)
    mailer = CountingMailer({address(3): refused})
    n = notifier(mailer, 5)

    await on_event(reminder(), delivery=n.delivery)

    statuses = {o["recipient"]: o["status"] for o in n.ledger.outcomes.values()}
    assert statuses.pop(address(3)) == FAILED
    assert set(statuses.values()) == {SENT} and len(statuses) == CONTACTS - 1


class LedgerAwayFor(FakeLedger):
    """The store refuses the claim of one recipient's message, once."""

    def __init__(self, recipient: str) -> None:
        super().__init__()
        self.recipient = recipient

    async def claim(
        self, message: Outgoing, owner: str, now: dt.datetime, lease: dt.timedelta
    ) -> bool:
        if message.recipient == self.recipient:
            self.recipient = ""
            raise BusyError("connection refused")
        return await super().claim(message, owner, now, lease)


async def test_an_error_on_one_recipient_is_raised_after_the_others_are_recorded() -> None:
    mailer = CountingMailer()
    n = notifier(mailer, 5)
    n.ledger = LedgerAwayFor(address(11))
    n.delivery = dataclasses.replace(n.delivery, ledger=n.ledger)
    event = reminder()

    with pytest.raises(BusyError):  # not acknowledged: the consumer runs it again
        await on_event(event, delivery=n.delivery)
    assert len(n.ledger.outcomes) == CONTACTS - 1  # every other recipient finished
    assert address(11) not in mailer.sent

    await on_event(event, delivery=n.delivery)  # the consumer's retry

    assert sorted(mailer.sent) == sorted(address(k) for k in range(CONTACTS))  # once each
    assert len(n.ledger.outcomes) == CONTACTS


async def test_the_retrier_takes_its_due_entries_with_the_same_bound() -> None:
    busy = {address(k): SendFailed("421 busy", permanent=False) for k in range(CONTACTS)}
    mailer = CountingMailer(busy)
    n = notifier(mailer, 4)
    await on_event(reminder(), delivery=n.delivery)
    assert len(n.ledger.inflight) == CONTACTS
    mailer.peak = 0

    n.clock.at = max(e["next_attempt_at"] for e in n.ledger.inflight.values())
    assert await retry_due(n.delivery) == CONTACTS

    assert mailer.peak == 4
    assert sorted(mailer.sent) == sorted(address(k) for k in range(CONTACTS))
    assert n.ledger.inflight == {}


async def test_events_handled_at_once_share_one_bound() -> None:
    # The consumer hands notify several records of a batch at once: still 5 messages at most.
    mailer = CountingMailer()
    n = notifier(mailer, 5)

    await asyncio.gather(*(on_event(reminder(), delivery=n.delivery) for _ in range(3)))

    assert mailer.peak == 5
    assert len(mailer.sent) == 3 * CONTACTS
    assert len(n.ledger.outcomes) == 3 * CONTACTS
