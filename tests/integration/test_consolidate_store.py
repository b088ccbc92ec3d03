"""The consolidate store's guarantees, checked on the real MongoDB-wire server."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest

from contracts.events import (
    ReportConsolidated,
    ReportConsolidatedPayload,
    SubmissionReceivedPayload,
    TaskReport,
    UnitStatus,
)
from services.common.mongo import connect
from services.consolidate.store import MongoConsolidateStore, ReportExists, VersionTaken
from tests.conftest import Servers

pytestmark = pytest.mark.integration

AT = dt.datetime(2026, 6, 30, 1, 2, 3, 456_789, tzinfo=dt.UTC)


@pytest.fixture
async def store(servers: Servers, namespace: str) -> AsyncIterator[MongoConsolidateStore]:
    client = connect(servers.mongo_uri)
    name = f"{namespace}_baocao_consolidate"
    store = MongoConsolidateStore(client[name])
    await store.create_indexes()
    try:
        yield store
    finally:
        await client.drop_database(name)
        await client.close()


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

    assert await store.add_submission(submission) is True
    assert await store.add_submission(submission) is False
    (row,) = await store.submissions("kh.2026.nam")
    assert (row.submission_id, row.unit_id, row.revision) == ("s-1", "xa-a", 1)
    assert row.received_at == AT.replace(microsecond=456_000)
    assert row.tasks == tuple(submission.tasks)


async def test_report_ids_and_versions_are_unique(store: MongoConsolidateStore) -> None:
    first = report("r-1", 1)
    await store.add_report(first, cause="c-1")

    with pytest.raises(ReportExists):
        await store.add_report(report("r-1", 2), cause="c-1")
    with pytest.raises(VersionTaken):
        await store.add_report(report("r-2", 1), cause="c-2")
    await store.add_report(report("r-2", 2), cause="c-2")

    assert await store.latest_version("kh.2026.nam") == 2
    listed = await store.reports("kh.2026.nam")
    assert [(r.payload.report_id, r.cause, r.published) for r in listed] == [
        ("r-2", "c-2", False),
        ("r-1", "c-1", False),
    ]
    stored = await store.report("r-1")
    assert stored is not None
    assert stored.payload == first.payload
