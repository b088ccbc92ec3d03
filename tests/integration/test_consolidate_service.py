"""The consolidate service against the real Kafka and MongoDB-wire server.

Each test runs the app (with its lifespan) under a fresh namespace, feeds it events with a plain
aiokafka producer and reads ``ReportConsolidated`` back with a plain consumer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from contracts.envelope import Event
from contracts.events import (
    FilingExceptionGranted,
    FilingExceptionGrantedPayload,
    IndicatorValue,
    PeriodClosed,
    PeriodClosedPayload,
    ReportConsolidated,
    SubmissionReceived,
    SubmissionReceivedPayload,
    TaskReport,
)
from contracts.report_v2 import ReportConsolidatedV2, ReportDetail
from contracts.topics import (
    FILING_EXCEPTION_GRANTED,
    PERIOD_CLOSED,
    REPORT_CONSOLIDATED,
    REPORT_CONSOLIDATED_V2,
    TOPIC_OF,
)
from services.common.auth import Role
from services.common.clock import FixedClock
from services.common.kafka import Names
from services.common.mongo import Document
from services.common.outbox import Outbox
from services.common.periods import Period, find_period
from services.common.reference import Catalog
from services.common.runtime import Runtime
from services.consolidate.app import build_app
from services.consolidate.config import ConsolidateSettings
from services.consolidate.detail import join
from services.consolidate.files import GridFSFileStore
from services.consolidate.handlers import (
    Consolidation,
    PeriodNotOpen,
    amend_closed_reports,
    consolidate_now,
    on_period_closed,
    on_submission_received,
)
from services.consolidate.metrics import ConsolidateMetrics
from services.consolidate.pdf import soffice
from services.consolidate.store import ConsolidateStore, MongoConsolidateStore
from tests.conftest import Servers
from tests.support.auth import bearer
from tests.support.kafka import read_all
from tests.support.mongo import throwaway_database
from tests.support.plans import indicator, make_plan, task, unit
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

PLAN = make_plan(
    plan_id="kh-tich-hop",
    consolidating_unit_id="phong-vhtt",
    units=[
        unit("phong-vhtt", "Phòng Văn hóa và Thông tin", "specialised_office"),
        unit("xa-a", "UBND xã A", "commune"),
        unit("xa-b", "UBND xã B", "commune"),
    ],
    indicators=[indicator("so-buoi", "Số buổi tuyên truyền", "buổi")],
    tasks=[
        task(
            "tuyen-truyen",
            "II.1",
            "Tuyên truyền",
            ["phong-vhtt", "xa-a", "xa-b"],
            indicator_codes=["so-buoi"],
        )
    ],
)
PERIOD_ID = "kh-tich-hop.2026.6-thang"
_found = find_period(PLAN, PERIOD_ID)
assert _found is not None
PERIOD: Period = _found
NOW = PERIOD.closes_at + dt.timedelta(hours=1)


@dataclass
class Service:
    app: FastAPI
    http: httpx.AsyncClient
    producer: AIOKafkaProducer
    names: Names
    bootstrap: str

    @property
    def store(self) -> ConsolidateStore:
        consolidation: Consolidation = self.app.state.consolidation
        return consolidation.store

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    async def publish(self, event: Event) -> None:
        topic = TOPIC_OF[type(event)]
        await self.producer.send_and_wait(
            self.names.topic(topic),
            event.model_dump_json().encode(),
            key=str(getattr(event.payload, topic.key_field)).encode(),
        )

    async def reports_on_kafka(self, count: int) -> list[ReportConsolidatedV2]:
        """The v2 topic from the start (at least ``count`` reports), oldest version first."""
        topic = self.names.topic(REPORT_CONSOLIDATED_V2)
        events = await read_all(self.bootstrap, topic, until=count)
        found = [ReportConsolidatedV2.model_validate(e) for e in events]
        return sorted(found, key=lambda e: e.payload.version)

    async def v1_reports_on_kafka(self, count: int) -> list[ReportConsolidated]:
        """The v1 topic, published beside v2 while the report fits in a record."""
        events = await read_all(self.bootstrap, self.names.topic(REPORT_CONSOLIDATED), until=count)
        found = [ReportConsolidated.model_validate(e) for e in events]
        return sorted(found, key=lambda e: e.payload.version)

    async def download(self, url: str) -> bytes:
        """A file the event names (its URL starts with the public URL, not this client's)."""
        got = await self.http.get(httpx.URL(url).path)
        assert got.status_code == 200, got.text
        return got.content

    async def projected(self) -> int:
        return len([row async for row in self.store.submissions(PERIOD_ID)])

    async def committed(self, consumer: str, topic_name: str) -> int:
        """Messages the given consumer group has acknowledged on ``topic_name``."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(
                self.names.group("consolidate", consumer)
            )
        finally:
            await admin.close()
        return sum(max(o.offset, 0) for tp, o in offsets.items() if tp.topic == topic_name)


@pytest.fixture
async def service(servers: Servers, namespace: str) -> AsyncIterator[Service]:
    settings = ConsolidateSettings(
        namespace=namespace, kafka_bootstrap=servers.kafka_bootstrap, mongo_uri=servers.mongo_uri
    )
    app = build_app(settings, clock=FixedClock(NOW), catalog=Catalog({PLAN.id: PLAN}))
    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka_bootstrap, acks="all")
    async with app.router.lifespan_context(app):
        await producer.start()
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://consolidate",
                headers=bearer(Role.ADMIN),
            ) as http:
                yield Service(app, http, producer, Names(namespace), servers.kafka_bootstrap)
        finally:
            await producer.stop()
            await app.state.runtime.db.client.drop_database(app.state.runtime.db.name)


def submission(
    unit_id: str, revision: int, received_at: dt.datetime, buoi: float, results: str
) -> SubmissionReceived:
    return SubmissionReceived(
        occurred_at=received_at,
        producer="submissions",
        correlation_id=uuid.uuid4(),
        payload=SubmissionReceivedPayload(
            submission_id=f"{unit_id}-{revision}-{uuid.uuid4().hex[:6]}",
            receipt_no=f"BC-{unit_id}-{revision}",
            plan_id=PLAN.id,
            period_id=PERIOD_ID,
            unit_id=unit_id,
            revision=revision,
            received_at=received_at,
            due_at=PERIOD.due_at,
            on_time=received_at < PERIOD.due_at,
            tasks=[
                TaskReport(
                    task_id="tuyen-truyen",
                    status="completed",
                    results=results,
                    indicators=[IndicatorValue(code="so-buoi", value=buoi)],
                )
            ],
        ),
    )


async def feed_submissions(service: Service) -> None:
    """phong-vhtt on time then corrected late; xa-a late; xa-b missing."""
    first = submission("phong-vhtt", 1, PERIOD.due_at - dt.timedelta(days=1), 2, "bản đầu")
    await service.publish(first)
    await service.publish(first)  # a redelivery
    await service.publish(
        submission("phong-vhtt", 2, PERIOD.due_at + dt.timedelta(days=2), 5, "bản đính chính")
    )
    await service.publish(
        submission("xa-a", 1, PERIOD.due_at + dt.timedelta(hours=3), 1.5, "Đã tổ chức")
    )

    async def projected() -> bool:
        return await service.projected() >= 3

    await eventually(projected, what="the projection of 3 submissions")
    # The correction was published after both copies on the same key (same partition), so
    # both copies were handled by now: neither made a row nor a dead letter.
    assert await service.projected() == 3
    assert await service.runtime.db["dead_letters"].count_documents({}) == 0


def counts(body: dict[str, Any]) -> tuple[int, ...]:
    return tuple(body[k] for k in ("expected", "received", "on_time", "late", "missing"))


async def test_consolidating_on_request_publishes_the_report(service: Service) -> None:
    await feed_submissions(service)

    response = await service.http.post(f"/api/v1/periods/{PERIOD_ID}/consolidate")

    assert response.status_code == 202, response.text
    body = response.json()
    assert counts(body) == (3, 2, 1, 1, 1)
    assert (body["version"], body["trigger"]) == (1, "requested")
    assert body["consolidated_at"] == NOW.isoformat().replace("+00:00", "Z")
    assert [(t["code"], t["value"], t["reporting_units"]) for t in body["indicator_totals"]] == [
        ("so-buoi", 6.5, 2)
    ]
    assert [(t["task_id"], t["reporting_units"], t["statuses"]) for t in body["tasks"]] == [
        ("tuyen-truyen", 2, {"completed": 2})
    ]
    assert "units" not in body

    (event,) = await service.reports_on_kafka(1)
    assert event.producer == "consolidate"
    assert event.payload.model_dump(mode="json") == body
    # The per-unit detail, from the file the event names.
    data = await service.download(event.payload.detail.url)
    assert hashlib.sha256(data).hexdigest() == event.payload.detail.sha256
    assert len(data) == event.payload.detail.size
    detail = ReportDetail.model_validate_json(data)
    assert [(u.unit_id, u.status, u.revision) for u in detail.units] == [
        ("phong-vhtt", "on_time", 2),
        ("xa-a", "late", 1),
        ("xa-b", "missing", None),
    ]
    assert [e.results for e in detail.tasks[0].entries] == ["bản đính chính", "Đã tổ chức"]
    assert [v.value for v in detail.indicators[0].values] == [5, 1.5]
    # v1 beside it: the same version whole.
    (v1,) = await service.v1_reports_on_kafka(1)
    assert v1.payload == join(event.payload, detail)

    async def relayed() -> bool:
        return await service.runtime.outbox.waiting(1) == []

    await eventually(relayed, what="the report's events gone from the outbox")
    [stored] = await service.store.reports(PERIOD_ID)
    assert (stored.event_id, stored.v1_event_id) == (str(event.event_id), str(v1.event_id))
    assert stored.content_hash == body["content_hash"] == v1.payload.content_hash


async def test_a_redelivered_period_closed_makes_one_report(service: Service) -> None:
    await feed_submissions(service)
    requested = await service.http.post(f"/api/v1/periods/{PERIOD_ID}/consolidate")
    assert requested.status_code == 202
    closed = PeriodClosed(
        occurred_at=NOW,
        producer="deadlines",
        correlation_id=uuid.uuid4(),
        payload=PeriodClosedPayload(
            plan_id=PLAN.id,
            period_id=PERIOD_ID,
            report_kind="6-thang",
            year=2026,
            due_at=PERIOD.due_at,
            closed_at=PERIOD.closes_at,
        ),
    )

    await service.publish(closed)
    await service.publish(closed)
    topic = service.names.topic(PERIOD_CLOSED)

    async def both_handled() -> bool:
        return await service.committed("period-closed", topic) >= 2

    await eventually(both_handled, what="both PeriodClosed deliveries acknowledged")
    reports = await service.store.reports(PERIOD_ID)
    assert [(r.payload.version, r.payload.trigger) for r in reports] == [
        (2, "period_closed"),
        (1, "requested"),
    ]
    assert reports[0].cause == str(closed.event_id)

    events = await service.reports_on_kafka(2)
    assert [(e.payload.version, e.payload.trigger) for e in events] == [
        (1, "requested"),
        (2, "period_closed"),
    ]
    assert events[1].causation_id == closed.event_id
    assert events[1].correlation_id == closed.correlation_id
    assert counts(events[1].payload.model_dump()) == (3, 2, 1, 1, 1)

    listed = await service.http.get(f"/api/v1/periods/{PERIOD_ID}/reports")
    assert listed.status_code == 200
    assert [r["version"] for r in listed.json()["reports"]] == [2, 1]
    consolidated = service.runtime.registry.get_sample_value(
        "baocao_reports_consolidated_total", {"trigger": "period_closed"}
    )
    assert consolidated == 1.0


async def test_an_unknown_period_is_404_in_vietnamese(service: Service) -> None:
    for response in (
        await service.http.post("/api/v1/periods/kh-tich-hop.2026.khong-co/consolidate"),
        await service.http.get("/api/v1/periods/kh-khac.2026.6-thang/reports"),
    ):
        assert response.status_code == 404
        body = response.json()
        assert body["code"] == "period_not_found"
        assert body["message"].startswith("Không tìm thấy kỳ báo cáo")
    assert await service.store.reports("kh-tich-hop.2026.khong-co") == []


# --- the handlers on the real store: the closing race (issue 7) --------------------------------


@dataclass
class Handlers:
    c: Consolidation
    clock: FixedClock
    db: AsyncDatabase[Document]

    async def versions(self) -> list[tuple[int, str, int, str | None]]:
        """(version, trigger, received, supersedes) of every recorded report, oldest first."""
        reports = await self.c.store.reports(PERIOD_ID)
        return [
            (r.payload.version, r.payload.trigger, r.payload.received, r.payload.supersedes)
            for r in reversed(reports)
        ]

    async def announced(self) -> list[ReportConsolidatedV2]:
        """The report events (v2) waiting in the outbox, oldest version first."""
        entries = await self.c.outbox.waiting(100)
        events = [
            ReportConsolidatedV2.model_validate_json(e["event_json"])
            for e in entries
            if e["topic"] == REPORT_CONSOLIDATED_V2.name
        ]
        return sorted(events, key=lambda e: e.payload.version)


@pytest.fixture
async def handlers(servers: Servers, namespace: str) -> AsyncIterator[Handlers]:
    async with throwaway_database(servers.mongo_uri, f"{namespace}_baocao_consolidate") as db:
        clock = FixedClock(NOW)
        store = MongoConsolidateStore(db)
        await store.create_indexes()
        c = Consolidation(
            Catalog({PLAN.id: PLAN}),
            store,
            Outbox(db, clock),
            clock,
            lambda: None,
            ConsolidateMetrics(CollectorRegistry()),
            GridFSFileStore(db),
            documents=False,  # the versions are the subject, not their DOCX
        )
        yield Handlers(c, clock, db)


def period_closed() -> PeriodClosed:
    return PeriodClosed(
        occurred_at=PERIOD.closes_at,
        producer="deadlines",
        correlation_id=uuid.uuid4(),
        payload=PeriodClosedPayload(
            plan_id=PLAN.id,
            period_id=PERIOD_ID,
            report_kind="6-thang",
            year=2026,
            due_at=PERIOD.due_at,
            closed_at=PERIOD.closes_at,
        ),
    )


async def test_a_submission_projected_after_the_close_amends_the_closing_report(
    handlers: Handlers,
) -> None:
    """Guards issue 7's closing race: a report accepted before ``closes_at`` but projected
    after PeriodClosed (the two arrive on different topics, with any lag between them) was
    missing from the province's report for good before the redesign. It now amends the
    closing report with a new version that counts it and supersedes the previous one."""
    c = handlers.c
    before_close = PERIOD.closes_at - dt.timedelta(minutes=1)
    for event in (
        submission("phong-vhtt", 1, PERIOD.due_at - dt.timedelta(days=1), 2, "đúng hạn"),
        submission("xa-a", 1, PERIOD.due_at + dt.timedelta(days=1), 1, "trễ hạn"),
    ):
        await on_submission_received(event, c=c)
    closed = period_closed()
    await on_period_closed(closed, c=c)
    [closing] = await c.store.reports(PERIOD_ID)
    assert (closing.payload.trigger, closing.payload.received) == ("period_closed", 2)

    lagging = submission("xa-b", 1, before_close, 3, "gửi trước giờ đóng kỳ")
    await on_submission_received(lagging, c=c)
    await on_submission_received(lagging, c=c)  # a redelivery amends nothing more
    await on_period_closed(closed, c=c)  # nor does a redelivered close
    assert await amend_closed_reports(c) == 1
    assert await amend_closed_reports(c) == 0

    assert await handlers.versions() == [
        (1, "period_closed", 2, None),
        (2, "period_closed", 3, closing.payload.report_id),
    ]
    amended = await c.store.latest(PERIOD_ID)
    assert amended is not None
    assert amended.payload.missing == 0
    assert amended.cause == f"submission {lagging.payload.submission_id} after the close"
    assert await c.store.late_causes() == []
    first, second = await handlers.announced()
    assert (first.payload.version, second.payload.version) == (1, 2)
    assert second.payload.supersedes == first.payload.report_id
    assert second.causation_id == lagging.event_id


async def test_consolidating_twice_with_identical_inputs_records_one_version(
    handlers: Handlers,
) -> None:
    c = handlers.c
    await on_submission_received(
        submission("xa-a", 1, PERIOD.due_at - dt.timedelta(days=1), 1, "đúng hạn"), c=c
    )

    first = await consolidate_now(PERIOD_ID, c=c, request_id="yeu-cau-1")
    again = await consolidate_now(PERIOD_ID, c=c, request_id="yeu-cau-2")  # nothing new
    retried = await consolidate_now(PERIOD_ID, c=c, request_id="yeu-cau-1")  # same request

    assert again == first
    assert retried == first
    assert await handlers.versions() == [(1, "requested", 1, None)]
    assert len(await handlers.announced()) == 1

    await on_submission_received(
        submission("xa-b", 1, PERIOD.due_at - dt.timedelta(hours=1), 2, "đúng hạn"), c=c
    )
    changed = await consolidate_now(PERIOD_ID, c=c, request_id="yeu-cau-3")

    assert (changed.version, changed.received, changed.supersedes) == (2, 2, first.report_id)


async def test_a_period_that_has_not_opened_cannot_be_consolidated(handlers: Handlers) -> None:
    handlers.clock.at = PERIOD.opens_at - dt.timedelta(days=1)

    with pytest.raises(PeriodNotOpen):
        await consolidate_now(PERIOD_ID, c=handlers.c, request_id="qua-som")

    assert await handlers.c.store.reports(PERIOD_ID) == []
    assert await handlers.c.outbox.waiting(10) == []


async def test_each_version_files_are_stored_and_downloadable(service: Service) -> None:
    """DOCX, XLSX, (where LibreOffice is) PDF and the detail's JSON in GridFS; the event names
    them by URL."""
    await feed_submissions(service)
    response = await service.http.post(f"/api/v1/periods/{PERIOD_ID}/consolidate")
    assert response.status_code == 202, response.text
    (event,) = await service.reports_on_kafka(1)
    document, detail = event.payload.document, event.payload.detail
    assert document is not None and document.url is not None
    for url in (document.url, detail.url):
        assert url.startswith(
            f"http://127.0.0.1:8003/api/v1/periods/{PERIOD_ID}/reports/{event.payload.report_id}/"
        )
    expected = [(document.filename, document.sha256, document.size)] + [
        (f.filename, f.sha256, f.size) for f in document.files
    ]
    expected.append((detail.filename, detail.sha256, detail.size))
    if soffice() is not None:
        assert [f.media_type for f in document.files][-1] == "application/pdf"
        assert document.missing == []
    else:
        assert document.missing and "pdf" in document.missing[0]
    for filename, sha256, size in expected:
        path = f"/api/v1/periods/{PERIOD_ID}/reports/{event.payload.report_id}/files/{filename}"
        got = await service.http.get(path)
        assert got.status_code == 200, got.text
        assert hashlib.sha256(got.content).hexdigest() == sha256
        assert len(got.content) == size
        assert got.headers["etag"] == f'"{sha256}"'
        assert got.headers["content-disposition"] == f"attachment; filename*=UTF-8''{filename}"
        again = await service.http.get(path, headers={"If-None-Match": f'"{sha256}"'})
        assert (again.status_code, again.content) == (304, b"")
    got = await service.http.get(
        f"/api/v1/periods/{PERIOD_ID}/reports/{event.payload.report_id}/files/{detail.filename}"
    )
    assert got.headers["content-type"] == "application/json"
    base = f"/api/v1/periods/{PERIOD_ID}/reports/{event.payload.report_id}/files/"
    assert (await service.http.get(base + "other.docx")).status_code == 404
    missing_report = f"/api/v1/periods/{PERIOD_ID}/reports/nope/files/{document.filename}"
    assert (await service.http.get(missing_report)).status_code == 404
    for name in (document.filename, detail.filename):
        signed_out = await service.http.get(base + name, headers={"Authorization": ""})
        assert signed_out.status_code == 401


async def test_the_live_status_as_json_and_as_a_page_for_office_staff(service: Service) -> None:
    await feed_submissions(service)
    got = await service.http.get(f"/api/v1/periods/{PERIOD_ID}/status")
    assert got.status_code == 200, got.text
    body = got.json()
    assert [body[k] for k in ("expected", "received", "on_time", "late", "missing")] == [
        3,
        2,
        1,
        1,
        1,
    ]
    assert body["returned"] == 0
    assert [(u["unit_id"], u["state"]) for u in body["units"]] == [
        ("phong-vhtt", "on_time"),
        ("xa-a", "late"),
        ("xa-b", "missing"),
    ]
    assert [(t["task_id"], t["reported"], t["expected"]) for t in body["tasks"]] == [
        ("tuyen-truyen", 2, 3)
    ]
    page = await service.http.get(
        f"/periods/{PERIOD_ID}/status", headers=bearer(Role.OFFICE, "phong-vhtt")
    )
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="vi">' in page.text
    assert "Chưa báo cáo" in page.text and "UBND xã B" in page.text
    assert (await service.http.get("/periods/nope/status")).status_code == 404
    officer = bearer(Role.OFFICER, "xa-a")
    assert (
        await service.http.get(f"/periods/{PERIOD_ID}/status", headers=officer)
    ).status_code == 403


async def test_a_unit_granted_a_filing_exception_shows_as_such_in_the_status(
    service: Service,
) -> None:
    await feed_submissions(service)
    until = NOW + dt.timedelta(days=5)
    granted = FilingExceptionGranted(
        occurred_at=NOW,
        producer="submissions",
        correlation_id=uuid.uuid4(),
        payload=FilingExceptionGrantedPayload(
            plan_id=PLAN.id,
            period_id=PERIOD_ID,
            unit_id="xa-b",
            exception_id=str(uuid.uuid4()),
            reason="Mất điện kéo dài do bão.",
            until=until,
            granted_by="tonghop",
            granted_at=NOW,
        ),
    )
    await service.publish(granted)
    await service.publish(granted)  # a redelivery

    async def excused() -> dict[str, Any] | None:
        body: dict[str, Any] = (
            await service.http.get(f"/api/v1/periods/{PERIOD_ID}/status")
        ).json()
        return body if body.get("exception") else None

    body = await eventually(excused, what="xa-b shown with its exception")
    assert [(u["unit_id"], u["state"]) for u in body["units"]] == [
        ("phong-vhtt", "on_time"),
        ("xa-a", "late"),
        ("xa-b", "exception"),
    ]
    assert dt.datetime.fromisoformat(body["units"][2]["exception_until"]) == until
    assert (body["missing"], body["exception"]) == (1, 1)  # not received, yet excused

    async def both_handled() -> bool:
        return await service.committed("filing-exception-granted", granted_topic) >= 2

    granted_topic = service.names.topic(FILING_EXCEPTION_GRANTED)
    await eventually(both_handled, what="both copies acknowledged")
    assert await service.runtime.db["dead_letters"].count_documents({}) == 0
    page = await service.http.get(
        f"/periods/{PERIOD_ID}/status", headers=bearer(Role.OFFICE, "phong-vhtt")
    )
    assert page.status_code == 200, page.text
    assert "Được nộp ngoại lệ" in page.text
    assert 'class="state-exception">Được nộp ngoại lệ (đến ' in page.text
