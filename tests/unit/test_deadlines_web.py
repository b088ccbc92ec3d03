"""The operator endpoints, without servers (the app is built but not started)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.common.auth import (
    Principal,
    Role,
    TokenSigner,
    load_private_key,
    write_key_pair,
)
from services.common.clock import FixedClock
from services.common.reference import Catalog
from services.deadlines.app import build_app
from services.deadlines.config import DeadlinesSettings
from tests.support.auth import bearer
from tests.support.fakes import FakeDeadlinesStore, MemoryOutbox
from tests.unit.test_deadlines_domain import small_plan

pytestmark = pytest.mark.unit


NOW = dt.datetime(2027, 6, 1, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def app() -> FastAPI:
    plan = small_plan()
    return build_app(
        DeadlinesSettings(namespace="unit"),
        clock=FixedClock(NOW),
        catalog=Catalog({plan.id: plan}),
    )


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://deadlines",
        headers=bearer(Role.ADMIN),
    ) as client:
        yield client


async def test_periods_are_listed_in_utc_and_local_time(http: httpx.AsyncClient) -> None:
    response = await http.get("/api/v1/periods")

    assert response.status_code == 200
    body = response.json()
    assert body["now"] == "2027-06-01T03:00:00Z"
    period = next(p for p in body["periods"] if p["period_id"] == "kh-thu.2027.6-thang")
    assert period["title"] == "Báo cáo 6 tháng năm 2027"
    assert period["due_at"] == "2027-06-14T17:00:00Z"
    assert period["due_at_local"] == "2027-06-15T00:00:00+07:00"
    assert period["opens_at_local"] == "2027-05-16T00:00:00+07:00"
    assert period["closes_at_local"] == "2027-06-30T00:00:00+07:00"
    assert period["timezone"] == "Asia/Ho_Chi_Minh"
    assert period["state"] == "open"
    states = {p["period_id"]: p["state"] for p in body["periods"]}
    assert states["kh-thu.2026.6-thang"] == "closed"
    assert states["kh-thu.2028.6-thang"] == "upcoming"


async def test_a_scan_is_refused_while_the_service_is_not_running(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/v1/scan")

    assert response.status_code == 503
    assert response.json()["code"] == "not_ready"


async def test_a_scan_on_demand_records_what_is_due_once(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    # What the wiring does once MongoDB is connected, with the in-memory store instead.
    outbox = MemoryOutbox(FixedClock(NOW))
    app.state.scheduler.store = FakeDeadlinesStore(outbox)

    first = await http.post("/api/v1/scan")
    again = await http.post("/api/v1/scan")

    assert first.status_code == again.status_code == 200
    assert first.json()["recorded"] == len(outbox.all()) >= 1  # the period opened
    assert again.json() == {"recorded": 0}


async def test_signed_out_callers_get_401_and_officers_may_not_scan(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://deadlines") as anonymous:
        listed = await anonymous.get("/api/v1/periods")
        assert listed.status_code == 401
        assert listed.json()["code"] == "not_signed_in"
        assert listed.headers["WWW-Authenticate"].startswith("Bearer")
    async with httpx.AsyncClient(
        transport=transport, base_url="http://deadlines", headers=bearer(Role.OFFICER, "u1")
    ) as officer:
        assert (await officer.get("/api/v1/periods")).status_code == 200
        scan = await officer.post("/api/v1/scan")
        assert scan.status_code == 403
        assert scan.json()["code"] == "forbidden"


async def test_a_token_signed_by_another_key_is_not_accepted(app: FastAPI, tmp_path: Path) -> None:
    other_private, other_public = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    write_key_pair(other_private, other_public)
    forged = TokenSigner(load_private_key(other_private)).issue(
        Principal(subject="mallory", role=Role.ADMIN), NOW
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://deadlines",
        headers={"Authorization": f"Bearer {forged}"},
    ) as client:
        assert (await client.get("/api/v1/periods")).status_code == 401
