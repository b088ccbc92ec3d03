"""Handlers of the consolidate service against in-memory fakes of the store and outbox."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from prometheus_client import CollectorRegistry

from contracts.events import (
    FilingExceptionGranted,
    FilingExceptionGrantedPayload,
    PeriodClosed,
    PeriodClosedPayload,
    ReportConsolidated,
    SubmissionReceived,
    SubmissionReceivedPayload,
    TaskReport,
)
from contracts.report_v2 import (
    ReportConsolidatedV2,
    ReportConsolidatedV2Payload,
    ReportDetail,
    ReportSummary,
)
from services.common.clock import FixedClock
from services.common.failures import PermanentError
from services.common.mongo import to_millis
from services.common.outbox import READY
from services.common.periods import find_period
from services.common.reference import Catalog
from services.consolidate.domain import (
    content_hash,
    report_id_for_amendment,
    report_id_for_closing,
)
from services.consolidate.handlers import (
    MAX_VERSION_RACES,
    Consolidation,
    PeriodNotOpen,
    TooManyVersionConflicts,
    UnknownPeriod,
    amend_closed_reports,
    consolidate_now,
    live_status,
    on_filing_exception_granted,
    on_period_closed,
    on_submission_received,
    on_submissions_received,
    preview,
)
from services.consolidate.metrics import ConsolidateMetrics
from services.consolidate.store import StoredReport
from tests.support.decisions import FakeConsolidateTerms
from tests.support.fakes import FakeConsolidateStore, MemoryOutbox
from tests.support.plans import make_plan, report_kind, task, unit
from tests.support.report_files import MemoryFileStore

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


class RivalStore(FakeConsolidateStore):
    """Another consolidation records the version we are about to record, ``races`` times."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races
        self.tried_versions: list[int] = []

    async def add_report(
        self,
        payload: ReportConsolidatedV2Payload,
        *,
        cause: str,
        content_hash: str,
        event_id: str,
        v1_event_id: str | None = None,
    ) -> None:
        self.tried_versions.append(payload.version)
        if self.races > 0:
            self.races -= 1
            rival = payload.model_copy(update={"report_id": str(uuid.uuid4())})
            # The rival saw other submissions: its content differs from ours.
            await super().add_report(
                rival, cause="rival", content_hash=f"rival-{self.races}", event_id="rival"
            )
        await super().add_report(
            payload,
            cause=cause,
            content_hash=content_hash,
            event_id=event_id,
            v1_event_id=v1_event_id,
        )


class SameRequestFirst(FakeConsolidateStore):
    """A concurrent request with the same idempotency key records the same report first."""

    async def add_report(
        self,
        payload: ReportConsolidatedV2Payload,
        *,
        cause: str,
        content_hash: str,
        event_id: str,
        v1_event_id: str | None = None,
    ) -> None:
        if await self.report(payload.period_id, payload.report_id) is None:
            await super().add_report(
                payload, cause=cause, content_hash=content_hash, event_id="the-other-request"
            )
        await super().add_report(
            payload,
            cause=cause,
            content_hash=content_hash,
            event_id=event_id,
            v1_event_id=v1_event_id,
        )


class AmendedMeanwhile(FakeConsolidateStore):
    """While the closing consolidation records its report, a late submission is projected.

    The consumers of PeriodClosed and SubmissionReceived run concurrently: the closing
    consolidation read the submissions before this one was projected.
    """

    def __init__(self, late: SubmissionReceived) -> None:
        super().__init__()
        self.lagging: SubmissionReceived | None = late
        self.c: Consolidation | None = None

    async def add_report(
        self,
        payload: ReportConsolidatedV2Payload,
        *,
        cause: str,
        content_hash: str,
        event_id: str,
        v1_event_id: str | None = None,
    ) -> None:
        if self.lagging is not None and self.c is not None:
            late, self.lagging = self.lagging, None
            await on_submission_received(late, c=self.c)
        await super().add_report(
            payload,
            cause=cause,
            content_hash=content_hash,
            event_id=event_id,
            v1_event_id=v1_event_id,
        )


class Deps:
    def __init__(
        self, store: FakeConsolidateStore | None = None, terms: FakeConsolidateTerms | None = None
    ) -> None:
        self.store = store or FakeConsolidateStore()
        self.clock = FixedClock(NOW)
        self.outbox = MemoryOutbox(self.clock)
        self.registry = CollectorRegistry()
        self.wakes = 0
        self.files = MemoryFileStore()
        self.c = Consolidation(
            CATALOG,
            self.store,
            self.outbox,
            self.clock,
            self.wake,
            ConsolidateMetrics(self.registry),
            self.files,
            documents=False,  # versions are the subject here, not their DOCX
            terms=terms,
        )

    def wake(self) -> None:
        self.wakes += 1

    async def submit(self, event: SubmissionReceived) -> None:
        await on_submission_received(event, c=self.c)

    async def close(self, event: PeriodClosed) -> None:
        await on_period_closed(event, c=self.c)

    async def amend(self) -> int:
        return await amend_closed_reports(self.c)

    async def request(self, request_id: str, period_id: str = PERIOD_ID) -> ReportSummary:
        return await consolidate_now(period_id, c=self.c, request_id=request_id)

    def announced(self) -> list[ReportConsolidatedV2]:
        """The reports (v2) waiting in the outbox, in version order."""
        events = [e for e in self.outbox.events() if isinstance(e, ReportConsolidatedV2)]
        return sorted(events, key=lambda e: e.payload.version)

    def announced_v1(self) -> list[ReportConsolidated]:
        events = [e for e in self.outbox.events() if isinstance(e, ReportConsolidated)]
        return sorted(events, key=lambda e: e.payload.version)

    async def detail(self, stored: StoredReport) -> ReportDetail:
        assert isinstance(stored.payload, ReportConsolidatedV2Payload)
        found = await self.files.get(PERIOD_ID, stored.event_id, stored.payload.detail.filename)
        assert found is not None
        return ReportDetail.model_validate_json(found.data)

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
    deps = Deps()
    event = submitted("phong-a")

    await deps.submit(event)
    await deps.submit(event)

    assert list(deps.store.rows[PERIOD_ID]) == ["s-phong-a-1"]
    assert deps.outbox.all() == []  # the period is open: nothing to amend


async def test_a_redelivered_period_closed_records_one_report() -> None:
    deps = Deps()
    await deps.submit(submitted("phong-a"))
    event = closed()

    await deps.close(event)
    await deps.close(event)

    [stored] = await deps.store.reports(PERIOD_ID)
    [report] = deps.announced()
    [v1] = deps.announced_v1()
    assert stored.cause == str(event.event_id)
    assert stored.event_id == str(report.event_id)
    assert stored.v1_event_id == str(v1.event_id)
    assert stored.payload == report.payload
    assert report.payload.report_id == report_id_for_closing(event.event_id)
    assert report.causation_id == event.event_id == v1.causation_id
    assert report.correlation_id == event.correlation_id == v1.correlation_id
    assert report.payload.trigger == "period_closed"
    assert (report.payload.expected, report.payload.received, report.payload.missing) == (2, 1, 1)
    # Both versions of the event say the same version with the same hash.
    assert (v1.payload.report_id, v1.payload.version) == (report.payload.report_id, 1)
    assert report.payload.content_hash == v1.payload.content_hash == content_hash(v1.payload)
    assert report.payload.content_hash == stored.content_hash
    assert report.payload.supersedes is None
    # milliseconds only, as MongoDB keeps them
    assert report.payload.consolidated_at == NOW.replace(microsecond=123_000)
    assert await deps.store.is_closed(PERIOD_ID)
    assert [e["state"] for e in deps.outbox.all()] == [READY, READY]
    assert (deps.wakes, deps.consolidated("period_closed")) == (1, 1.0)


async def test_an_unknown_period_is_rejected_for_good() -> None:
    deps = Deps()
    with pytest.raises(PermanentError):
        await deps.close(closed("kh-thu.2026.khong-co"))
    with pytest.raises(UnknownPeriod):
        await deps.request("r", period_id="kh-khac.2026.nam")
    assert deps.store.stored == {}
    assert deps.outbox.all() == []


async def test_a_period_that_has_not_opened_has_nothing_to_consolidate() -> None:
    deps = Deps()
    with pytest.raises(PeriodNotOpen):
        await deps.request("r", period_id="kh-thu.2027.nam")
    assert deps.outbox.all() == []


async def test_requests_get_a_new_version_only_when_there_is_something_new() -> None:
    deps = Deps()
    await deps.submit(submitted("phong-a"))

    first = await deps.request("a")
    again = await deps.request("a")  # the same request retried
    nothing_new = await deps.request("b")  # another request, the same submissions
    await deps.submit(submitted("xa-b"))
    second = await deps.request("c")

    assert (first.version, again.version, nothing_new.version, second.version) == (1, 1, 1, 2)
    assert again == nothing_new == first
    assert second.supersedes == first.report_id
    assert (first.received, second.received) == (1, 2)
    assert [r.payload.version for r in deps.announced()] == [1, 2]
    assert deps.consolidated("requested") == 2.0
    assert deps.wakes == 2


async def test_the_first_closing_version_is_recorded_even_when_a_draft_said_the_same() -> None:
    deps = Deps()
    await deps.submit(submitted("phong-a"))
    draft = await deps.request("ban-nhap")

    await deps.close(closed())

    [_, final] = deps.announced()
    assert final.payload.version == 2
    assert final.payload.trigger == "period_closed"
    assert final.payload.supersedes == draft.report_id
    assert final.payload.content_hash == draft.content_hash


async def test_a_submission_projected_after_the_close_amends_the_closing_report_once() -> None:
    deps = Deps()
    await deps.submit(submitted("phong-a"))
    await deps.close(closed())
    late = submitted("xa-b")

    await deps.submit(late)
    await deps.submit(late)  # redelivered
    assert len(deps.c.pending) == 1
    assert await deps.amend() == 1
    assert await deps.amend() == 0

    [closing, amended] = deps.announced()
    assert amended.payload.version == 2
    assert amended.payload.trigger == "period_closed"
    key = f"submission {late.payload.submission_id}"
    assert amended.payload.report_id == report_id_for_amendment([key])
    assert amended.payload.supersedes == closing.payload.report_id
    assert (amended.payload.received, amended.payload.missing) == (2, 0)
    assert amended.causation_id == late.event_id
    assert amended.correlation_id == late.correlation_id
    assert deps.consolidated("period_closed") == 2.0
    assert len(deps.c.pending) == 0


async def test_late_submissions_waiting_together_make_one_amendment() -> None:
    deps = Deps()
    await deps.submit(submitted("phong-a"))
    await deps.close(closed())
    late = [submitted("xa-b"), submitted("xa-b", revision=2)]
    for event in late:
        await deps.submit(event)

    assert await deps.amend() == 2

    [_, amended] = deps.announced()
    keys = sorted(f"submission {e.payload.submission_id}" for e in late)
    assert amended.payload.report_id == report_id_for_amendment(keys)
    assert (amended.payload.received, amended.payload.missing) == (2, 0)
    stored = await deps.store.latest(PERIOD_ID)
    assert stored is not None and stored.cause == f"{', '.join(keys)} after the close"


async def test_a_batch_after_the_close_amends_for_its_new_submissions_only() -> None:
    deps = Deps()
    early = submitted("phong-a")
    await deps.submit(early)
    await deps.close(closed())
    late = [submitted("xa-b"), submitted("xa-b", revision=2)]

    # a fetched batch that repeats one already projected, and carries one twice
    await on_submissions_received([early, *late, late[0]], c=deps.c)

    assert sorted(deps.store.rows[PERIOD_ID]) == ["s-phong-a-1", "s-xa-b-1", "s-xa-b-2"]
    assert await deps.amend() == 2
    [_, amended] = deps.announced()
    keys = sorted(f"submission {e.payload.submission_id}" for e in late)
    assert amended.payload.report_id == report_id_for_amendment(keys)


async def test_an_amendment_repeated_after_a_crash_before_forgetting_adds_no_version() -> None:
    deps = Deps()
    await deps.submit(submitted("phong-a"))
    await deps.close(closed())
    await deps.submit(submitted("xa-b"))
    kept = dict(deps.store.late)
    await deps.amend()
    deps.store.late.update(kept)  # the process died before forgetting them

    assert await deps.amend() == 1

    assert [e.payload.version for e in deps.announced()] == [1, 2]
    assert deps.store.late == {}


async def test_a_version_taken_by_a_racing_consolidation_moves_to_the_next() -> None:
    store = RivalStore(races=2)
    deps = Deps(store)

    report = await deps.request("r")

    assert store.tried_versions == [1, 2, 3]
    assert report.version == 3
    rival_v2 = next(r for r in await store.reports(PERIOD_ID) if r.payload.version == 2)
    assert report.supersedes == rival_v2.payload.report_id
    # The intents of the lost attempts were abandoned: the recorded version's events alone.
    latest = await store.latest(PERIOD_ID)
    assert latest is not None
    assert latest.payload == report
    assert sorted(e["_id"] for e in deps.outbox.all()) == sorted(
        [latest.event_id, latest.v1_event_id]
    )
    # ... and their files: the detail of the recorded version alone.
    assert {k[1].split("/")[0] for k in deps.files.files} == {latest.event_id}


async def test_endless_version_races_give_up_and_announce_nothing() -> None:
    deps = Deps(RivalStore(races=MAX_VERSION_RACES))

    with pytest.raises(TooManyVersionConflicts):
        await deps.request("r")

    assert deps.outbox.all() == []
    assert deps.wakes == 0


async def test_a_report_recorded_first_by_the_same_request_is_answered_not_repeated() -> None:
    deps = Deps(SameRequestFirst())

    report = await deps.request("r")

    [stored] = await deps.store.reports(PERIOD_ID)
    assert isinstance(stored, StoredReport)
    assert report == stored.payload
    assert stored.event_id == "the-other-request"
    assert deps.outbox.all() == []  # our intent was abandoned; the other request announces it
    assert deps.wakes == 0


async def test_a_preview_stores_and_announces_nothing() -> None:
    deps = Deps()
    await deps.submit(submitted("phong-a"))

    seen = await preview(PERIOD_ID, c=deps.c)

    assert (seen.report_id, seen.version, seen.received) == ("preview", 1, 1)
    assert seen.content_hash == content_hash(seen)
    assert deps.store.stored == {}
    assert deps.outbox.all() == []


async def test_a_submission_projected_while_the_closing_records_is_counted_by_the_amendment() -> (
    None
):
    late = submitted("xa-b")
    store = AmendedMeanwhile(late)
    deps = Deps(store)
    store.c = deps.c
    await deps.submit(submitted("phong-a"))

    await deps.close(closed())
    await deps.amend()

    latest = await store.latest(PERIOD_ID)
    assert latest is not None
    assert latest.payload.received == 2
    reported = {u.unit_id for u in (await deps.detail(latest)).units if u.status != "missing"}
    assert reported == {"phong-a", "xa-b"}


def exception_granted(
    unit_id: str, until: dt.datetime, granted_at: dt.datetime
) -> FilingExceptionGranted:
    return FilingExceptionGranted(
        occurred_at=granted_at,
        producer="submissions",
        correlation_id=uuid.uuid4(),
        payload=FilingExceptionGrantedPayload(
            plan_id="kh-thu",
            period_id=PERIOD_ID,
            unit_id=unit_id,
            exception_id=f"{unit_id}|{granted_at:%s}",
            reason="Lũ cắt đường vào xã.",
            until=until,
            granted_by="tonghop",
            granted_at=granted_at,
        ),
    )


async def test_a_filing_exception_shows_the_unit_apart_from_the_missing_while_in_force() -> None:
    terms = FakeConsolidateTerms()
    deps = Deps(terms=terms)
    await deps.submit(submitted("phong-a"))
    until = NOW + dt.timedelta(days=3)
    granted = exception_granted("xa-b", until, NOW - dt.timedelta(hours=1))
    await on_filing_exception_granted(granted, c=deps.c)
    await on_filing_exception_granted(granted, c=deps.c)  # redelivered
    # An earlier grant delivered late (another partition's lag) does not replace the later.
    earlier = exception_granted("xa-b", NOW + dt.timedelta(days=1), NOW - dt.timedelta(days=2))
    await on_filing_exception_granted(earlier, c=deps.c)

    status = await live_status(PERIOD_ID, c=deps.c)

    assert {u.unit_id: u.state for u in status.units} == {
        "phong-a": "on_time",
        "xa-b": "exception",
    }
    assert [u.exception_until for u in status.units] == [None, to_millis(until)]  # as stored
    assert (status.received, status.missing, status.exception) == (1, 1, 1)
    assert terms.exceptions_recorded == 3
    # Nothing to amend: the closed report counts receipts, which an exception does not change.
    assert deps.outbox.events() == []
    assert await deps.store.late_causes() == []

    deps.clock.advance(dt.timedelta(days=3, seconds=1))  # the exception has lapsed
    lapsed = await live_status(PERIOD_ID, c=deps.c)
    assert {u.unit_id: u.state for u in lapsed.units}["xa-b"] == "missing"
    assert lapsed.exception == 0
