"""Steps the end-to-end tests share: file a report, find its mail, read consolidated reports."""

from __future__ import annotations

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


async def consolidate(system: System, period_id: str) -> dict[str, Any]:
    """Request a consolidation; the report as the province reads it from Kafka."""
    async with httpx.AsyncClient(
        base_url=system.url("consolidate"), timeout=30, headers=bearer(Role.ADMIN)
    ) as client:
        response = await client.post(f"/api/v1/periods/{period_id}/consolidate")
    assert response.status_code == 202, response.text
    report_id = response.json()["report_id"]
    events = await read_all(
        system.servers.kafka_bootstrap, system.topic("baocao.report-consolidated.v1"), until=1
    )
    return next(e["payload"] for e in events if e["payload"]["report_id"] == report_id)


def counts(report: dict[str, Any]) -> tuple[int, ...]:
    """(expected, received, on_time, late, missing)"""
    return tuple(report[k] for k in ("expected", "received", "on_time", "late", "missing"))
