"""The scan and the submission projection, against in-memory fakes of the store and outbox."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from contracts.events import ReportReviewed
from services.common.clock import FixedClock
from services.common.outbox import READY
from services.common.periods import Period, find_period
from services.common.reference import Catalog
from services.deadlines import domain, handlers
from services.deadlines.domain import Emission
from services.deadlines.handlers import on_report_reviewed, on_submission_received, scan
from services.deadlines.metrics import DeadlinesMetrics
from tests.support.events import submission_received
from tests.support.fakes import FakeDeadlinesStore, MemoryOutbox
from tests.unit.test_deadlines_domain import small_plan

pytestmark = pytest.mark.unit


class Scanner:
    def __init__(self, at: dt.datetime) -> None:
        self.plan = small_plan()
        self.catalog = Catalog({self.plan.id: self.plan})
        self.clock = FixedClock(at)
        self.outbox = MemoryOutbox(self.clock)
        self.store = FakeDeadlinesStore(self.outbox)
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


async def test_each_decision_is_stored_with_its_event_ready_in_the_outbox() -> None:
    period = the_period()
    scanner = Scanner(period.due_at - 3 * dt.timedelta(days=1))

    await scanner()

    entries = scanner.outbox.all()
    assert [e["state"] for e in entries] == [READY] * 3
    assert sorted(e["_id"] for e in entries) == sorted(
        d["event_id"] for d in scanner.store.emissions.values()
    )
    assert {e["ref"]["id"] for e in entries} == set(scanner.store.emissions)
    assert {e["event_type"] for e in entries} == {"period.opened", "deadline.approaching"}


async def test_a_scan_stores_each_chunk_before_it_decides_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    period = the_period()
    scanner = Scanner(period.due_at - 3 * dt.timedelta(days=1))  # opened + 2 reminders
    steps: list[str] = []
    decide, record = domain.emissions_due, scanner.store.record_emissions

    def decided(*args: Any, **kwargs: Any) -> Iterator[Emission]:
        for emission in decide(*args, **kwargs):
            steps.append("decided")
            yield emission

    async def recorded(emissions: list[Emission], *, recorded_at: dt.datetime) -> list[Emission]:
        steps.append(f"stored {len(emissions)}")
        return await record(emissions, recorded_at=recorded_at)

    monkeypatch.setattr(handlers, "SCAN_CHUNK", 2)
    monkeypatch.setattr(handlers, "emissions_due", decided)
    monkeypatch.setattr(scanner.store, "record_emissions", recorded)

    assert await scanner() == 3
    assert steps == ["decided", "decided", "stored 2", "decided", "stored 1"]
    assert scanner.wakes == 2  # once a chunk's worth was stored, and at the end
    assert len(scanner.outbox.ready_entries()) == 3


async def test_a_restarted_process_decides_nothing_again() -> None:
    period = the_period()
    scanner = Scanner(period.due_at - 3 * dt.timedelta(days=1))
    await scanner()
    waiting = scanner.outbox.all()

    scanner.store = scanner.store.restarted()  # its events still wait in the outbox
    assert await scanner() == 0
    assert scanner.outbox.all() == waiting

    await scanner.outbox.sent(waiting, settled=set())  # relayed; the decisions stay
    scanner.store = scanner.store.restarted()
    assert await scanner() == 0
    assert scanner.outbox.all() == []  # the intents of the repeated decisions were abandoned
    assert scanner.wakes == 1


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
    assert len(scanner.outbox.all()) == 3


def reviewed(period: Period, decision: str, at: dt.datetime) -> ReportReviewed:
    return ReportReviewed.model_validate(
        {
            "occurred_at": at,
            "producer": "submissions",
            "correlation_id": uuid.uuid4(),
            "payload": {
                "plan_id": period.plan_id,
                "period_id": period.id,
                "unit_id": "xa-a",
                "review_id": "r-1",
                "submission_id": "s-1",
                "revision": 1,
                "decision": decision,
                "reviewer": "kiem-tra",
                "reviewed_at": at,
            },
        }
    )


async def test_a_returned_report_reenters_the_ladder_and_a_new_version_leaves_it() -> None:
    plan = small_plan(reminders={})
    period = find_period(plan, f"{plan.id}.2027.6-thang")
    assert period is not None
    scanner = Scanner(period.due_at - dt.timedelta(days=20))
    scanner.plan, scanner.catalog = plan, Catalog({plan.id: plan})
    store = scanner.store
    await on_submission_received(
        submission_received(period, "xa-a", period.due_at - dt.timedelta(days=20)), store=store
    )
    await on_report_reviewed(
        reviewed(period, "accepted", period.due_at - dt.timedelta(days=19)), store=store
    )
    assert await store.returned_units([period.id]) == {}
    await on_report_reviewed(
        reviewed(period, "returned", period.due_at - dt.timedelta(days=5)), store=store
    )

    # On the due day (the last day on time), the unit gets that day's rung again.
    scanner.clock = FixedClock(period.due_at - dt.timedelta(hours=1))
    await scanner()
    mine = [
        k
        for k, d in store.emissions.items()
        if k.startswith(f"rung|{period.id}|xa-a|") and d["kind"] != "skipped"
    ]
    assert len(mine) == 1
    assert mine[0].startswith(f"rung|{period.id}|xa-a|b0|returned=")

    # A new version: no overdue rung for it, while the unit that never reported gets one.
    await on_submission_received(
        submission_received(period, "xa-a", period.due_at - dt.timedelta(minutes=30)),
        store=store,
    )
    scanner.clock = FixedClock(period.due_at + dt.timedelta(days=3))
    await scanner()
    assert [
        k
        for k, d in store.emissions.items()
        if k.startswith(f"rung|{period.id}|xa-a|") and d["kind"] != "skipped"
    ] == mine
    assert any(k.startswith(f"rung|{period.id}|xa-b|a1") for k in store.emissions)


def rungs_skipped(registry: CollectorRegistry, rungs: Iterable[str]) -> dict[str, float | None]:
    name = "baocao_deadline_rungs_skipped_total"
    return {rung: registry.get_sample_value(name, {"rung": rung}) for rung in rungs}


async def test_after_downtime_only_the_latest_rung_is_sent_and_the_others_are_skipped() -> None:
    plan = small_plan(reminders={})
    period = find_period(plan, f"{plan.id}.2027.6-thang")
    assert period is not None
    # Down from before b14 (25/5) to Wednesday 16/6, after a1 (Tuesday 15/6 08:00).
    scanner = Scanner(period.due_at + dt.timedelta(days=1, hours=12))
    scanner.plan, scanner.catalog = plan, Catalog({plan.id: plan})
    await scanner()
    store = scanner.store
    for unit_id in ("xa-a", "xa-b"):
        mine = {k: d["kind"] for k, d in store.emissions.items() if f"|{unit_id}|" in k}
        prefix = f"rung|{period.id}|{unit_id}|"
        assert mine == {
            prefix + "a1": "overdue",
            **{prefix + r: "skipped" for r in ("b14", "b7", "b3", "b1", "b0")},
        }
        assert store.emissions[prefix + "b0"]["superseded_by"] == prefix + "a1"
    skipped = rungs_skipped(scanner.registry, ("b14", "b7", "b3", "b1", "b0", "a1"))
    assert skipped == {"b14": 2, "b7": 2, "b3": 2, "b1": 2, "b0": 2, "a1": None}
    events = [e for e in scanner.outbox.all() if e["event_type"] == "deadline.overdue"]
    assert len(events) == 2

    # Back to normal: the next rung is sent at its time, nothing more is skipped.
    scanner.clock = FixedClock(period.due_at + dt.timedelta(days=8))
    restarted = store.restarted()
    scanner.store = restarted
    await scanner()
    assert rungs_skipped(scanner.registry, skipped) == skipped
    assert f"rung|{period.id}|xa-a|a1+7d" in store.emissions
