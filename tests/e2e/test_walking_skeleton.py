"""One report through all four services, on the real Kafka, MongoDB-wire server and SMTP."""

from __future__ import annotations

import email.header

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.common.auth import Role
from tests.e2e import flow
from tests.e2e.conftest import System
from tests.support import mailpit
from tests.support.auth import bearer
from tests.support.kafka import read_all
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

SIX_MONTHS_2027 = "kh-nq35-ngoc-hoi.2027.6-thang"


async def test_a_report_gets_exactly_one_receipt_email(seed_system: System) -> None:
    plan = flow.plan_of(seed_system)
    receipt = await flow.submit(seed_system, flow.report_body(plan, SIX_MONTHS_2027, "xa-bo-y"))
    assert receipt["on_time"] is True
    assert receipt["receipt_no"].startswith("TN-2027-")

    mails = await flow.mails_about(seed_system, receipt)
    full = await mailpit.message(seed_system.servers.mailpit_api, mails[0]["ID"])
    unit = plan.unit("xa-bo-y")
    assert unit is not None
    assert {a["Address"] for a in full["To"]} <= {c.email for c in unit.contacts}
    subject = str(email.header.make_header(email.header.decode_header(full["Subject"])))
    assert subject == f"Đã tiếp nhận Báo cáo 6 tháng năm 2027 – {unit.name}"
    assert "Đúng hạn" in full["Text"]
    # Settle, then count again: still exactly one message per contact.
    again = await flow.mails_about(seed_system, receipt, expected=len(mails))
    assert len(again) == len([c for c in unit.contacts if c.email and "email" in c.receives])


async def test_a_redelivered_event_sends_no_second_email(seed_system: System) -> None:
    plan = flow.plan_of(seed_system)
    receipt = await flow.submit(seed_system, flow.report_body(plan, SIX_MONTHS_2027, "xa-dak-ang"))
    first = await flow.mails_about(seed_system, receipt)
    topic = seed_system.topic("baocao.submission-received.v1")
    events = await read_all(seed_system.servers.kafka_bootstrap, topic, until=1)
    ours = [e for e in events if e["payload"]["receipt_no"] == receipt["receipt_no"]]
    assert len(ours) == 1

    duplicates_before = await _notify_counter(seed_system, "duplicate")
    producer = AIOKafkaProducer(
        bootstrap_servers=seed_system.servers.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        import json

        await producer.send_and_wait(topic, json.dumps(ours[0]).encode(), key=b"xa-dak-ang")
    finally:
        await producer.stop()

    async def duplicate_seen() -> bool:
        return await _notify_counter(seed_system, "duplicate") > duplicates_before

    await eventually(duplicate_seen, what="notify to process the redelivered event")
    after = await flow.mails_about(seed_system, receipt, expected=len(first))
    assert len(after) == len(first)


async def test_consolidation_publishes_the_counts(seed_system: System) -> None:
    plan = flow.plan_of(seed_system)
    async with httpx.AsyncClient(
        base_url=seed_system.url("consolidate"), headers=bearer(Role.ADMIN)
    ) as client:
        before = (await client.get(f"/api/v1/periods/{SIX_MONTHS_2027}/preview")).json()
    extra = ["xa-dak-duc", "xa-dak-kan", "thi-tran-plei-kan"]
    for unit_id in extra:
        await flow.submit(seed_system, flow.report_body(plan, SIX_MONTHS_2027, unit_id))
    received = before["received"] + len(extra)
    await flow.wait_until_projected(seed_system, SIX_MONTHS_2027, received)

    report = await flow.consolidate(seed_system, SIX_MONTHS_2027)
    expected = len(plan.reporting_units())
    assert flow.counts(report) == (expected, received, received, 0, expected - received)
    statuses = {u["unit_id"]: u["status"] for u in report["units"]}
    assert all(statuses[u] == "on_time" for u in extra)
    assert statuses["xa-sa-loong"] == "missing"
    assert report["indicator_totals"], "figures reported by the units are summed"


async def test_bad_input_is_refused_in_vietnamese_and_changes_nothing(
    seed_system: System,
) -> None:
    plan = flow.plan_of(seed_system)
    good = flow.report_body(plan, SIX_MONTHS_2027, "xa-dak-nong")
    cases = [
        (
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "invalid_json",
        ),
        # Signed in for xa-dak-nong: any other unit, known or not, is not theirs to file for.
        ({"json": {**good, "unit_id": "xa-khong-co"}}, 404, "not_found"),
        ({"json": {**good, "period_id": "kh-nq35-ngoc-hoi.2027.quy-9"}}, 422, "unknown_period"),
        ({"json": {**good, "period_id": "kh-nq35-ngoc-hoi.2026.hang-nam"}}, 409, "period_closed"),
        (
            {
                "json": {
                    **good,
                    "tasks": [
                        {**good["tasks"][0], "task_id": "ii-6-dau-tranh-xu-ly-thong-tin-sai-lech"}
                    ],
                }
            },
            422,
            "task_not_assigned",
        ),
        ({"json": {**good, "ghi_chu": "trường lạ"}}, 422, "unknown_field"),
    ]
    async with httpx.AsyncClient(
        base_url=seed_system.url("submissions"), headers=bearer(Role.OFFICER, good["unit_id"])
    ) as client:
        for request, status, code in cases:
            response = await client.post("/api/v1/submissions", **request)
            assert (response.status_code, response.json()["code"]) == (status, code), request
            assert response.json()["message"]
    # Nothing was stored for that unit: its first real report is revision 1.
    receipt = await flow.submit(seed_system, good)
    assert receipt["revision"] == 1


async def test_a_malformed_event_is_dead_lettered_by_every_consumer(seed_system: System) -> None:
    garbage = f"không phải JSON {seed_system.namespace}".encode()
    producer = AIOKafkaProducer(
        bootstrap_servers=seed_system.servers.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        await producer.send_and_wait(
            seed_system.topic("baocao.submission-received.v1"), garbage, key=b"xa-bo-y"
        )
    finally:
        await producer.stop()

    for service in ("notify", "deadlines", "consolidate"):

        async def recorded(service: str = service) -> list[dict[str, object]]:
            async with httpx.AsyncClient(
                base_url=seed_system.url(service), headers=bearer(Role.ADMIN)
            ) as client:
                letters = (await client.get("/api/v1/dead-letters")).json()
            return [d for d in letters if d["preview"] == garbage.decode()]

        letters = await eventually(recorded, what=f"{service} to dead-letter the message")
        assert letters[0]["reason"] == "invalid_message"
    # And the consumers moved on: a report filed afterwards still gets its receipt.
    plan = flow.plan_of(seed_system)
    receipt = await flow.submit(seed_system, flow.report_body(plan, SIX_MONTHS_2027, "xa-bo-y"))
    assert await flow.mails_about(seed_system, receipt)


async def test_a_report_filed_while_kafka_is_down_arrives_after_it_returns(
    seed_system: System,
) -> None:
    plan = flow.plan_of(seed_system)
    seed_system.servers.stop_kafka()
    try:
        async with httpx.AsyncClient(base_url=seed_system.url("submissions")) as client:
            ready = await client.get("/readyz")
        assert (ready.status_code, ready.json()["checks"]["kafka"]) == (503, False)
        receipt = await flow.submit(
            seed_system, flow.report_body(plan, SIX_MONTHS_2027, "xa-dak-xu")
        )
    finally:
        seed_system.servers.start_kafka()
    mails = await flow.mails_about(seed_system, receipt, timeout=120)
    assert mails
    events = await read_all(
        seed_system.servers.kafka_bootstrap,
        seed_system.topic("baocao.submission-received.v1"),
        until=1,
    )
    assert [e for e in events if e["payload"]["receipt_no"] == receipt["receipt_no"]]


async def _notify_counter(system: System, outcome: str) -> float:
    async with httpx.AsyncClient(base_url=system.url("notify")) as client:
        text = (await client.get("/metrics")).text
    prefix = f'baocao_notifications_total{{channel="email",outcome="{outcome}"}} '
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))
