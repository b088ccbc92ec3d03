"""The flow driven by a province-level plan after the 2025 two-tier reform (departments, the
provincial police, a board, wards, communes, a special zone and the Fatherland Front), with a
quarterly rule and typed indicators. Only the plan file differs from the seed plan's run."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.common.auth import Role
from tests.e2e import flow
from tests.e2e.conftest import System
from tests.support import mailpit
from tests.support.auth import bearer
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

Q2_2027 = "kh-ttcs-hai-lam.2027.quy.q2"
PERCENTAGE = "ty-le-ho-tiep-can-thong-tin"


async def test_units_report_are_reminded_and_counted(province_system: System) -> None:
    plan = flow.plan_of(province_system)
    # A department that leads one task and cooperates on two, the police, a department with a
    # figure in millions of đồng, and the board that has no contacts (no mail, still counted).
    reporters = ["so-khcn", "cong-an-tinh", "so-tai-chinh", "ban-qlkkt"]
    for unit_id in reporters:
        values = {"kinh-phi-bo-tri": 1250.5} if unit_id == "so-tai-chinh" else {}
        receipt = await flow.submit(
            province_system, flow.report_body(plan, Q2_2027, unit_id, values)
        )
        assert receipt["on_time"] is True

    # The clock started three days before the due date: the five-day reminder goes to every
    # unit that had not reported, here a commune that never does.
    commune = plan.unit("xa-suoi-mo")
    assert commune is not None
    address = next(c.email for c in commune.contacts if c.email)

    async def reminder() -> list[dict[str, Any]] | None:
        found = await mailpit.search(
            province_system.servers.mailpit_api,
            f'from:{province_system.sender} to:{address} subject:"Nhắc hạn"',
        )
        return found or None

    mails = await eventually(reminder, timeout=60, what="a reminder to xã Suối Mơ")
    assert "Báo cáo quý II năm 2027" in mails[0]["Subject"]

    await flow.wait_until_projected(province_system, Q2_2027, len(reporters))
    report = await flow.consolidate(province_system, Q2_2027)
    expected = len(plan.reporting_units())
    assert expected == 13  # every unit but the issuing People's Committee
    assert flow.counts(report) == (expected, 4, 4, 0, expected - 4)
    statuses = {u["unit_id"]: u["status"] for u in report["units"]}
    assert {u for u, s in statuses.items() if s == "on_time"} == set(reporters)
    assert statuses["dac-khu-hon-ngoc"] == "missing"
    assert report["title"] == "Báo cáo quý II năm 2027"
    # Sở KH&CN's entries appear under the task it leads and those it cooperates on.
    reported_by = {t["task_id"]: {e["unit_id"] for e in t["entries"]} for t in report["tasks"]}
    for task_id in (
        "ii-1-huong-dan-boi-duong",
        "ii-2-he-thong-thong-tin-nguon",
        "ii-3-thong-tin-co-so-tai-dia-phuong",
    ):
        assert "so-khcn" in reported_by[task_id], task_id
    totals = {t["code"]: t for t in report["indicator_totals"]}
    assert totals["kinh-phi-bo-tri"]["value"] == pytest.approx(1250.5)


async def test_a_percentage_consolidates_to_the_mean_weighted_by_households(
    province_system: System,
) -> None:
    plan = flow.plan_of(province_system)
    figures = {
        "xa-tan-lap": (1200, 90.0),
        "phuong-hai-lam": (3000, 98.0),
        "dac-khu-hon-ngoc": (800, 75.0),
    }
    async with httpx.AsyncClient(
        base_url=province_system.url("consolidate"), headers=bearer(Role.ADMIN)
    ) as client:
        before = (await client.get(f"/api/v1/periods/{Q2_2027}/preview")).json()
    for unit_id, (households, share) in figures.items():
        values = {"so-ho-gia-dinh": households, PERCENTAGE: share}
        await flow.submit(province_system, flow.report_body(plan, Q2_2027, unit_id, values))
    await flow.wait_until_projected(province_system, Q2_2027, before["received"] + len(figures))
    report = await flow.consolidate(province_system, Q2_2027)

    totals = {t["code"]: t for t in report["indicator_totals"]}
    share = totals[PERCENTAGE]
    # (1200·90 + 3000·98 + 800·75) / 5000 = 92.4; a sum would be 263, a plain mean 87.67.
    assert share["aggregation"] == "weighted_mean"
    assert share["value"] == pytest.approx(92.4)
    assert share["reporting_units"] == 3
    assert _by_unit(share["values"]) == {u: s for u, (_, s) in figures.items()}
    assert totals["so-ho-gia-dinh"]["value"] == 5000
    assert totals["da-ban-hanh-ke-hoach"]["aggregation"] == "count_yes"


async def test_a_percentage_over_100_is_refused_naming_the_indicator(
    province_system: System,
) -> None:
    plan = flow.plan_of(province_system)
    body = flow.report_body(
        plan, Q2_2027, "xa-binh-son", {"so-ho-gia-dinh": 950, PERCENTAGE: 120.5}
    )
    async with httpx.AsyncClient(base_url=province_system.url("submissions")) as client:
        response = await client.post(
            "/api/v1/submissions", json=body, headers=bearer(Role.OFFICER, body["unit_id"])
        )
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    indicator = plan.indicator(PERCENTAGE)
    assert indicator is not None
    assert indicator.name in message or PERCENTAGE in message, message
    assert "100" in message, message


def _by_unit(values: Any) -> dict[str, float]:
    """Per-unit values, whether published as a list of {unit_id, value} or a mapping."""
    if isinstance(values, dict):
        return {str(k): float(v) for k, v in values.items()}
    return {str(v["unit_id"]): float(v["value"]) for v in values}
