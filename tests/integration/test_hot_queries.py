"""The hot paths stay cheap on a store that scans: structural guards, no timings.

FerretDB 1.24 on SQLite reads by scanning a whole collection; it pushes down only a top-level
``_id`` equality (``explain`` says ``filterPushdown: true``), and even then it scans the table.
So (see bench/README.md):

- the large collections a request or a consumer touches are only ever *inserted* into, which
  costs the same whatever they hold: checked by recording, with pymongo's command monitoring,
  every command the path sends while the collection holds 3,000 documents;
- what the path reads is small, and read by ``_id``: each such query is taken from the
  recorded commands (so the guard follows the code) and put to the server's ``explain``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from contracts.events import DeadlineOverdue, DeadlineOverduePayload
from services.common.clock import FixedClock
from services.common.metrics import CommonMetrics
from services.common.mongo import Document
from services.common.outbox import Outbox, OutboxRelay, Ref
from services.common.periods import find_period
from services.common.reference import Catalog
from services.consolidate.files import GridFSFileStore
from services.consolidate.handlers import Consolidation, on_submission_received
from services.consolidate.metrics import ConsolidateMetrics
from services.consolidate.store import MongoConsolidateStore
from services.deadlines.domain import due_emissions
from services.deadlines.store import EMISSIONS, MongoDeadlinesStore
from services.notify.domain import Outgoing
from services.notify.handlers import Delivery, deliver, retry_due
from services.notify.mailer import Mailer, SendFailed
from services.notify.metrics import NotifyMetrics
from services.notify.store import MongoLedger
from services.submissions.handlers import submit
from services.submissions.store import MongoSubmissionsStore
from tests.conftest import Servers
from tests.support.events import submission_received
from tests.support.mongo import (
    Command,
    CommandLog,
    explain_find,
    is_ferretdb,
    outbox_size,
    throwaway_database,
)
from tests.support.plans import three_units_plan
from tests.support.submissions import SEED_OPEN_AT, SEED_PERIOD, intake, report

pytestmark = pytest.mark.integration

LARGE = 3_000
"""Documents in a large collection: enough that a scan would be the slowest thing here."""


@dataclass
class Recorded:
    db: AsyncDatabase[Document]
    log: CommandLog

    async def run(self, path: Callable[[], Awaitable[Any]]) -> list[Command]:
        """The commands ``path`` sends to the server."""
        with self.log.recording() as commands:
            await path()
        return list(commands)

    async def seed(self, collection: str, make: Callable[[int], Document]) -> None:
        """``LARGE`` documents in ``collection``, in batches (not recorded)."""
        for start in range(0, LARGE, 500):
            await self.db[collection].insert_many([make(i) for i in range(start, start + 500)])

    async def assert_pushed_down_by_id(self, commands: list[Command]) -> list[str]:
        """Every read, update or delete by ``_id`` alone is pushed down (on FerretDB);
        returns the collections they touched. (The collection must exist: on a missing one
        FerretDB's explain reports no pushdown.)"""
        touched = []
        for command in commands:
            for filter in command.filters:
                if set(filter) != {"_id"} or command.collection is None:
                    continue
                if isinstance(filter["_id"], dict):
                    # {"_id": {"$in": [...]}} is not pushed down: allowed on the small outbox
                    # collections only (the relay forgets a whole batch in one write).
                    assert command.collection in ("outbox", "outbox_ready"), command
                    continue
                explained = await explain_find(self.db, command.collection, filter)
                if is_ferretdb(explained):
                    assert explained["filterPushdown"] is True, (command, explained)
                touched.append(command.collection)
        return touched


@pytest.fixture
async def recorded(servers: Servers, namespace: str) -> AsyncIterator[Recorded]:
    log = CommandLog()
    async with throwaway_database(servers.mongo_uri, f"{namespace}_hot", log) as db:
        yield Recorded(db, log)


def only_inserts(commands: list[Command], collection: str) -> list[str]:
    return sorted({c.name for c in commands if c.collection == collection})


def reads(commands: list[Command]) -> set[str]:
    """Collections read (find, count, aggregate...) by these commands."""
    reading = {"find", "getMore", "count", "aggregate", "distinct", "findAndModify"}
    return {c.collection for c in commands if c.name in reading and c.collection}


# --- submissions: the intake ----------------------------------------------------------------


def history_row(i: int) -> Document:
    return {
        "_id": str(uuid.uuid4()),
        "period_id": SEED_PERIOD,
        "unit_id": f"don-vi-{i}",
        "revision": 1,
        "receipt_no": f"TN-2027-{i:06d}",
        "idempotency_id": None,
        "event_id": str(uuid.uuid4()),
        "tasks": [{"task_id": "nv", "status": "completed", "results": "Đã làm. " * 100}],
    }


async def test_a_submission_only_inserts_into_the_history(recorded: Recorded) -> None:
    """One keyed correction, with 3,000 reports in the period's history: the history receives
    one insert and nothing else; every read is by ``_id`` on a small collection."""
    intake_ = await intake(recorded.db, FixedClock(SEED_OPEN_AT))
    history = MongoSubmissionsStore.history_name(SEED_PERIOD)
    await submit(report("Bản đầu"), "bo-y-1", intake_)  # a head to correct, indexes made
    await recorded.seed(history, history_row)

    correction = await recorded.run(lambda: submit(report("Đính chính"), "bo-y-2", intake_))

    assert only_inserts(correction, history) == ["insert"]
    assert reads(correction) <= {f"heads.{SEED_PERIOD}", "idempotency", "counters", "outbox"}
    assert f"heads.{SEED_PERIOD}" in await recorded.assert_pushed_down_by_id(correction)

    repeated = await recorded.run(lambda: submit(report("Đính chính"), "bo-y-2", intake_))

    # The repeated key is answered from the key and the stored report, both read by _id:
    # the large collection is never searched by any other field.
    on_history = [c for c in repeated if c.collection == history]
    assert [c.name for c in on_history] == ["find"]
    assert all(set(f) == {"_id"} for c in on_history for f in c.filters)
    by_id = await recorded.assert_pushed_down_by_id(repeated)
    assert {"idempotency", history} <= set(by_id)


# --- the outbox relay ---------------------------------------------------------------------------


def overdue(unit_id: str, at: dt.datetime) -> DeadlineOverdue:
    return DeadlineOverdue(
        occurred_at=at,
        producer="deadlines",
        correlation_id=uuid.uuid4(),
        payload=DeadlineOverduePayload(
            plan_id="kh",
            period_id="kh.2027.6-thang",
            report_kind="6-thang",
            year=2027,
            due_at=at,
            unit_id=unit_id,
        ),
    )


async def test_the_relay_reads_the_small_outbox_and_settles_intents_by_id(
    recorded: Recorded,
) -> None:
    clock = FixedClock(SEED_OPEN_AT)
    outbox = Outbox(recorded.db, clock)
    history = "submissions.kh.2027.6-thang"
    await recorded.seed(history, history_row)
    await outbox.put(overdue("xa-a", clock.now()))
    intent = await outbox.intend(overdue("xa-b", clock.now()), Ref(history, "khong-co"))
    sent: list[str] = []

    async def delivered() -> None:
        return None

    async def publish(
        topic: str, key: str, value: bytes, headers: dict[str, str]
    ) -> Awaitable[None]:
        sent.append(key)
        return delivered()

    relay = OutboxRelay(
        outbox, publish, clock, CommonMetrics(CollectorRegistry(), "test"),
        settle_after=dt.timedelta(seconds=30),
    )  # fmt: skip
    clock.advance(dt.timedelta(minutes=1))

    one_pass = await recorded.run(relay.relay_once)

    assert sent == ["xa-a"]
    assert reads(one_pass) == {"outbox", "outbox_ready", history}
    # The history is asked for the announced document by _id only, and never written.
    assert [c.name for c in one_pass if c.collection == history] == ["find"]
    assert history in await recorded.assert_pushed_down_by_id(one_pass)
    [waiting] = [c for c in one_pass if c.name == "find" and c.collection == "outbox"]
    explained = await explain_find(recorded.db, "outbox", waiting.filters[0])
    # Not pushed down (a ``state`` filter), which is why entries leave the outbox once sent.
    if is_ferretdb(explained):
        assert explained["filterPushdown"] is False
    assert await outbox_size(recorded.db) == 0
    assert intent["_id"] not in sent


# --- consolidate: the projection --------------------------------------------------------------


async def test_projecting_a_submission_only_inserts_into_the_period_projection(
    recorded: Recorded,
) -> None:
    plan = three_units_plan()
    period = find_period(plan, f"{plan.id}.2027.6-thang")
    assert period is not None
    clock = FixedClock(period.opens_at + dt.timedelta(days=1))
    store = MongoConsolidateStore(recorded.db)
    c = Consolidation(
        Catalog({plan.id: plan}),
        store,
        Outbox(recorded.db, clock),
        clock,
        lambda: None,
        ConsolidateMetrics(CollectorRegistry()),
        GridFSFileStore(recorded.db),
    )
    projection = f"submissions.{period.id}"

    def row(i: int) -> Document:
        return {**history_row(i), "received_at": clock.now()}

    await recorded.seed(projection, row)
    # An earlier period has closed: ``periods`` exists (explain on a missing collection
    # reports no pushdown, as there is nothing to push down to).
    await store.mark_closed(f"{plan.id}.2026.6-thang", clock.now())
    event = submission_received(period, "xa-a", clock.now())

    commands = await recorded.run(lambda: on_submission_received(event, c=c))

    assert only_inserts(commands, projection) == ["insert"]
    assert reads(commands) == set()  # the period cannot have closed yet: nothing to ask

    # Near its close, one more read: whether it closed, by _id in the small ``periods``.
    clock.at = period.closes_at - dt.timedelta(minutes=5)
    late = submission_received(period, "xa-b", clock.now())
    commands = await recorded.run(lambda: on_submission_received(late, c=c))
    assert only_inserts(commands, projection) == ["insert"]
    assert reads(commands) == {"periods"}
    assert await recorded.assert_pushed_down_by_id(commands) == ["periods"]


# --- deadlines: who reported, and decisions ---------------------------------------------------


async def test_deadlines_record_submissions_and_decisions_by_insert_only(
    recorded: Recorded,
) -> None:
    plan = three_units_plan()
    period = find_period(plan, f"{plan.id}.2027.6-thang")
    assert period is not None
    now = period.due_at - dt.timedelta(days=3)
    store = MongoDeadlinesStore(recorded.db, Outbox(recorded.db, FixedClock(now)))

    def decision(i: int) -> Document:
        return {"_id": f"reminder|{i}", "kind": "reminder", "event_id": str(uuid.uuid4())}

    await recorded.seed(EMISSIONS, decision)
    emission = next(
        e
        for e in due_emissions(plan, [period], {}, now, catch_up=dt.timedelta(days=30))
        if e.key.startswith("reminder|")
    )

    projected = await recorded.run(
        lambda: store.record_submission(period.id, "xa-a", now - dt.timedelta(days=1))
    )
    decided = await recorded.run(lambda: store.record_emission(emission, recorded_at=now))

    # The one write besides the insert touches returned.<period>, which holds only the units
    # whose report was returned (none here): small by design, like the heads of submissions.
    assert [(c.name, c.collection) for c in projected] == [
        ("update", f"returned.{period.id}"),
        ("insert", f"submitted.{period.id}"),
    ]
    assert only_inserts(decided, EMISSIONS) == ["insert"]
    assert reads(decided) == set()
    # Deciding writes only inserts: the intent, the decision, and the committed ready copy
    # (FerretDB's updates cost three inserts, so the commit is not one).
    assert [(c.name, c.collection) for c in decided] == [
        ("insert", "outbox"),
        ("insert", EMISSIONS),
        ("insert", "outbox_ready"),
    ]


# --- notify: the delivery ledger --------------------------------------------------------------


class FailsOnce(Mailer):
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message: Outgoing) -> None:
        self.sent.append(message.notification_id)
        if len(self.sent) == 1:
            raise SendFailed("421 try again later", permanent=False)


def outgoing(i: int, cause: DeadlineOverdue) -> Outgoing:
    return Outgoing(
        notification_id=f"{cause.event_id}|overdue|email|xa{i}@example.org",
        channel="email",
        template="overdue",
        recipient=f"xa{i}@example.org",
        recipient_name="Cán bộ",
        subject="Quá hạn",
        text="Đã quá hạn.",
        unit_id="xa-a",
        plan_id="kh",
        period_id="kh.2027.6-thang",
        cause=cause,
    )


async def test_a_delivery_only_inserts_into_deliveries_and_outcomes(recorded: Recorded) -> None:
    """A notice claimed, failed once, retried and finished, with 3,000 notices delivered
    before: ``deliveries`` and ``outcomes`` only receive inserts; the in-flight entry is
    updated and deleted by ``_id``."""
    clock = FixedClock(SEED_OPEN_AT)
    ledger = MongoLedger(recorded.db)
    mailer = FailsOnce()
    delivery = Delivery(
        catalog=Catalog({}),
        ledger=ledger,
        outbox=Outbox(recorded.db, clock),
        mailer=mailer,
        clock=clock,
        metrics=NotifyMetrics(CollectorRegistry()),
        wake_relay=lambda: None,
        owner="test",
        first_delay=1.0,
    )
    cause = overdue("xa-a", clock.now())

    def past(i: int) -> Document:
        return {"_id": f"{uuid.uuid4()}|overdue|email|x{i}@example.org", "recipient": "x"}

    await recorded.seed("deliveries", past)
    await recorded.seed("outcomes", past)
    message = outgoing(1, cause)

    first = await recorded.run(lambda: deliver(message, delivery))
    clock.advance(dt.timedelta(minutes=5))
    retried = await recorded.run(lambda: retry_due(delivery))

    assert mailer.sent == [message.notification_id] * 2
    commands = first + retried
    assert only_inserts(commands, "deliveries") == ["insert"]
    assert only_inserts(commands, "outcomes") == ["insert"]
    assert reads(commands) <= {"inflight", "outbox"}
    inflight_by_id = [
        c.name for c in commands if c.collection == "inflight" and c.name in ("update", "delete")
    ]
    assert sorted(inflight_by_id) == ["delete", "update", "update"]
    assert "inflight" in await recorded.assert_pushed_down_by_id(commands)
    assert await recorded.db["inflight"].count_documents({}) == 0
