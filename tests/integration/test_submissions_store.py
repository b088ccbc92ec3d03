"""``MongoSubmissionsStore`` on the real MongoDB-wire server (FerretDB locally)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.common.clock import FixedClock
from services.common.mongo import Document, connect
from services.common.reference import Catalog
from services.submissions.handlers import submit
from services.submissions.models import SubmissionCreate
from services.submissions.store import MongoSubmissionsStore, RevisionTaken, idempotency_id
from tests.conftest import Servers

pytestmark = pytest.mark.integration

SEED = Path(__file__).resolve().parents[2] / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"
PERIOD = "kh-nq35-ngoc-hoi.2027.6-thang"
AT = dt.datetime(2027, 6, 1, 3, 0, tzinfo=dt.UTC)

# Without a Docker engine the MongoDB-wire server is FerretDB 1.24 (SQLite backend); the
# bugs below show there and not on MongoDB 7 (testcontainers), hence the condition.


@pytest.fixture
async def db(servers: Servers, namespace: str) -> AsyncIterator[AsyncDatabase[Document]]:
    client = connect(servers.mongo_uri)
    name = f"{namespace}_baocao_submissions"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


@pytest.fixture
async def store(db: AsyncDatabase[Document]) -> MongoSubmissionsStore:
    store = MongoSubmissionsStore(db)
    await store.create_indexes()
    return store


def submission(
    revision: int,
    *,
    unit_id: str = "xa-bo-y",
    period_id: str = PERIOD,
    key: str | None = None,
    **extra: Any,
) -> Document:
    submission_id = str(uuid.uuid4())
    return {
        "_id": submission_id,
        "period_id": period_id,
        "unit_id": unit_id,
        "revision": revision,
        "receipt_no": f"TN-2027-{revision:06d}",
        "received_at": AT + dt.timedelta(hours=revision),
        "idempotency_id": idempotency_id(unit_id, key, submission_id),
        **extra,
    }


async def test_create_indexes_declares_both_unique_keys(store: MongoSubmissionsStore) -> None:
    await store.create_indexes()  # a second start-up changes nothing

    indexes = {i["name"]: i for i in await (await store.submissions.list_indexes()).to_list()}
    revision = indexes["one_document_per_revision"]
    assert list(revision["key"]) == ["period_id", "unit_id", "revision"]
    assert revision["unique"] is True
    by_key = next(i for i in indexes.values() if list(i["key"]) == ["idempotency_id"])
    assert by_key["unique"] is True


async def test_sequences_count_up_from_one_per_name(store: MongoSubmissionsStore) -> None:
    assert [await store.next_sequence("receipt") for _ in range(3)] == [1, 2, 3]
    assert await store.next_sequence("khac") == 1


async def test_concurrent_sequence_numbers_are_all_distinct(store: MongoSubmissionsStore) -> None:
    await store.next_sequence("receipt")  # the counter exists: only the increment races
    numbers: list[int] = []

    for _ in range(3):  # three bursts of twenty requests
        numbers += await asyncio.gather(*(store.next_sequence("receipt") for _ in range(20)))

    assert sorted(numbers) == list(range(2, 62))


async def test_the_first_concurrent_sequence_numbers_are_all_distinct(
    store: MongoSubmissionsStore,
) -> None:
    # No counter yet: twenty upserts race to create it, as on a fresh deployment.
    numbers = await asyncio.gather(*(store.next_sequence("receipt") for _ in range(20)))

    assert sorted(numbers) == list(range(1, 21))


async def test_a_revision_stored_twice_is_revision_taken(store: MongoSubmissionsStore) -> None:
    await store.insert(submission(1))

    with pytest.raises(RevisionTaken):
        await store.insert(submission(1, receipt_no="TN-2027-000099"))

    assert [d["receipt_no"] for d in await store.history(PERIOD, "xa-bo-y")] == ["TN-2027-000001"]


async def test_the_same_revision_of_another_unit_or_period_is_not_taken(
    store: MongoSubmissionsStore,
) -> None:
    await store.insert(submission(1))

    await store.insert(submission(1, unit_id="xa-dak-ang"))
    await store.insert(submission(1, period_id="kh-nq35-ngoc-hoi.2027.hang-nam"))

    assert await store.submissions.count_documents({}) == 3


async def test_a_repeated_idempotency_key_is_a_duplicate_key_not_a_revision_race(
    store: MongoSubmissionsStore,
) -> None:
    first = submission(1, key="bo-y-2027-1")
    await store.insert(first)

    with pytest.raises(DuplicateKeyError) as caught:
        await store.insert(submission(2, key="bo-y-2027-1"))

    assert not isinstance(caught.value, RevisionTaken)
    found = await store.by_idempotency_key("xa-bo-y", "bo-y-2027-1")
    assert found is not None
    assert found["_id"] == first["_id"]
    assert await store.by_idempotency_key("xa-dak-ang", "bo-y-2027-1") is None
    assert await store.submissions.count_documents({}) == 1


async def test_latest_is_the_highest_revision_and_history_is_in_revision_order(
    store: MongoSubmissionsStore,
) -> None:
    for revision in (2, 3, 1):  # stored out of order
        await store.insert(submission(revision))
    await store.insert(submission(7, unit_id="xa-dak-ang"))

    latest = await store.latest(PERIOD, "xa-bo-y")
    history = await store.history(PERIOD, "xa-bo-y")

    assert latest is not None
    assert latest["revision"] == 3
    assert [d["revision"] for d in history] == [1, 2, 3]
    assert history[0]["received_at"] == AT + dt.timedelta(hours=1)
    assert await store.latest(PERIOD, "xa-sa-loong") is None
    assert await store.history(PERIOD, "xa-sa-loong") == []


async def test_get_finds_a_submission_by_id(store: MongoSubmissionsStore) -> None:
    doc = submission(1, submitted_by={"name": "Nguyễn Thị Hà"})
    await store.insert(doc)

    found = await store.get(doc["_id"])

    assert found == doc
    assert await store.get(str(uuid.uuid4())) is None


class LookupsMeet(MongoSubmissionsStore):
    """Both requests look their key up before either inserts: the race the handler handles."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db)
        self._meeting = asyncio.Barrier(2)
        self._first_lookups = 0

    async def by_idempotency_key(self, unit_id: str, key: str) -> Document | None:
        found = await super().by_idempotency_key(unit_id, key)
        if self._first_lookups < 2:
            self._first_lookups += 1
            await asyncio.wait_for(self._meeting.wait(), timeout=10)
        return found


async def test_two_concurrent_requests_with_one_key_store_one_submission(
    db: AsyncDatabase[Document],
) -> None:
    store = LookupsMeet(db)
    await store.create_indexes()
    await store.next_sequence("receipt")  # the counter exists; only the key races here
    catalog = Catalog.load([SEED])
    request = SubmissionCreate.model_validate(
        {
            "period_id": PERIOD,
            "unit_id": "xa-bo-y",
            "submitted_by": {"name": "Nguyễn Thị Hà"},
            "tasks": [
                {
                    "task_id": "ii-1-1-tuyen-truyen-giao-duc",
                    "status": "completed",
                    "results": "Tổ chức 4 buổi quán triệt Nghị quyết 35-NQ/TW.",
                }
            ],
        }
    )

    async def attempt() -> tuple[Document, bool]:
        return await submit(
            request,
            "bo-y-2027-1",
            catalog=catalog,
            store=store,
            clock=FixedClock(AT),
            wake_relay=lambda: None,
        )

    (first, first_created), (second, second_created) = await asyncio.gather(attempt(), attempt())

    assert sorted([first_created, second_created]) == [False, True]
    assert first["_id"] == second["_id"]
    assert first["receipt_no"] == second["receipt_no"]
    assert await store.submissions.count_documents({}) == 1
