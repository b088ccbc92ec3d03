"""The operators' schedule of a period: each unit's rungs emitted, skipped and pending, from the
store's decisions (made here by the real scan on the in-memory store) and the plan."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from contracts.plan.workdays import DayChanges, WorkingCalendar
from services.common.auth import Role
from services.common.clock import FixedClock
from services.common.periods import Period, find_period
from services.common.reference import Catalog
from services.deadlines.app import build_app
from services.deadlines.config import DeadlinesSettings
from services.deadlines.handlers import scan
from services.deadlines.metrics import DeadlinesMetrics
from services.deadlines.schedule import RungStatus, period_schedule
from tests.support.auth import bearer
from tests.support.fakes import FakeDeadlinesStore, FakeTermsStore, MemoryOutbox
from tests.support.plans import ladder_plan

pytestmark = pytest.mark.unit

VN = dt.timezone(dt.timedelta(hours=7))


def vn(day: str, time: str = "08:00") -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=VN).astimezone(dt.UTC)


PLAN = ladder_plan("kh-lich")


def the_period() -> Period:
    found = find_period(PLAN, f"{PLAN.id}.2027.6-thang")
    assert found is not None
    return found


async def scanned(store: FakeDeadlinesStore, at: dt.datetime) -> None:
    await scan(
        catalog=Catalog({PLAN.id: PLAN}),
        store=store,
        clock=FixedClock(at),
        wake=lambda: None,
        metrics=DeadlinesMetrics(CollectorRegistry()),
        catch_up=dt.timedelta(days=30),
        day_changes=DayChanges(),
    )


async def a_store_after_a_gap() -> FakeDeadlinesStore:
    """b14 sent on 26/5; the service is down until 10/6 09:00 (b7 passed, b3 is the latest);
    xa-a reported on 8/6 in between."""
    store = FakeDeadlinesStore(MemoryOutbox(FixedClock(vn("2027-05-26"))))
    await scanned(store, vn("2027-05-26", "09:00"))
    await store.record_submission(the_period().id, "xa-a", vn("2027-06-08", "10:00"))
    await scanned(store, vn("2027-06-10", "09:00"))
    return store


async def test_each_unit_has_its_rungs_emitted_skipped_and_pending() -> None:
    store = await a_store_after_a_gap()
    period = the_period()

    units = {
        u.unit_id: u
        for u in period_schedule(
            PLAN,
            period,
            WorkingCalendar(),
            vn("2027-06-10", "09:00"),
            submitted={"xa-a"},
            decisions=await store.decisions(period.id),
        )
    }

    b = {r.rung: (r.status, r.at) for r in units["xa-b"].rungs}
    assert b == {
        "b14": (RungStatus.EMITTED, vn("2027-05-25")),
        "b7": (RungStatus.SKIPPED, vn("2027-06-03")),
        "b3": (RungStatus.EMITTED, vn("2027-06-09")),
        "b1": (RungStatus.PENDING, vn("2027-06-11")),
        "b0": (RungStatus.PENDING, vn("2027-06-14")),
        "a1": (RungStatus.PENDING, vn("2027-06-15")),
        "a1+7d": (RungStatus.PENDING, vn("2027-06-22")),
        "a1+14d": (RungStatus.PENDING, vn("2027-06-29")),
    }
    assert units["xa-b"].owes
    a = {r.rung: r.status for r in units["xa-a"].rungs}
    assert a["b14"] is RungStatus.EMITTED
    assert {a[r] for r in ("b7", "b3", "b1", "a1")} == {RungStatus.NOT_SENT}
    assert not units["xa-a"].owes


@pytest.fixture
def app() -> FastAPI:
    return build_app(
        DeadlinesSettings(namespace="unit"),
        clock=FixedClock(vn("2027-06-10", "09:00")),
        catalog=Catalog({PLAN.id: PLAN}),
    )


async def test_the_schedule_endpoint_shows_local_and_utc_times(app: FastAPI) -> None:
    scheduler = app.state.scheduler
    scheduler.store = await a_store_after_a_gap()
    scheduler.terms = FakeTermsStore()
    transport = httpx.ASGITransport(app=app)
    path = f"/api/v1/periods/{the_period().id}/schedule"
    async with httpx.AsyncClient(transport=transport, base_url="http://deadlines") as http:
        answer = await http.get(path, headers=bearer(Role.READER))
        officer = await http.get(path, headers=bearer(Role.OFFICER, "xa-b"))
        missing = await http.get(
            "/api/v1/periods/kh-lich.2027.khong-co/schedule", headers=bearer(Role.OFFICE)
        )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["timezone"] == "Asia/Ho_Chi_Minh"
    xa_b = next(u for u in body["units"] if u["unit_id"] == "xa-b")
    assert (xa_b["emitted"], xa_b["skipped"], xa_b["pending"]) == (2, 1, 5)
    b3 = next(r for r in xa_b["rungs"] if r["rung"] == "b3")
    assert (b3["at"], b3["at_local"]) == ("2027-06-09T01:00:00Z", "2027-06-09T08:00:00+07:00")
    assert b3["recorded_at_local"] == "2027-06-10T09:00:00+07:00"
    assert b3["reaches"] == ["officer", "unit_head"]
    assert officer.status_code == 403
    assert officer.json()["code"] == "forbidden"
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert missing.json()["message"] == "Không tìm thấy kỳ báo cáo này."
