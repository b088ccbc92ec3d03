"""The deadlines store on the real MongoDB-wire server: writing twice is harmless."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from services.common.mongo import connect
from services.common.periods import find_period
from services.deadlines.domain import due_emissions
from services.deadlines.store import MongoDeadlinesStore
from tests.conftest import Servers
from tests.integration.test_deadlines_service import PLAN

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(servers: Servers, namespace: str) -> AsyncIterator[MongoDeadlinesStore]:
    client = connect(servers.mongo_uri)
    name = f"{namespace}_baocao_deadlines"
    try:
        store = MongoDeadlinesStore(client[name])
        await store.create_indexes()
        yield store
        await client.drop_database(name)
    finally:
        await client.close()


async def test_an_emission_key_is_recorded_once(store: MongoDeadlinesStore) -> None:
    period = find_period(PLAN, f"{PLAN.id}.2027.6-thang")
    assert period is not None
    now = period.due_at - dt.timedelta(days=3)
    emissions = due_emissions(PLAN, [period], {}, now, catch_up=dt.timedelta(days=30))
    reminder = next(e for e in emissions if e.key.startswith("reminder|"))

    assert await store.record_emission(reminder, recorded_at=now) is True
    assert await store.record_emission(reminder, recorded_at=now) is False  # DuplicateKeyError
    assert await store.recorded_keys([e.key for e in emissions]) == {reminder.key}

    stored = await store.emissions.find_one({"_id": reminder.key})
    assert stored is not None
    assert stored["outbox"]["pending"] is True
    assert stored["outbox"]["event_id"] == str(reminder.event.event_id)
    assert stored["outbox"]["key"] == reminder.unit_id


async def test_submissions_are_projected_idempotently(store: MongoDeadlinesStore) -> None:
    at = dt.datetime(2027, 6, 1, tzinfo=dt.UTC)

    assert await store.record_submission("p.2027.a", "xa-a", at) is True
    assert await store.record_submission("p.2027.a", "xa-a", at + dt.timedelta(hours=1)) is False
    assert await store.record_submission("p.2027.a", "xa-b", at) is True
    assert await store.record_submission("p.2027.b", "xa-a", at) is True

    assert await store.submitted_units(["p.2027.a", "p.2027.c"]) == {"p.2027.a": {"xa-a", "xa-b"}}
    first = await store.submitted.find_one({"_id": "p.2027.a|xa-a"})
    assert first is not None
    assert first["first_received_at"] == at
