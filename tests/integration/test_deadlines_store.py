"""The deadlines store on the real MongoDB-wire server: writing twice is harmless."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.common.clock import FixedClock
from services.common.mongo import Document
from services.common.outbox import READY, Outbox, Ref
from services.common.periods import find_period
from services.deadlines.domain import Emission, due_emissions
from services.deadlines.store import EMISSIONS, MongoDeadlinesStore
from tests.conftest import Servers
from tests.support.mongo import outbox_size, outbox_view, throwaway_database
from tests.support.plans import three_units_plan

pytestmark = pytest.mark.integration

PLAN = three_units_plan()


@pytest.fixture
async def db(servers: Servers, namespace: str) -> AsyncIterator[AsyncDatabase[Document]]:
    async with throwaway_database(servers.mongo_uri, f"{namespace}_baocao_deadlines") as db:
        yield db


def a_store(db: AsyncDatabase[Document]) -> MongoDeadlinesStore:
    """A store as one process has it (a restart is another call)."""
    return MongoDeadlinesStore(db, Outbox(db, FixedClock(dt.datetime(2027, 6, 1, tzinfo=dt.UTC))))


def reminders() -> tuple[list[Emission], Emission]:
    period = find_period(PLAN, f"{PLAN.id}.2027.6-thang")
    assert period is not None
    now = period.due_at - dt.timedelta(days=3)
    emissions = due_emissions(PLAN, [period], {}, now, catch_up=dt.timedelta(days=30))
    return emissions, next(e for e in emissions if e.key.startswith("reminder|"))


async def test_an_emission_is_recorded_once_with_its_event_ready(
    db: AsyncDatabase[Document],
) -> None:
    store = a_store(db)
    await store.create_indexes()
    _, reminder = reminders()
    at = reminder.event.occurred_at
    assert store.known_decided(reminder.key) is False

    assert await store.record_emission(reminder, recorded_at=at) is True
    assert await store.record_emission(reminder, recorded_at=at) is False

    assert store.known_decided(reminder.key) is True
    [stored] = await store.emissions.find({}).to_list()
    assert stored["_id"] == reminder.key
    assert stored["event_id"] == str(reminder.event.event_id)
    assert (stored["period_id"], stored["unit_id"]) == (reminder.period_id, reminder.unit_id)
    [entry] = await outbox_view(db)
    assert entry["_id"] == str(reminder.event.event_id)
    assert entry["state"] == READY
    assert entry["key"] == reminder.unit_id
    assert entry["ref"] == {"collection": EMISSIONS, "id": reminder.key}


async def test_a_restarted_process_does_not_decide_again_after_the_relay(
    db: AsyncDatabase[Document],
) -> None:
    _, reminder = reminders()
    at = reminder.event.occurred_at
    assert await a_store(db).record_emission(reminder, recorded_at=at) is True
    for name in ("outbox", "outbox_ready"):  # relayed and removed
        await db[name].delete_many({})

    restarted = a_store(db)

    assert await restarted.record_emission(reminder, recorded_at=at) is False
    assert restarted.known_decided(reminder.key) is True
    assert await outbox_size(db) == 0  # the second intent was abandoned
    assert await db[EMISSIONS].count_documents({}) == 1


async def test_a_batch_records_the_new_decisions_and_leaves_the_others_as_they_are(
    db: AsyncDatabase[Document],
) -> None:
    # One chunk of a scan: one decision made by another replica, one queued by a process
    # that died before deciding it (its intent only), the rest new.
    emissions, _ = reminders()
    assert len(emissions) >= 4
    by_other, queued_only, *new = emissions
    at = dt.datetime(2027, 6, 1, tzinfo=dt.UTC)
    assert await a_store(db).record_emission(by_other, recorded_at=at)
    for name in ("outbox", "outbox_ready"):  # relayed and removed
        await db[name].delete_many({})
    dead = Outbox(db, FixedClock(at))
    await dead.intend(queued_only.serialized, Ref(EMISSIONS, queued_only.key))

    store = a_store(db)
    recorded = await store.record_emissions(emissions, recorded_at=at)

    assert [e.key for e in recorded] == [e.key for e in new]
    decided = {d["_id"]: d["event_id"] async for d in db[EMISSIONS].find({})}
    assert set(decided) == {by_other.key, *(e.key for e in new)}  # the intent is the relay's
    entries = await outbox_view(db)
    ready = {e["_id"] for e in entries if e["state"] == READY}
    assert ready == {e.event_id for e in new}
    assert [e["_id"] for e in entries if e["state"] != READY] == [queued_only.event_id]
    assert store.known_decided(by_other.key) and not store.known_decided(queued_only.key)
    # Again (a second scan of the same process, or another process): nothing new.
    assert await store.record_emissions(emissions, recorded_at=at) == []
    assert await a_store(db).record_emissions(new, recorded_at=at) == []
    assert {e["_id"] for e in await outbox_view(db) if e["state"] == READY} == ready


async def test_submissions_are_projected_idempotently(db: AsyncDatabase[Document]) -> None:
    store = a_store(db)
    at = dt.datetime(2027, 6, 1, 1, 2, 3, 456_789, tzinfo=dt.UTC)

    assert await store.record_submission("p.2027.a", "xa-a", at) is True
    assert await store.record_submission("p.2027.a", "xa-a", at + dt.timedelta(hours=1)) is False
    assert await store.record_submission("p.2027.a", "xa-b", at) is True
    assert await store.record_submission("p.2027.b", "xa-a", at) is True

    assert await store.submitted_units(["p.2027.a", "p.2027.c"]) == {"p.2027.a": {"xa-a", "xa-b"}}
    first = await db["submitted.p.2027.a"].find_one({"_id": "xa-a"})
    assert first is not None
    assert first["first_received_at"] == at.replace(microsecond=456_000)


async def test_a_returned_report_is_owed_until_a_later_version_arrives(
    db: AsyncDatabase[Document],
) -> None:
    store = a_store(db)
    period_id = f"{PLAN.id}.2027.6-thang"
    t0 = dt.datetime(2027, 6, 10, 3, tzinfo=dt.UTC)
    await store.record_submission(period_id, "xa-a", t0)
    assert await store.returned_units([period_id]) == {}

    await store.record_return(period_id, "xa-a", t0 + dt.timedelta(days=1))
    await store.record_return(period_id, "xa-a", t0 + dt.timedelta(hours=1))  # older: ignored
    assert await store.returned_units([period_id]) == {
        period_id: {"xa-a": t0 + dt.timedelta(days=1)}
    }
    # A version received before the return does not settle it; one after does.
    await store.record_submission(period_id, "xa-a", t0 + dt.timedelta(hours=2))
    assert period_id in await store.returned_units([period_id])
    await store.record_submission(period_id, "xa-a", t0 + dt.timedelta(days=2))
    assert await store.returned_units([period_id]) == {}
    # Returned again later: owed again.
    await store.record_return(period_id, "xa-a", t0 + dt.timedelta(days=3))
    assert await store.returned_units([period_id, "other"]) == {
        period_id: {"xa-a": t0 + dt.timedelta(days=3)}
    }


async def test_superseded_rungs_are_recorded_as_skipped_unless_decided_before(
    db: AsyncDatabase[Document],
) -> None:

    store = a_store(db)
    emissions, reminder = reminders()
    sent_before = next(e for e in emissions if e.key != reminder.key)
    assert await store.record_emission(sent_before, recorded_at=dt.datetime.now(dt.UTC))
    superseding = reminder._replace(skipped=(sent_before.key, "rung|p|u|b14", "rung|p|u|b7"))
    assert await store.record_emission(superseding, recorded_at=dt.datetime.now(dt.UTC))

    # A fresh process (nothing remembered): the one decided before stays as it was.
    again = a_store(db)
    recorded = await again.record_skipped([superseding], recorded_at=dt.datetime.now(dt.UTC))
    assert recorded == {"b14": 1, "b7": 1}
    kinds = {d["_id"]: d["kind"] async for d in db[EMISSIONS].find({})}
    assert kinds[sent_before.key] == sent_before.kind.value
    assert kinds["rung|p|u|b14"] == kinds["rung|p|u|b7"] == "skipped"
    recorded = await a_store(db).record_skipped([superseding], recorded_at=dt.datetime.now(dt.UTC))
    assert recorded == {}


async def test_decisions_are_read_back_by_period_with_units_only(
    db: AsyncDatabase[Document],
) -> None:
    store = a_store(db)
    await store.create_indexes()
    emissions, reminder = reminders()
    for emission in emissions:
        await store.record_emission(emission, recorded_at=reminder.event.occurred_at)

    found = await store.decisions(reminder.period_id)

    per_unit = sorted(e.key for e in emissions if e.unit_id)
    assert sorted(d["_id"] for d in found) == per_unit  # not the opening: it names no unit
    mine = next(d for d in found if d["_id"] == reminder.key)
    assert mine["due_since"] == reminder.event.occurred_at
    assert await store.decisions("kh-khac.2027.6-thang") == []


async def test_filing_exceptions_are_read_back_as_reopened_units(
    db: AsyncDatabase[Document],
) -> None:
    from contracts.events import FilingExceptionGrantedPayload
    from services.deadlines.domain import Reopened
    from services.deadlines.store import MongoTermsStore

    terms = MongoTermsStore(db)
    period_id = f"{PLAN.id}.2027.6-thang"
    granted = dt.datetime(2027, 7, 2, 3, tzinfo=dt.UTC)
    until = dt.datetime(2027, 7, 16, tzinfo=dt.UTC)
    await terms.record_exception(
        FilingExceptionGrantedPayload(
            plan_id=PLAN.id,
            period_id=period_id,
            unit_id="xa-a",
            exception_id="ex-1",
            reason="Mất điện kéo dài",
            until=until,
            granted_by="van-phong-1",
            granted_at=granted,
        )
    )
    assert await terms.reopened([period_id, "none"]) == {
        period_id: {"xa-a": Reopened(until=until, granted_at=granted)}
    }
