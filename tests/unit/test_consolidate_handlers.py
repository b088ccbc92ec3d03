"""Handlers of the consolidate service against an in-memory store (a subclass of the port)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry

from contracts.events import (
    PeriodClosed,
    PeriodClosedPayload,
    ReportConsolidated,
    ReportConsolidatedPayload,
    SubmissionReceived,
    SubmissionReceivedPayload,
    TaskReport,
)
from services.common.clock import FixedClock
from services.common.consumer import PermanentError
from services.common.periods import find_period
from services.common.reference import Catalog
from services.consolidate.domain import SubmissionRow
from services.consolidate.handlers import (
    UnknownPeriod,
    consolidate_now,
    on_period_closed,
    on_submission_received,
)
from services.consolidate.metrics import ConsolidateMetrics
from services.consolidate.store import (
    ConsolidateStore,
    ReportExists,
    StoredReport,
    VersionTaken,
)
from tests.support.plans import make_plan, report_kind, task, unit

pytestmark = pytest.mark.unit

PLAN = make_plan(
    plan_id="kh-thu",
    consolidating_unit_id="phong-a",
    units=[
        unit("phong-a", "Phòng A", "specialised_office"),
        unit("xa-b", "UBND xã B", "commune"),
    ],
    tasks=[task("viec-1", "I", "Việc 1", ["phong-a", "xa-b"])],
    schedule=[
        report_kind("nam", "Báo cáo năm", due_before="11-20", data_from="01-01", data_to="11-19")
    ],
)
PERIOD_ID = "kh-thu.2026.nam"
FOUND = find_period(PLAN, PERIOD_ID)
assert FOUND is not None
PERIOD = FOUND
CATALOG = Catalog({PLAN.id: PLAN})
NOW = PERIOD.closes_at + dt.timedelta(minutes=1, microseconds=123_456)


class MemoryStore(ConsolidateStore):
    def __init__(self, version_races: int = 0) -> None:
        self.rows: dict[str, SubmissionRow] = {}
        self.recorded: dict[str, tuple[ReportConsolidated, str]] = {}
        self.version_races = version_races

    async def add_submission(self, submission: SubmissionReceivedPayload) -> bool:
        if submission.submission_id in self.rows:
            return False
        self.rows[submission.submission_id] = SubmissionRow(
            submission.submission_id,
            submission.receipt_no,
            submission.unit_id,
            submission.revision,
            submission.received_at,
            tuple(submission.tasks),
        )
        return True

    async def submissions(self, period_id: str) -> list[SubmissionRow]:
        return list(self.rows.values())

    async def report(self, report_id: str) -> StoredReport | None:
        found = self.recorded.get(report_id)
        return StoredReport(found[0].payload, found[1], False) if found else None

    async def latest_version(self, period_id: str) -> int:
        return max((e.payload.version for e, _ in self.recorded.values()), default=0)

    async def add_report(self, event: ReportConsolidated, *, cause: str) -> None:
        if event.payload.report_id in self.recorded:
            raise ReportExists(event.payload.report_id)
        if self.version_races:
            self.version_races -= 1
            raise VersionTaken(str(event.payload.version))
        self.recorded[event.payload.report_id] = (event, cause)

    async def reports(self, period_id: str) -> list[StoredReport]:
        found = [StoredReport(e.payload, c, False) for e, c in self.recorded.values()]
        return sorted(found, key=lambda r: -r.payload.version)


class Wake:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


@dataclass
class Deps:
    store: MemoryStore = field(default_factory=MemoryStore)
    wake: Wake = field(default_factory=Wake)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.metrics = ConsolidateMetrics(self.registry)

    async def close(self, event: PeriodClosed) -> None:
        await on_period_closed(
            event,
            catalog=CATALOG,
            store=self.store,
            clock=FixedClock(NOW),
            wake=self.wake,
            metrics=self.metrics,
        )

    async def request(
        self, request_id: str, period_id: str = PERIOD_ID
    ) -> ReportConsolidatedPayload:
        return await consolidate_now(
            period_id,
            catalog=CATALOG,
            store=self.store,
            clock=FixedClock(NOW),
            wake=self.wake,
            metrics=self.metrics,
            request_id=request_id,
        )

    def consolidated(self, trigger: str) -> float | None:
        return self.registry.get_sample_value(
            "baocao_reports_consolidated_total", {"trigger": trigger}
        )


def closed(period_id: str = PERIOD_ID) -> PeriodClosed:
    return PeriodClosed(
        occurred_at=NOW,
        producer="deadlines",
        correlation_id=uuid.uuid4(),
        payload=PeriodClosedPayload(
            plan_id="kh-thu",
            period_id=period_id,
            report_kind="nam",
            year=2026,
            due_at=PERIOD.due_at,
            closed_at=NOW,
        ),
    )


def submitted(unit_id: str, revision: int = 1) -> SubmissionReceived:
    return SubmissionReceived(
        occurred_at=NOW,
        producer="submissions",
        correlation_id=uuid.uuid4(),
        payload=SubmissionReceivedPayload(
            submission_id=f"s-{unit_id}-{revision}",
            receipt_no=f"BC-{revision}",
            plan_id="kh-thu",
            period_id=PERIOD_ID,
            unit_id=unit_id,
            revision=revision,
            received_at=PERIOD.due_at - dt.timedelta(days=1),
            due_at=PERIOD.due_at,
            on_time=True,
            tasks=[TaskReport(task_id="viec-1", status="completed", results="xong")],
        ),
    )


async def test_a_redelivered_submission_is_projected_once() -> None:
    store = MemoryStore()
    event = submitted("phong-a")
    await on_submission_received(event, store=store)
    await on_submission_received(event, store=store)
    assert list(store.rows) == ["s-phong-a-1"]


async def test_a_redelivered_period_closed_records_one_report() -> None:
    deps = Deps()
    await on_submission_received(submitted("phong-a"), store=deps.store)
    event = closed()
    await deps.close(event)
    await deps.close(event)

    assert len(deps.store.recorded) == 1
    ((report, cause),) = deps.store.recorded.values()
    assert cause == str(event.event_id)
    assert report.causation_id == event.event_id
    assert report.correlation_id == event.correlation_id
    assert report.payload.trigger == "period_closed"
    assert (report.payload.expected, report.payload.received, report.payload.missing) == (2, 1, 1)
    # milliseconds only, as MongoDB keeps them
    assert report.payload.consolidated_at == NOW.replace(microsecond=123_000)
    assert (deps.wake.calls, deps.consolidated("period_closed")) == (1, 1.0)


async def test_an_unknown_period_is_rejected_for_good() -> None:
    deps = Deps()
    with pytest.raises(PermanentError):
        await deps.close(closed("kh-thu.2026.khong-co"))
    with pytest.raises(UnknownPeriod):
        await deps.request("r", period_id="kh-khac.2026.nam")
    assert deps.store.recorded == {}


async def test_requests_get_new_versions_unless_repeated() -> None:
    deps = Deps()
    first = await deps.request("a")
    again = await deps.request("a")
    second = await deps.request("b")
    assert (first.version, again.version, second.version) == (1, 1, 2)
    assert again == first
    assert deps.consolidated("requested") == 2.0


async def test_a_version_taken_by_a_racing_consolidation_moves_to_the_next() -> None:
    deps = Deps(store=MemoryStore(version_races=2))
    assert (await deps.request("r")).version == 3
