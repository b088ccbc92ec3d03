"""The consolidate service against the real Kafka and MongoDB-wire server.

Each test runs the app (with its lifespan) under a fresh namespace, feeds it events with a plain
aiokafka producer and reads ``ReportConsolidated`` back with a plain consumer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI

from contracts.envelope import Event
from contracts.events import (
    IndicatorValue,
    PeriodClosed,
    PeriodClosedPayload,
    ReportConsolidated,
    SubmissionReceived,
    SubmissionReceivedPayload,
    TaskReport,
)
from contracts.plan import Plan
from contracts.topics import PERIOD_CLOSED, REPORT_CONSOLIDATED, TOPIC_OF
from services.common.clock import FixedClock
from services.common.kafka import Names
from services.common.periods import Period, find_period
from services.common.reference import Catalog
from services.common.runtime import Runtime
from services.consolidate.app import build_app
from services.consolidate.config import ConsolidateSettings
from services.consolidate.store import ConsolidateStore
from services.consolidate.web import Consolidation

pytestmark = pytest.mark.integration

BOOTSTRAP = os.environ.get("BAOCAO_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
MONGO_URI = os.environ.get("BAOCAO_MONGO_URI", "mongodb://127.0.0.1:27017/")
DEADLINE = 30.0

PLAN = Plan.model_validate(
    {
        "id": "kh-tich-hop",
        "title": "Kế hoạch kiểm thử tích hợp",
        "issuer": "Ủy ban nhân dân huyện Thử",
        "issuer_place": "Thử",
        "effective_from": "2026-01-01",
        "consolidating_unit_id": "phong-vhtt",
        "upward_recipient": "Ủy ban nhân dân tỉnh",
        "units": [
            {
                "id": "phong-vhtt",
                "name": "Phòng Văn hóa và Thông tin",
                "kind": "specialised_office",
            },
            {"id": "xa-a", "name": "UBND xã A", "kind": "commune"},
            {"id": "xa-b", "name": "UBND xã B", "kind": "commune"},
        ],
        "indicators": [
            {"code": "so-buoi", "name": "Số buổi tuyên truyền", "unit_of_measure": "buổi"}
        ],
        "tasks": [
            {
                "id": "tuyen-truyen",
                "section": "II.1",
                "title": "Tuyên truyền",
                "text": "...",
                "assignments": [
                    {"unit_id": "phong-vhtt"},
                    {"unit_id": "xa-a"},
                    {"unit_id": "xa-b"},
                ],
                "indicator_codes": ["so-buoi"],
            }
        ],
        "schedule": [
            {
                "code": "6-thang",
                "title": "Báo cáo 6 tháng",
                "due_before": "06-15",
                "data_from": "12-15",
                "data_from_previous_year": True,
                "data_to": "06-14",
            }
        ],
    }
)
PERIOD_ID = "kh-tich-hop.2026.6-thang"
_found = find_period(PLAN, PERIOD_ID)
assert _found is not None
PERIOD: Period = _found
NOW = PERIOD.closes_at + dt.timedelta(hours=1)


async def wait_for(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@dataclass
class Service:
    app: FastAPI
    http: httpx.AsyncClient
    producer: AIOKafkaProducer
    names: Names

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

    async def reports_on_kafka(self, count: int) -> list[ReportConsolidated]:
        """Read the output topic from the start until ``count`` events arrived."""
        consumer = AIOKafkaConsumer(
            self.names.topic(REPORT_CONSOLIDATED),
            bootstrap_servers=BOOTSTRAP,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        found: list[ReportConsolidated] = []
        try:
            deadline = asyncio.get_running_loop().time() + DEADLINE
            while len(found) < count:
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"{len(found)} of {count} reports on Kafka")
                batches = await consumer.getmany(timeout_ms=500)
                found += [
                    ReportConsolidated.model_validate_json(m.value)
                    for records in batches.values()
                    for m in records
                ]
        finally:
            await consumer.stop()
        return sorted(found, key=lambda e: e.payload.version)

    async def committed(self, consumer: str, topic_name: str) -> int:
        """Messages the given consumer group has acknowledged on ``topic_name``."""
        admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(
                self.names.group("consolidate", consumer)
            )
        finally:
            await admin.close()
        return sum(max(o.offset, 0) for tp, o in offsets.items() if tp.topic == topic_name)


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    namespace = "t" + uuid.uuid4().hex[:10]
    settings = ConsolidateSettings(
        namespace=namespace, kafka_bootstrap=BOOTSTRAP, mongo_uri=MONGO_URI
    )
    app = build_app(settings, clock=FixedClock(NOW), catalog=Catalog({PLAN.id: PLAN}))
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    async with app.router.lifespan_context(app):
        await producer.start()
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://consolidate"
            ) as http:
                yield Service(app, http, producer, Names(namespace))
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
        return len(await service.store.submissions(PERIOD_ID)) >= 3

    await wait_for(projected, "the projection of 3 submissions")
    # The correction was published after both copies on the same key (same partition), so
    # both copies were handled by now: neither made a row nor a dead letter.
    assert len(await service.store.submissions(PERIOD_ID)) == 3
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
    assert [(u["unit_id"], u["status"], u["revision"]) for u in body["units"]] == [
        ("phong-vhtt", "on_time", 2),
        ("xa-a", "late", 1),
        ("xa-b", "missing", None),
    ]
    assert [(t["code"], t["total"], t["reporting_units"]) for t in body["indicator_totals"]] == [
        ("so-buoi", 6.5, 2)
    ]
    assert [e["results"] for e in body["tasks"][0]["entries"]] == ["bản đính chính", "Đã tổ chức"]

    (event,) = await service.reports_on_kafka(1)
    assert event.producer == "consolidate"
    assert event.payload.model_dump(mode="json") == body

    async def published() -> bool:
        return all(r.published for r in await service.store.reports(PERIOD_ID))

    await wait_for(published, "the outbox entry marked published")


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

    await wait_for(both_handled, "both PeriodClosed deliveries acknowledged")
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
