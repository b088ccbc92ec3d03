"""The scan and the submission projection, against an in-memory store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pytest
from prometheus_client import CollectorRegistry

from services.common.clock import FixedClock
from services.common.periods import Period, find_period
from services.common.reference import Catalog
from services.deadlines.domain import Emission
from services.deadlines.handlers import on_submission_received, scan
from services.deadlines.metrics import DeadlinesMetrics
from services.deadlines.store import DeadlinesStore
from tests.support.events import submission_received
from tests.unit.test_deadlines_domain import small_plan

pytestmark = pytest.mark.unit


class FakeDeadlinesStore(DeadlinesStore):
    def __init__(self) -> None:
        self.submitted: dict[str, dt.datetime] = {}
        self.emissions: dict[str, Emission] = {}

    async def record_submission(
        self, period_id: str, unit_id: str, received_at: dt.datetime
    ) -> bool:
        key = f"{period_id}|{unit_id}"
        if key in self.submitted:
            return False
        self.submitted[key] = received_at
        return True

    async def submitted_units(self, period_ids: Iterable[str]) -> dict[str, set[str]]:
        wanted = set(period_ids)
        found: dict[str, set[str]] = {}
        for key in self.submitted:
            period_id, unit_id = key.split("|")
            if period_id in wanted:
                found.setdefault(period_id, set()).add(unit_id)
        return found

    async def recorded_keys(self, keys: Iterable[str]) -> set[str]:
        return set(keys) & set(self.emissions)

    async def record_emission(self, emission: Emission, *, recorded_at: dt.datetime) -> bool:
        if emission.key in self.emissions:
            return False
        self.emissions[emission.key] = emission
        return True


class Scanner:
    def __init__(self, at: dt.datetime) -> None:
        self.plan = small_plan()
        self.catalog = Catalog({self.plan.id: self.plan})
        self.store = FakeDeadlinesStore()
        self.clock = FixedClock(at)
        self.registry = CollectorRegistry()
        self.metrics = DeadlinesMetrics(self.registry)
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1

    async def __call__(self) -> int:
        return await scan(
            catalog=self.catalog,
            store=self.store,
            clock=self.clock,
            wake=self.wake,
            metrics=self.metrics,
            catch_up=dt.timedelta(days=30),
        )

    def emitted(self, kind: str) -> float | None:
        return self.registry.get_sample_value(
            "baocao_deadline_events_emitted_total", {"kind": kind}
        )


def the_period() -> Period:
    plan = small_plan()
    period = find_period(plan, f"{plan.id}.2027.6-thang")
    assert period is not None
    return period


async def test_a_scan_records_each_due_emission_once_and_wakes_the_relay() -> None:
    period = the_period()
    scanner = Scanner(period.due_at - 3 * dt.timedelta(days=1))

    assert await scanner() == 3  # opened + the 3-day reminder for both units
    assert scanner.wakes == 1
    assert await scanner() == 0
    assert scanner.wakes == 1
    assert scanner.emitted("opened") == 1
    assert scanner.emitted("reminder") == 2
    assert scanner.emitted("overdue") == 0
    assert (
        scanner.registry.get_sample_value("baocao_deadline_scan_last_success_timestamp_seconds")
        or 0
    ) > 0


async def test_a_reported_unit_is_neither_reminded_nor_overdue() -> None:
    period = the_period()
    scanner = Scanner(period.due_at - 7 * dt.timedelta(days=1))
    event = submission_received(period, "xa-a", scanner.clock.now())

    await on_submission_received(event, store=scanner.store)
    await on_submission_received(event, store=scanner.store)  # redelivered: no harm
    await scanner()
    scanner.clock.advance(8 * dt.timedelta(days=1))
    await scanner()

    assert sorted(scanner.store.emissions) == [
        f"opened|{period.id}",
        f"overdue|{period.id}|xa-b",
        f"reminder|{period.id}|xa-b|7",
    ]
