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
    TaskReport,
    UnitStatus,
)
from services.common.mongo import Document
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


def report(report_id: str, version: int) -> ReportConsolidated:
    return ReportConsolidated(
        occurred_at=AT,
        producer="consolidate",
        correlation_id=uuid.uuid4(),
        payload=ReportConsolidatedPayload(
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
        ),
    )


async def test_a_submission_is_projected_once_with_millisecond_times(
    store: MongoConsolidateStore,
) -> None:
    submission = SubmissionReceivedPayload(
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


async def test_report_ids_and_versions_are_unique(store: MongoConsolidateStore) -> None:
    first = report("r-1", 1)
    await store.add_report(first.payload, cause="c-1", content_hash="h-1", event_id="e-1")

    with pytest.raises(ReportExists):
        await store.add_report(
            report("r-1", 2).payload, cause="c-1", content_hash="h", event_id="e"
        )
    with pytest.raises(VersionTaken):
        await store.add_report(
            report("r-2", 1).payload, cause="c-2", content_hash="h", event_id="e"
        )
    await store.add_report(
        report("r-2", 2).payload, cause="c-2", content_hash="h-2", event_id="e-2"
    )

    latest = await store.latest("kh.2026.nam")
    assert latest is not None
    assert (latest.payload.report_id, latest.payload.version) == ("r-2", 2)
    listed = await store.reports("kh.2026.nam")
    assert [(r.payload.report_id, r.cause, r.content_hash, r.event_id) for r in listed] == [
        ("r-2", "c-2", "h-2", "e-2"),
        ("r-1", "c-1", "h-1", "e-1"),
    ]
    stored = await store.report("kh.2026.nam", "r-1")
    assert stored is not None
    assert stored.payload == first.payload  # to the microsecond, as published
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
