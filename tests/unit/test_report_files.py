"""Each report version gets its files, stored before its event is committed."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import uuid

import docx
import pytest
from prometheus_client import CollectorRegistry

from contracts.events import (
    PeriodClosed,
    PeriodClosedPayload,
    ReportConsolidated,
    SubmissionReceived,
    SubmissionReceivedPayload,
    TaskReport,
)
from contracts.report_v2 import ReportConsolidatedV2, ReportConsolidatedV2Payload
from services.common.clock import FixedClock
from services.common.periods import find_period
from services.common.reference import Catalog
from services.consolidate.documents import RenderedFile
from services.consolidate.handlers import (
    Consolidation,
    consolidate_now,
    on_period_closed,
    on_submission_received,
)
from services.consolidate.metrics import ConsolidateMetrics
from services.consolidate.store import VersionTaken
from tests.support.fakes import FakeConsolidateStore, MemoryOutbox
from tests.support.plans import make_plan, report_kind, task, unit
from tests.support.report_files import MemoryFileStore

pytestmark = pytest.mark.unit

PLAN = make_plan(
    plan_id="kh-tep",
    consolidating_unit_id="phong-a",
    units=[unit("phong-a", "Phòng A", "specialised_office"), unit("xa-b", "UBND xã B", "commune")],
    tasks=[task("viec-1", "I", "Việc 1", ["phong-a", "xa-b"])],
    schedule=[
        report_kind("nam", "Báo cáo năm", due_before="11-20", data_from="01-01", data_to="11-19")
    ],
)
PERIOD_ID = "kh-tep.2026.nam"
FOUND = find_period(PLAN, PERIOD_ID)
assert FOUND is not None
PERIOD = FOUND
NOW = PERIOD.closes_at + dt.timedelta(minutes=1)
PUBLIC = "https://tong-hop.example/co-so"


class CommitSpy(MemoryOutbox):
    """Checks, when the event is committed, that its files and report are already stored."""

    def __init__(self, clock: FixedClock, files: MemoryFileStore) -> None:
        super().__init__(clock)
        self.files = files
        self.stored_at_commit: list[int] = []

    async def commit(self, entry: dict[str, object]) -> None:
        self.stored_at_commit.append(len(self.files.files))
        await super().commit(entry)


class LosesOnce(FakeConsolidateStore):
    def __init__(self) -> None:
        super().__init__()
        self.lost = False

    async def add_report(
        self,
        payload: ReportConsolidatedV2Payload,
        *,
        cause: str,
        content_hash: str,
        event_id: str,
        v1_event_id: str | None = None,
    ) -> None:
        if not self.lost:
            self.lost = True
            raise VersionTaken("v1")
        await super().add_report(
            payload,
            cause=cause,
            content_hash=content_hash,
            event_id=event_id,
            v1_event_id=v1_event_id,
        )


def consolidation(
    store: FakeConsolidateStore | None = None,
) -> tuple[Consolidation, MemoryFileStore, CommitSpy]:
    clock = FixedClock(NOW)
    files = MemoryFileStore()
    outbox = CommitSpy(clock, files)
    c = Consolidation(
        Catalog({PLAN.id: PLAN}),
        store or FakeConsolidateStore(),
        outbox,
        clock,
        lambda: None,
        ConsolidateMetrics(CollectorRegistry()),
        files,
        public_url=PUBLIC,
        render_pdf=False,
    )
    return c, files, outbox


def submitted(unit_id: str) -> SubmissionReceived:
    return SubmissionReceived(
        occurred_at=NOW,
        producer="submissions",
        correlation_id=uuid.uuid4(),
        payload=SubmissionReceivedPayload(
            submission_id=f"s-{unit_id}-{uuid.uuid4()}",
            receipt_no="BC-1",
            plan_id=PLAN.id,
            period_id=PERIOD_ID,
            unit_id=unit_id,
            revision=1,
            received_at=PERIOD.due_at - dt.timedelta(days=1),
            due_at=PERIOD.due_at,
            on_time=True,
            tasks=[TaskReport(task_id="viec-1", status="completed", results="Đã xong việc 1.")],
        ),
    )


def closed() -> PeriodClosed:
    return PeriodClosed(
        occurred_at=NOW,
        producer="deadlines",
        correlation_id=uuid.uuid4(),
        payload=PeriodClosedPayload(
            plan_id=PLAN.id,
            period_id=PERIOD_ID,
            report_kind="nam",
            year=2026,
            due_at=PERIOD.due_at,
            closed_at=NOW,
        ),
    )


def text_of(data: bytes) -> str:
    document = docx.Document(io.BytesIO(data))
    texts = [p.text for p in document.paragraphs]
    for table in document.tables:
        texts += [p.text for cell in table._cells for p in cell.paragraphs]
    return "\n".join(texts)


async def test_a_closing_version_carries_its_files_stored_before_the_commit() -> None:
    c, files, outbox = consolidation()
    await on_submission_received(submitted("xa-b"), c=c)
    await on_period_closed(closed(), c=c)
    [event] = [e for e in outbox.events() if isinstance(e, ReportConsolidatedV2)]
    [v1] = [e for e in outbox.events() if isinstance(e, ReportConsolidated)]
    document = event.payload.document
    assert document is not None and document == v1.payload.document
    assert document.filename == f"bao-cao-{PERIOD_ID}-v1.docx"
    assert document.url == (
        f"{PUBLIC}/api/v1/periods/{PERIOD_ID}/reports/{event.payload.report_id}"
        f"/files/{document.filename}"
    )
    assert [f.filename for f in document.files] == [f"phu-luc-{PERIOD_ID}-v1.xlsx"]
    assert document.missing == [f"bao-cao-{PERIOD_ID}-v1.pdf: PDF rendering is turned off"]
    # DOCX, XLSX and the detail, all stored under the v2 event, before either event commits.
    assert outbox.stored_at_commit == [3, 3]
    assert event.payload.detail.filename == f"chi-tiet-{PERIOD_ID}-v1.json"
    for named in (document, event.payload.detail):
        stored = await files.get(PERIOD_ID, str(event.event_id), named.filename)
        assert stored is not None
        assert hashlib.sha256(stored.data).hexdigest() == named.sha256 == stored.sha256
        assert len(stored.data) == named.size
    docx_file = await files.get(PERIOD_ID, str(event.event_id), document.filename)
    assert docx_file is not None
    assert "DỰ THẢO" not in text_of(docx_file.data)
    assert "UBND xã B" in text_of(docx_file.data)


async def test_a_requested_version_is_a_draft_and_says_who_asked() -> None:
    c, files, _ = consolidation()
    payload = await consolidate_now(PERIOD_ID, c=c, request_id="r-1", requested_by="tonghop")
    assert payload.trigger == "requested" and payload.document is not None
    stored = await c.store.report(PERIOD_ID, payload.report_id)
    assert stored is not None and stored.cause == "requested by tonghop: r-1"
    data = await files.get(PERIOD_ID, stored.event_id, payload.document.filename)
    assert data is not None and "DỰ THẢO" in text_of(data.data)


async def test_a_lost_version_race_leaves_no_files_of_the_loser() -> None:
    c, files, _ = consolidation(LosesOnce())
    payload = await consolidate_now(PERIOD_ID, c=c, request_id="r-2")
    stored = await c.store.report(PERIOD_ID, payload.report_id)
    assert stored is not None
    assert {k[1].split("/")[0] for k in files.files} == {stored.event_id}


def test_a_rendered_file_hashes_its_bytes() -> None:
    f = RenderedFile("a.docx", "x", b"abc")
    assert f.sha256 == hashlib.sha256(b"abc").hexdigest()
