"""The consolidate store's guarantees, checked on the real MongoDB-wire server."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from contracts.events import (
    ReportConsolidated,
    ReportConsolidatedPayload,
    SubmissionReceivedPayload,
    TaskEntry,
    TaskReport,
    TaskResults,
    UnitStatus,
)
from contracts.report_v2 import ReportConsolidatedV2Payload
from services.common.clock import FixedClock
from services.common.mongo import Document
from services.common.outbox import Outbox, Ref
from services.consolidate.detail import detail_file, split, with_detail
from services.consolidate.store import MongoConsolidateStore, ReportExists, VersionTaken
from tests.conftest import Servers
from tests.support.mongo import throwaway_database

pytestmark = pytest.mark.integration

AT = dt.datetime(2026, 6, 30, 1, 2, 3, 456_789, tzinfo=dt.UTC)


@pytest.fixture
async def db(servers: Servers, namespace: str) -> AsyncIterator[AsyncDatabase[Document]]:
    async with throwaway_database(servers.mongo_uri, f"{namespace}_baocao_consolidate") as db:
        yield db


@pytest.fixture
async def store(db: AsyncDatabase[Document]) -> MongoConsolidateStore:
    store = MongoConsolidateStore(db)
    await store.create_indexes()
    return store


def whole(report_id: str, version: int) -> ReportConsolidatedPayload:
    return ReportConsolidatedPayload(
        report_id=report_id,
        version=version,
        trigger="requested",
        plan_id="kh",
        period_id="kh.2026.nam",
        report_kind="nam",
        year=2026,
        title="Báo cáo năm 2026",
        due_at=AT,
        consolidated_at=AT.replace(microsecond=456_000),
        expected=1,
        received=0,
        on_time=0,
        late=0,
        missing=1,
        units=[UnitStatus(unit_id="xa-a", unit_name="UBND xã A", status="missing")],
        tasks=[TaskResults(task_id="viec", section="I", title="Việc", entries=[])],
        content_hash="a" * 64,
    )


def report(report_id: str, version: int) -> ReportConsolidatedV2Payload:
    """A version as the store records it: its v2 payload, the detail in a file."""
    summary, detail = split(whole(report_id, version))
    return with_detail(summary, detail_file(detail, version), public_url="http://consolidate")


def first_submission() -> SubmissionReceivedPayload:
    """Unit xa-a's first revision for kh.2026.nam, received (late) at ``AT``."""
    return SubmissionReceivedPayload(
        submission_id="s-1",
        receipt_no="BC-1",
        plan_id="kh",
        period_id="kh.2026.nam",
        unit_id="xa-a",
        revision=1,
        received_at=AT,
        due_at=AT,
        on_time=False,
        tasks=[TaskReport(task_id="viec", status="completed", results="Đã làm xong")],
    )


async def test_a_submission_is_projected_once_with_millisecond_times(
    store: MongoConsolidateStore,
) -> None:
    submission = first_submission()
    other_period = submission.model_copy(
        update={"submission_id": "s-2", "period_id": "kh.2027.nam"}
    )

    assert await store.add_submission(submission) is True
    assert await store.add_submission(submission) is False
    assert await store.add_submission(other_period) is True

    (row,) = [r async for r in store.submissions("kh.2026.nam")]
    assert (row.submission_id, row.unit_id, row.revision) == ("s-1", "xa-a", 1)
    assert row.received_at == AT.replace(microsecond=456_000)
    assert row.tasks == tuple(submission.tasks)
    assert [r.submission_id async for r in store.submissions("kh.2027.nam")] == ["s-2"]
    assert [r async for r in store.submissions("kh.2028.nam")] == []


async def test_a_batch_is_projected_per_period_telling_the_ones_already_there(
    store: MongoConsolidateStore,
) -> None:
    first = first_submission()
    second = first.model_copy(update={"submission_id": "s-2", "revision": 2})
    elsewhere = first.model_copy(update={"submission_id": "s-3", "period_id": "kh.2027.nam"})
    assert await store.add_submission(first) is True

    added = await store.add_submissions([first, second, elsewhere, second])

    assert added == [False, True, True, False]
    rows = [r async for r in store.submissions("kh.2026.nam")]
    assert sorted((r.submission_id, r.revision) for r in rows) == [("s-1", 1), ("s-2", 2)]
    assert [r.submission_id async for r in store.submissions("kh.2027.nam")] == ["s-3"]


async def test_report_ids_and_versions_are_unique(store: MongoConsolidateStore) -> None:
    first = report("r-1", 1)
    await store.add_report(first, cause="c-1", content_hash="h-1", event_id="e-1")

    with pytest.raises(ReportExists):
        await store.add_report(report("r-1", 2), cause="c-1", content_hash="h", event_id="e")
    with pytest.raises(VersionTaken):
        await store.add_report(report("r-2", 1), cause="c-2", content_hash="h", event_id="e")
    await store.add_report(
        report("r-2", 2), cause="c-2", content_hash="h-2", event_id="e-2", v1_event_id="e-2-v1"
    )

    latest = await store.latest("kh.2026.nam")
    assert latest is not None
    assert (latest.payload.report_id, latest.payload.version) == ("r-2", 2)
    listed = await store.reports("kh.2026.nam")
    assert [
        (r.payload.report_id, r.cause, r.content_hash, r.event_id, r.v1_event_id) for r in listed
    ] == [
        ("r-2", "c-2", "h-2", "e-2", "e-2-v1"),
        ("r-1", "c-1", "h-1", "e-1", None),
    ]
    stored = await store.report("kh.2026.nam", "r-1")
    assert stored is not None
    assert stored.payload == first  # to the microsecond, as published
    assert stored.inline_detail is None  # in its file
    assert await store.report("kh.2026.nam", "r-9") is None
    assert await store.latest("kh.2027.nam") is None
    assert await store.reports("kh.2027.nam") == []


async def test_a_period_is_marked_closed_once(
    store: MongoConsolidateStore, db: AsyncDatabase[Document]
) -> None:
    assert await store.is_closed("kh.2026.nam") is False

    await store.mark_closed("kh.2026.nam", AT)
    await store.mark_closed("kh.2026.nam", AT.replace(year=2027))  # a redelivered close

    assert await store.is_closed("kh.2026.nam") is True
    assert await store.is_closed("kh.2027.nam") is False
    [closed] = await db["periods"].find({}).to_list()
    assert closed == {"_id": "kh.2026.nam", "closed_at": AT.replace(microsecond=456_000)}


async def test_a_version_recorded_before_v2_reads_as_its_summary_and_inline_detail(
    store: MongoConsolidateStore, db: AsyncDatabase[Document]
) -> None:
    old = whole("r-0", 1).model_copy(
        update={
            "tasks": [
                TaskResults(
                    task_id="viec",
                    section="I",
                    title="Việc",
                    entries=[TaskEntry(unit_id="xa-a", status="completed", results="Xong")],
                )
            ]
        }
    )
    await store.latest("kh.2026.nam")  # the collection and its index, as the old code made
    await db[store.reports_name("kh.2026.nam")].insert_one(
        {  # what add_report wrote before v2
            "_id": "r-0",
            "version": 1,
            "trigger": "requested",
            "cause": "c-0",
            "content_hash": "a" * 64,
            "event_id": "e-0",
            "consolidated_at": old.consolidated_at,
            "payload": old.model_dump(mode="json"),
        }
    )

    stored = await store.report("kh.2026.nam", "r-0")

    assert stored is not None
    summary, detail = split(old)
    assert stored.payload == summary
    assert not isinstance(stored.payload, ReportConsolidatedV2Payload)
    assert stored.inline_detail == detail
    assert (stored.event_id, stored.v1_event_id) == ("e-0", "e-0")
    assert stored.payload.tasks[0].statuses == {"completed": 1}


async def test_an_intent_of_either_event_of_a_version_is_settled_as_announced(
    store: MongoConsolidateStore, db: AsyncDatabase[Document]
) -> None:
    """A crash between the report and the commit leaves intents: the relay publishes each
    whose version was recorded, v1's as well as v2's (both named in ``event_ids``)."""
    outbox = Outbox(db, FixedClock(AT))
    announced = Ref(store.reports_name("kh.2026.nam"), "r-1")
    v1 = ReportConsolidated(
        occurred_at=AT,
        producer="consolidate",
        correlation_id=uuid.uuid4(),
        payload=whole("r-1", 1),
    )
    v1_entry = await outbox.intend(v1, announced)
    await store.add_report(
        report("r-1", 1), cause="c", content_hash="h", event_id="e-v2", v1_event_id=v1_entry["_id"]
    )
    stray = await outbox.intend(v1.model_copy(update={"event_id": uuid.uuid4()}), announced)

    assert await outbox.announced(v1_entry) is True
    assert await outbox.announced({**v1_entry, "_id": "e-v2"}) is True
    assert await outbox.announced(stray) is False
