"""What the deadlines service measures of its ladder and its scan loop: rungs emitted, skipped
and pending, and the loop's heartbeat, which failing scans keep beating and a stuck loop stops."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable

import pytest
from prometheus_client import CollectorRegistry

from contracts.plan.workdays import DayChanges
from services.common.clock import FixedClock
from services.common.reference import Catalog
from services.deadlines.app import build_app
from services.deadlines.config import DeadlinesSettings
from services.deadlines.handlers import scan
from services.deadlines.metrics import DeadlinesMetrics
from tests.support.fakes import FakeDeadlinesStore, MemoryOutbox
from tests.support.plans import ladder_plan

pytestmark = pytest.mark.unit

VN = dt.timezone(dt.timedelta(hours=7))
NOW = dt.datetime(2027, 6, 10, 9, 0, tzinfo=VN).astimezone(dt.UTC)
"""After b3 (9/6 08:00), before b1 (11/6); b14 and b7 passed while no scan ran."""


PLAN = ladder_plan("kh-do")
PERIOD = f"{PLAN.id}.2027.6-thang"


async def test_rungs_emitted_skipped_and_pending_are_counted() -> None:
    registry = CollectorRegistry()
    store = FakeDeadlinesStore(MemoryOutbox(FixedClock(NOW)))
    await store.record_submission(PERIOD, "xa-a", NOW - dt.timedelta(days=3))

    await scan(
        catalog=Catalog({PLAN.id: PLAN}),
        store=store,
        clock=FixedClock(NOW),
        wake=lambda: None,
        metrics=DeadlinesMetrics(registry),
        catch_up=dt.timedelta(days=30),
        day_changes=DayChanges(),
    )

    def sample(name: str, labels: dict[str, str] | None = None) -> float | None:
        return registry.get_sample_value(name, labels or {})

    # xa-b alone owes: b3 sent, b14 and b7 skipped; b1, b0, a1, a1+7d, a1+14d to come.
    assert sample("baocao_deadline_rungs_emitted_total", {"rung": "b3"}) == 1
    assert sample("baocao_deadline_rungs_emitted_total", {"rung": "b14"}) is None
    assert sample("baocao_deadline_rungs_skipped_total", {"rung": "b14"}) == 1
    assert sample("baocao_deadline_rungs_skipped_total", {"rung": "b7"}) == 1
    assert sample("baocao_deadline_rungs_skipped_total", {"rung": "b3"}) is None
    assert sample("baocao_deadline_rungs_pending", {"plan": PLAN.id, "period": PERIOD}) == 5


class BrokenStore(FakeDeadlinesStore):
    """MongoDB away: every scan fails at its first read."""

    async def submitted_units(self, period_ids: Iterable[str]) -> dict[str, set[str]]:
        raise ConnectionError("MongoDB away")


class StuckStore(FakeDeadlinesStore):
    """A read that never answers: the scan hangs on it."""

    async def submitted_units(self, period_ids: Iterable[str]) -> dict[str, set[str]]:
        await asyncio.Event().wait()
        return {}


async def beats_after_one_turn(store: FakeDeadlinesStore) -> tuple[float | None, float | None]:
    """(heartbeat, last success) once the loop had the time for one turn."""
    app = build_app(
        DeadlinesSettings(namespace="unit", scan_interval_seconds=3600),
        clock=FixedClock(NOW),
        catalog=Catalog({PLAN.id: PLAN}),
    )
    scheduler = app.state.scheduler
    scheduler.store = store
    registry = app.state.runtime.registry
    loop = asyncio.create_task(scheduler.run())
    try:
        for _ in range(100):
            await asyncio.sleep(0.01)
            if registry.get_sample_value("baocao_deadline_scan_heartbeat_timestamp_seconds"):
                break
    finally:
        loop.cancel()
    assert registry.get_sample_value("baocao_deadline_scan_interval_seconds") == 3600
    return (
        registry.get_sample_value("baocao_deadline_scan_heartbeat_timestamp_seconds"),
        registry.get_sample_value("baocao_deadline_scan_last_success_timestamp_seconds"),
    )


async def test_a_failing_scan_still_beats_the_loops_heartbeat() -> None:
    heartbeat, success = await beats_after_one_turn(BrokenStore(MemoryOutbox(FixedClock(NOW))))
    assert heartbeat and heartbeat > 0
    assert not success  # the scan failed: the stale-scan alert's series stays behind


async def test_a_scan_stuck_on_a_read_stops_the_heartbeat() -> None:
    heartbeat, success = await beats_after_one_turn(StuckStore(MemoryOutbox(FixedClock(NOW))))
    assert not heartbeat and not success
