"""Steps the end-to-end tests share: file a report, find its mail, read consolidated reports."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from contracts.plan import IndicatorType, Plan
from services.common.auth import Role
from services.common.reference import load_plan
from tests.e2e.conftest import System
from tests.support import mailpit
from tests.support.auth import bearer
from tests.support.kafka import read_all
from tests.support.waiting import eventually


def plan_of(system: System) -> Plan:
    return load_plan(system.plans[0])


SAMPLE_VALUES: dict[IndicatorType, Any] = {
    IndicatorType.COUNT: 3,
    IndicatorType.NUMBER: 3,
    IndicatorType.PERCENTAGE: 3,
    IndicatorType.BOOLEAN: True,
    IndicatorType.TEXT: "Đã thực hiện.",
}


def answer(plan: Plan, code: str, value: Any) -> dict[str, Any]:
    """An indicator's answer in the field its type reads: ``flag`` for yes/no, ``text`` for
    text, ``value`` for figures."""
    indicator = plan.indicator(code)
    kind = indicator.type if indicator else IndicatorType.COUNT
    field = {IndicatorType.BOOLEAN: "flag", IndicatorType.TEXT: "text"}.get(kind, "value")
    return {"code": code, field: value}


def _sample(plan: Plan, code: str) -> Any:
    indicator = plan.indicator(code)
    return SAMPLE_VALUES[indicator.type] if indicator else 3


def report_body(
    plan: Plan, period_id: str, unit_id: str, values: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A full report on every task of the unit, with every indicator the task asks of it (by
    its role and kind): the value in ``values`` by code, else a sample value of its type."""
    tasks = plan.tasks_of(unit_id)
    values = values or {}
    return {
        "period_id": period_id,
        "unit_id": unit_id,
        "submitted_by": {"name": "Nguyễn Thị Hà", "email": None},
        "tasks": [
            {
                "task_id": t.id,
                "status": "completed",
                "results": f"Đã triển khai nhiệm vụ {t.section}: tổ chức quán triệt, tuyên truyền.",
                "indicators": [
                    answer(plan, i.code, values.get(i.code, _sample(plan, i.code)))
                    for i in plan.indicators_for(t, unit_id)
                ],
                "difficulties": "Địa bàn rộng, đi lại khó khăn.",
                "proposals": "Đề nghị bổ sung kinh phí tuyên truyền.",
            }
            for t in tasks
        ],
    }


async def submit(system: System, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=system.url("submissions"), timeout=30) as client:
        response = await client.post(
            "/api/v1/submissions", json=body, headers=bearer(Role.OFFICER, body["unit_id"])
        )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def mails_about(
    system: System, receipt: dict[str, Any], *, expected: int = 1, timeout: float = 45.0
) -> list[dict[str, Any]]:
    """Receipt mail of this submission; waits for ``expected`` of them."""

    async def found() -> list[dict[str, Any]] | None:
        messages = await mailpit.search(
            system.servers.mailpit_api, f'from:{system.sender} "{receipt["receipt_no"]}"'
        )
        return messages if len(messages) >= expected else None

    return await eventually(found, timeout=timeout, what=f"mail about {receipt['receipt_no']}")


async def wait_until_projected(system: System, period_id: str, received: int) -> None:
    """Consolidation reads its own projection: wait until it has caught up."""

    async def caught_up() -> bool:
        async with httpx.AsyncClient(
            base_url=system.url("consolidate"), timeout=10, headers=bearer(Role.ADMIN)
        ) as client:
            response = await client.get(f"/api/v1/periods/{period_id}/preview")
        return response.status_code == 200 and response.json()["received"] >= received

    await eventually(caught_up, timeout=45, what=f"{received} report(s) in the projection")


V1, V2 = "baocao.report-consolidated.v1", "baocao.report-consolidated.v2"


async def consolidate(system: System, period_id: str) -> dict[str, Any]:
    """Request a consolidation; the report as the province reads it from Kafka (v2, with its
    detail file merged in: see :func:`with_detail`), checked against v1, published beside it
    at these sizes."""
    async with httpx.AsyncClient(
        base_url=system.url("consolidate"), timeout=30, headers=bearer(Role.ADMIN)
    ) as client:
        response = await client.post(f"/api/v1/periods/{period_id}/consolidate")
    assert response.status_code == 202, response.text
    report_id = response.json()["report_id"]
    bootstrap = system.servers.kafka_bootstrap
    events = await read_all(bootstrap, system.topic(V2), until=1)
    payload = next(e["payload"] for e in events if e["payload"]["report_id"] == report_id)
    report = await with_detail(system, payload)
    olds = await read_all(bootstrap, system.topic(V1), until=1)
    same_as_v1(report, next(e["payload"] for e in olds if e["payload"]["report_id"] == report_id))
    return report


async def detail_of(system: System, payload: dict[str, Any]) -> dict[str, Any]:
    """The detail file a v2 payload names, from this system's consolidate (the URL's host is
    the deployment's public one), its SHA-256 and size checked."""
    named = payload["detail"]
    async with httpx.AsyncClient(
        base_url=system.url("consolidate"), timeout=60, headers=bearer(Role.READER)
    ) as client:
        got = await client.get(httpx.URL(named["url"]).path)
    assert got.status_code == 200, got.text
    assert hashlib.sha256(got.content).hexdigest() == named["sha256"]
    assert len(got.content) == named["size"]
    detail: dict[str, Any] = got.json()
    return detail


async def with_detail(system: System, payload: dict[str, Any]) -> dict[str, Any]:
    """A v2 payload with its detail merged in where v1 carried it: ``units``, each task's
    ``entries``, each indicator's ``values``."""
    detail = await detail_of(system, payload)
    assert (detail["plan_id"], detail["period_id"]) == (payload["plan_id"], payload["period_id"])
    answers = {i["code"]: i["values"] for i in detail["indicators"]}
    entries = {t["task_id"]: t["entries"] for t in detail["tasks"]}
    return {
        **payload,
        "units": detail["units"],
        "tasks": [{**t, "entries": entries[t["task_id"]]} for t in payload["tasks"]],
        "indicator_totals": [
            {**t, "values": answers[t["code"]]} for t in payload["indicator_totals"]
        ],
    }


def same_as_v1(report: dict[str, Any], v1: dict[str, Any]) -> None:
    """v1 of the same version says what v2 and its detail say."""
    keys = ("version", "content_hash", "supersedes", "document")
    assert [v1[k] for k in keys] == [report[k] for k in keys]
    assert counts(v1) == counts(report)
    assert v1["units"] == report["units"]
    assert [(t["task_id"], t["entries"]) for t in v1["tasks"]] == [
        (t["task_id"], t["entries"]) for t in report["tasks"]
    ]
    assert [(t["code"], t["value"], t["values"], t["by_kind"]) for t in v1["indicator_totals"]] == [
        (t["code"], t["value"], t["values"], t["by_kind"]) for t in report["indicator_totals"]
    ]


def counts(report: dict[str, Any]) -> tuple[int, ...]:
    """(expected, received, on_time, late, missing)"""
    return tuple(report[k] for k in ("expected", "received", "on_time", "late", "missing"))
