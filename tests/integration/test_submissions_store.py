"""``MongoSubmissionsStore`` and the intake (``handlers.submit``) on the real MongoDB-wire server.

The store is shaped for a server that scans (FerretDB): the history ``submissions.<period>`` is
insert-only, ``heads.<period>`` holds one small document per unit, ``idempotency`` the keys.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.common.clock import FixedClock
from services.common.mongo import Document
from services.common.outbox import INTENT, READY
from services.submissions import domain
from services.submissions.handlers import KEY_STALE_AFTER, Intake, submit
from services.submissions.store import (
    RECEIPT_BLOCK,
    KeyState,
    MongoSubmissionsStore,
    RevisionTaken,
    key_id,
)
from tests.conftest import Servers
from tests.support.mongo import outbox_size, outbox_view, throwaway_database
from tests.support.submissions import SEED_OPEN_AT, SEED_PERIOD, intake, report

pytestmark = pytest.mark.integration

PERIOD = SEED_PERIOD
AT = SEED_OPEN_AT
HISTORY = MongoSubmissionsStore.history_name(PERIOD)


@pytest.fixture
async def db(servers: Servers, namespace: str) -> AsyncIterator[AsyncDatabase[Document]]:
    async with throwaway_database(servers.mongo_uri, f"{namespace}_baocao_submissions") as db:
        yield db


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
    return {
        "_id": str(uuid.uuid4()),
        "period_id": period_id,
        "unit_id": unit_id,
        "revision": revision,
        "receipt_no": f"TN-2027-{revision:06d}",
        "received_at": AT + dt.timedelta(hours=revision),
        "idempotency_id": key,
        "tasks": [{"task_id": "nv", "status": "completed", "results": "Đã làm"}],
        **extra,
    }


# --- the store --------------------------------------------------------------------------------


async def test_the_history_of_a_period_gets_its_unique_revision_index_on_first_write(
    store: MongoSubmissionsStore, db: AsyncDatabase[Document]
) -> None:
    await store.insert(submission(1))

    indexes = {i["name"]: i for i in await (await db[HISTORY].list_indexes()).to_list()}
    revision = indexes["one_document_per_revision"]
    assert list(revision["key"]) == ["unit_id", "revision"]
    assert revision["unique"] is True
    keys = {i["name"]: i for i in await (await db["idempotency"].list_indexes()).to_list()}
    assert any(list(i["key"]) == ["expires_at"] for i in keys.values())


async def test_receipt_numbers_count_up_from_one(store: MongoSubmissionsStore) -> None:
    assert [await store.next_receipt_number() for _ in range(3)] == [1, 2, 3]


async def test_concurrent_receipt_numbers_of_two_replicas_are_all_distinct(
    db: AsyncDatabase[Document],
) -> None:
    # Two processes on one database: neither knows what the other issued. Each reserves
    # blocks of RECEIPT_BLOCK numbers, so both blocks are used, none twice.
    first, second = MongoSubmissionsStore(db), MongoSubmissionsStore(db)

    numbers = await asyncio.gather(
        *(s.next_receipt_number() for _ in range(RECEIPT_BLOCK) for s in (first, second))
    )

    assert sorted(numbers) == list(range(1, 2 * RECEIPT_BLOCK + 1))


async def test_a_restarted_process_continues_after_its_last_block(
    db: AsyncDatabase[Document],
) -> None:
    before = MongoSubmissionsStore(db)
    for _ in range(RECEIPT_BLOCK + 3):  # into the second block
        await before.next_receipt_number()

    after_restart = MongoSubmissionsStore(db)

    # The rest of the second block is a gap: a number is never issued twice.
    assert await after_restart.next_receipt_number() == 2 * RECEIPT_BLOCK + 1
    checkpoint = await db["counters"].find_one({"_id": "receipt"})
    assert checkpoint is not None
    assert checkpoint["n"] == 3 * RECEIPT_BLOCK


async def test_a_revision_stored_twice_is_revision_taken(store: MongoSubmissionsStore) -> None:
    await store.insert(submission(1))

    with pytest.raises(RevisionTaken):
        await store.insert(submission(1, receipt_no="TN-2027-000099"))

    assert [d["receipt_no"] for d in await store.history(PERIOD, "xa-bo-y")] == ["TN-2027-000001"]


async def test_the_same_revision_of_another_unit_or_period_is_not_taken(
    store: MongoSubmissionsStore, db: AsyncDatabase[Document]
) -> None:
    other_period = "kh-nq35-ngoc-hoi.2027.hang-nam"
    await store.insert(submission(1))

    await store.insert(submission(1, unit_id="xa-dak-ang"))
    await store.insert(submission(1, period_id=other_period))

    assert await db[HISTORY].count_documents({}) == 2
    assert await db[MongoSubmissionsStore.history_name(other_period)].count_documents({}) == 1


async def test_the_head_only_moves_forward(
    store: MongoSubmissionsStore, db: AsyncDatabase[Document]
) -> None:
    second, first = submission(2), submission(1)
    for doc in (second, first):
        await store.insert(doc)

    await store.advance_head(second)
    await store.advance_head(first)  # a slow writer of an older revision

    head = await store.head(PERIOD, "xa-bo-y")
    assert head is not None
    assert (head["_id"], head["revision"], head["submission_id"]) == ("xa-bo-y", 2, second["_id"])
    assert "tasks" not in head  # heads stay small: the report itself is in the history
    assert await db[f"heads.{PERIOD}"].count_documents({}) == 1
    assert await store.head(PERIOD, "xa-sa-loong") is None


async def test_latest_in_history_history_get_and_by_idempotency_id(
    store: MongoSubmissionsStore,
) -> None:
    keyed = submission(3, key=key_id("xa-bo-y", "bo-y-3"), submitted_by={"name": "Hà"})
    for doc in (submission(2), keyed, submission(1), submission(7, unit_id="xa-dak-ang")):
        await store.insert(doc)  # stored out of order

    latest = await store.latest_in_history(PERIOD, "xa-bo-y")
    history = await store.history(PERIOD, "xa-bo-y")

    assert latest is not None
    assert latest["revision"] == 3
    assert [d["revision"] for d in history] == [1, 2, 3]
    assert history[0]["received_at"] == AT + dt.timedelta(hours=1)
    assert await store.get(PERIOD, keyed["_id"]) == keyed
    assert await store.get(PERIOD, str(uuid.uuid4())) is None
    assert await store.by_idempotency_id(PERIOD, key_id("xa-bo-y", "bo-y-3")) == keyed
    assert await store.by_idempotency_id(PERIOD, key_id("xa-dak-ang", "bo-y-3")) is None
    assert await store.latest_in_history(PERIOD, "xa-sa-loong") is None
    assert await store.history(PERIOD, "xa-sa-loong") == []


async def test_an_idempotency_key_is_claimed_once_then_completed_or_released(
    store: MongoSubmissionsStore,
) -> None:
    ttl = dt.timedelta(hours=24)
    key = key_id("xa-bo-y", "k-1")

    first = await store.claim_key(key, "fp-1", PERIOD, AT, ttl)
    held = await store.claim_key(key, "fp-2", PERIOD, AT + dt.timedelta(seconds=1), ttl)

    assert first.state is KeyState.NEW
    assert (held.state, held.fingerprint, held.period_id) == (KeyState.IN_PROGRESS, "fp-1", PERIOD)
    assert held.claimed_at == AT
    await store.complete_key(key, "s-1")
    await store.release_key(key)  # a completed key is not released
    done = await store.claim_key(key, "fp-1", PERIOD, AT, ttl)
    assert (done.state, done.submission_id) == (KeyState.DONE, "s-1")

    other = key_id("xa-bo-y", "k-2")
    await store.claim_key(other, "fp-3", PERIOD, AT, ttl)
    await store.release_key(other)
    assert (await store.claim_key(other, "fp-4", PERIOD, AT, ttl)).state is KeyState.NEW

    assert await store.forget_expired_keys(AT + ttl - dt.timedelta(seconds=1)) == 0
    assert await store.forget_expired_keys(AT + ttl + dt.timedelta(seconds=1)) == 2


# --- the intake: regressions of issue 7 --------------------------------------------------------


async def test_150_concurrent_corrections_of_one_unit_get_revisions_1_to_150(
    db: AsyncDatabase[Document],
) -> None:
    """Guards the revision race: before the redesign, concurrent corrections of one unit raced
    on a read-then-insert of the latest revision and most of them were answered 409. Each lost
    race now costs one insert and the next revision is taken from the head."""
    clock = FixedClock(AT)
    wakes: list[int] = []
    intake_ = await intake(db, clock, wakes=wakes)
    count = 150

    results = await asyncio.gather(
        *(submit(report(f"Bản đính chính số {i}"), None, intake_) for i in range(count)),
        return_exceptions=True,
    )

    problems = [r for r in results if isinstance(r, BaseException)]
    assert problems == []
    stored = [doc for doc, created in results if created]  # type: ignore[misc]
    assert len(stored) == count
    assert sorted(d["revision"] for d in stored) == list(range(1, count + 1))
    assert len({d["receipt_no"] for d in stored}) == count
    history = await intake_.store.history(PERIOD, "xa-bo-y")
    assert [d["revision"] for d in history] == list(range(1, count + 1))
    by_revision = {d["revision"]: d for d in history}
    # Each revision supersedes exactly the one before it: a chain, not a fan.
    for revision in range(2, count + 1):
        assert by_revision[revision]["supersedes"] == by_revision[revision - 1]["_id"]
    head = await intake_.store.head(PERIOD, "xa-bo-y")
    assert head is not None
    assert head["revision"] == count
    # One event per stored revision, all ready for the relay; the lost races left nothing.
    entries = await outbox_view(db)
    assert len(entries) == count
    assert {e["state"] for e in entries} == {READY}
    assert {e["_id"] for e in entries} == {d["event_id"] for d in history}
    assert len(wakes) == count


async def test_the_same_key_with_another_body_is_refused_as_reused(
    db: AsyncDatabase[Document],
) -> None:
    """Guards the key's binding to its request: before, a key repeated with another body
    silently answered with the first report, and the second report was lost."""
    intake_ = await intake(db, FixedClock(AT))
    first, created = await submit(report("Bản đầu"), "bo-y-2027-1", intake_)
    assert created is True

    with pytest.raises(domain.SubmissionRejected) as caught:
        await submit(report("Một báo cáo khác"), "bo-y-2027-1", intake_)

    assert (caught.value.status, caught.value.code) == (422, "idempotency_key_reused")
    assert [d["_id"] for d in await intake_.store.history(PERIOD, "xa-bo-y")] == [first["_id"]]


async def test_the_same_key_and_body_answers_the_stored_submission(
    db: AsyncDatabase[Document],
) -> None:
    intake_ = await intake(db, FixedClock(AT))
    first, created = await submit(report(), "bo-y-2027-1", intake_)

    again, created_again = await submit(report(), "bo-y-2027-1", intake_)

    assert (created, created_again) == (True, False)
    assert again == first
    assert await db[HISTORY].count_documents({}) == 1
    assert await outbox_size(db) == 1
    # The key is bound to its unit: another unit may use the same key for its own report.
    other, other_created = await submit(report(unit_id="xa-dak-ang"), "bo-y-2027-1", intake_)
    assert other_created is True
    assert other["_id"] != first["_id"]


async def test_two_concurrent_requests_with_one_key_store_one_submission(
    db: AsyncDatabase[Document],
) -> None:
    intake_ = await intake(db, FixedClock(AT))

    results = await asyncio.gather(
        *(submit(report(), "bo-y-2027-1", intake_) for _ in range(2)), return_exceptions=True
    )

    assert await db[HISTORY].count_documents({}) == 1
    created = [r for r in results if isinstance(r, tuple) and r[1]]
    assert len(created) == 1
    for other in results:
        if other is created[0]:
            continue
        if isinstance(other, domain.SubmissionRejected):  # still running: "try again later"
            assert (other.status, other.code) == (409, "request_in_progress")
        else:
            assert isinstance(other, tuple)
            assert other[0]["_id"] == created[0][0]["_id"]


class DiesAfterTheInsert(MongoSubmissionsStore):
    """The process dies between storing a revision and moving the head (once)."""

    died = False

    async def advance_head(self, submission: Document) -> None:
        if not self.died:
            self.died = True
            raise RuntimeError("the process was killed here")
        await super().advance_head(submission)


async def test_a_key_whose_request_died_after_storing_is_completed_on_retry(
    db: AsyncDatabase[Document],
) -> None:
    """Guards recovery of a half-finished keyed request: the key stays claimed, a retry within
    30 s is told to wait, and a retry after that finds the stored report and finishes it
    (head, key) instead of storing the report twice or refusing it for ever."""
    clock = FixedClock(AT)
    base = await intake(db, clock)
    store = DiesAfterTheInsert(db)
    crashed = Intake(base.catalog, store, base.outbox, clock, base.wake_relay)
    with pytest.raises(RuntimeError):
        await submit(report(), "bo-y-2027-1", crashed)
    [stored] = await db[HISTORY].find({}).to_list()
    assert await store.head(PERIOD, "xa-bo-y") is None
    [entry] = await outbox_view(db)
    assert entry["state"] == INTENT  # never committed: the relay settles it (see outbox tests)

    clock.advance(KEY_STALE_AFTER - dt.timedelta(seconds=5))
    with pytest.raises(domain.SubmissionRejected) as caught:
        await submit(report(), "bo-y-2027-1", crashed)
    assert (caught.value.status, caught.value.code) == (409, "request_in_progress")

    clock.advance(dt.timedelta(seconds=10))
    resumed, created = await submit(report(), "bo-y-2027-1", crashed)

    assert created is False
    assert resumed["_id"] == stored["_id"]
    assert await db[HISTORY].count_documents({}) == 1
    head = await store.head(PERIOD, "xa-bo-y")
    assert head is not None
    assert head["submission_id"] == stored["_id"]
    key = await db["idempotency"].find_one({"_id": key_id("xa-bo-y", "bo-y-2027-1")})
    assert key is not None
    assert (key["state"], key["submission_id"]) == (KeyState.DONE.value, stored["_id"])
    assert await base.outbox.announced(entry) is True
    again, created_again = await submit(report(), "bo-y-2027-1", crashed)
    assert (again["_id"], created_again) == (stored["_id"], False)


class DiesBeforeTheInsert(MongoSubmissionsStore):
    """The process dies after claiming the key, before storing anything (once)."""

    died = False

    async def insert(self, submission: Document) -> None:
        if not self.died:
            self.died = True
            raise RuntimeError("the process was killed here")
        await super().insert(submission)


async def test_a_key_whose_request_died_before_storing_is_released_then_reusable(
    db: AsyncDatabase[Document],
) -> None:
    clock = FixedClock(AT)
    base = await intake(db, clock)
    crashed = Intake(base.catalog, DiesBeforeTheInsert(db), base.outbox, clock, base.wake_relay)
    with pytest.raises(RuntimeError):
        await submit(report(), "bo-y-2027-1", crashed)

    clock.advance(KEY_STALE_AFTER + dt.timedelta(seconds=1))
    with pytest.raises(domain.SubmissionRejected) as caught:
        await submit(report(), "bo-y-2027-1", crashed)
    assert (caught.value.status, caught.value.code) == (409, "request_in_progress")
    stored, created = await submit(report(), "bo-y-2027-1", crashed)

    assert created is True
    assert stored["revision"] == 1
    assert await db[HISTORY].count_documents({}) == 1
