"""ReportConsolidated v2: the summary in the event, the per-unit detail in a file.

The same code serves a district (30 units), a province (hundreds) and a national roll-up (tens
of thousands): the v2 event stays the same size whatever the units, v1 is published beside it
while it fits in a Kafka record and withheld (counted) when it does not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid

import pytest
from prometheus_client import CollectorRegistry

from contracts.events import (
    IndicatorValue,
    PeriodClosed,
    PeriodClosedPayload,
    ReportConsolidated,
    TaskReport,
)
from contracts.plan import Plan
from contracts.report_v2 import ReportConsolidatedV2, ReportDetail
from services.common.clock import FixedClock
from services.common.consumer import MAX_EVENT_BYTES
from services.common.periods import Period, find_period
from services.common.reference import Catalog
from services.consolidate.detail import detail_file, join, split, with_detail
from services.consolidate.domain import SubmissionRow, consolidate, content_hash
from services.consolidate.handlers import Consolidation, consolidate_now, on_period_closed
from services.consolidate.metrics import ConsolidateMetrics
from services.consolidate.publication import announcement
from tests.support.fakes import FakeConsolidateStore, MemoryOutbox
from tests.support.plans import make_plan, report_kind, unit
from tests.support.report_files import MemoryFileStore

pytestmark = pytest.mark.unit

SHARE, HOUSEHOLDS, DONE = "ty-le", "so-ho", "da-ban-hanh"
INDICATORS = [
    {"code": HOUSEHOLDS, "name": "Số hộ", "unit_of_measure": "hộ", "type": "count"},
    {
        "code": SHARE,
        "name": "Tỷ lệ hộ được tiếp cận thông tin",
        "unit_of_measure": "%",
        "type": "percentage",
        "aggregation": "weighted_mean",
        "weight": HOUSEHOLDS,
    },
    {"code": DONE, "name": "Đã ban hành kế hoạch", "type": "boolean", "aggregation": "count_yes"},
]


RESULTS = (
    "Tổ chức 4 buổi tuyên truyền, quán triệt Nghị quyết tại nhà văn hóa thôn, lồng ghép trong "
    "các cuộc họp thôn và sinh hoạt chi hội; phát 250 tờ rơi; đăng 6 tin bài trên trang thông tin "
    "điện tử và phát trên loa truyền thanh cơ sở 3 lần mỗi tuần. Người dân được tiếp cận thông "
    "tin đầy đủ, kịp thời; một số thôn vùng sâu còn thiếu cụm loa, đề nghị hỗ trợ kinh phí."
)
DIFFICULTIES = "Kinh phí hạn hẹp; người làm công tác thông tin cơ sở kiêm nhiệm, hay thay đổi."
PROPOSALS = "Đề nghị tỉnh mở lớp bồi dưỡng nghiệp vụ và hỗ trợ kinh phí thay thế cụm loa hỏng."
"""What a unit writes about a task: a paragraph of results (about 600 bytes of UTF-8), a
difficulty and a proposal (about 100 each)."""


def plan_of(units: int) -> Plan:
    ids = [f"xa-{n:05d}" for n in range(units)]
    return make_plan(
        format=2,
        plan_id=f"kh-{units}",
        consolidating_unit_id="van-phong",
        units=[
            unit("van-phong", "Văn phòng", "specialised_office", reports=False),
            *(unit(i, f"UBND xã số {n}", "commune") for n, i in enumerate(ids)),
        ],
        indicators=INDICATORS,
        tasks=[
            {
                "id": "nv-1",
                "section": "II.1",
                "title": "Tuyên truyền",
                "text": "Tuyên truyền.",
                "assignments": [{"unit_id": i} for i in ids],
                "indicators": [{"code": c} for c in (HOUSEHOLDS, SHARE, DONE)],
            }
        ],
        schedule=[
            report_kind(
                "nam", "Báo cáo năm", due_before="11-20", data_from="01-01", data_to="11-19"
            )
        ],
    )


def period_of(plan: Plan) -> Period:
    found = find_period(plan, f"{plan.id}.2026.nam")
    assert found is not None
    return found


def rows(
    plan: Plan, period: Period, results: str = "Đã tổ chức tuyên truyền."
) -> list[SubmissionRow]:
    """Every unit but one reports: households, a share and a yes/no (every fifth says no)."""
    return [
        SubmissionRow(
            submission_id=f"s-{u.id}",
            receipt_no=f"TN-2026-{n:06d}",
            unit_id=u.id,
            revision=1,
            received_at=period.due_at - dt.timedelta(hours=1 + n % 48),
            tasks=(
                TaskReport(
                    task_id="nv-1",
                    status="completed" if n % 3 else "in_progress",
                    results=results,
                    difficulties=DIFFICULTIES,
                    proposals=PROPOSALS,
                    indicators=[
                        IndicatorValue(code=HOUSEHOLDS, value=1000 + n % 700),
                        IndicatorValue(code=SHARE, value=50 + n % 50),
                        IndicatorValue(code=DONE, value=0 if n % 5 == 0 else 1, flag=n % 5 != 0),
                    ],
                ),
            ),
        )
        for n, u in enumerate(plan.reporting_units()[1:])
    ]


def consolidation(plan: Plan, period: Period) -> tuple[Consolidation, CollectorRegistry]:
    registry = CollectorRegistry()
    clock = FixedClock(period.closes_at + dt.timedelta(minutes=1))
    c = Consolidation(
        Catalog({plan.id: plan}),
        FakeConsolidateStore(),
        MemoryOutbox(clock),
        clock,
        lambda: None,
        ConsolidateMetrics(registry),
        MemoryFileStore(),
        public_url="https://tong-hop.example",
        documents=False,
    )
    return c, registry


def fill(c: Consolidation, period: Period, submissions: list[SubmissionRow]) -> None:
    assert isinstance(c.store, FakeConsolidateStore)
    c.store.rows[period.id] = {r.submission_id: r for r in submissions}


def events(c: Consolidation) -> tuple[list[ReportConsolidatedV2], list[ReportConsolidated]]:
    assert isinstance(c.outbox, MemoryOutbox)
    found = c.outbox.events()
    return (
        [e for e in found if isinstance(e, ReportConsolidatedV2)],
        [e for e in found if isinstance(e, ReportConsolidated)],
    )


async def detail_of(c: Consolidation, period: Period, event: ReportConsolidatedV2) -> bytes:
    stored = await c.files.get(period.id, str(event.event_id), event.payload.detail.filename)
    assert stored is not None
    return stored.data


def closed(plan: Plan, period: Period) -> PeriodClosed:
    return PeriodClosed(
        occurred_at=period.closes_at,
        producer="deadlines",
        correlation_id=uuid.uuid4(),
        payload=PeriodClosedPayload(
            plan_id=plan.id,
            period_id=period.id,
            report_kind="nam",
            year=2026,
            due_at=period.due_at,
            closed_at=period.closes_at,
        ),
    )


def size(event: ReportConsolidated | ReportConsolidatedV2) -> int:
    return len(event.model_dump_json().encode())


# --- the cut ---------------------------------------------------------------------------------


def test_the_summary_and_the_detail_join_back_into_the_whole_report() -> None:
    plan = plan_of(30)
    period = period_of(plan)
    whole = consolidate(
        plan, period, rows(plan, period), now=period.closes_at, trigger="period_closed",
        version=1, report_id="r",
    )  # fmt: skip
    whole = whole.model_copy(update={"content_hash": content_hash(whole)})

    summary, detail = split(whole)

    assert join(summary, detail) == whole
    assert (summary.expected, summary.received, summary.missing) == (30, 29, 1)
    [task_summary] = summary.tasks
    assert task_summary.reporting_units == 29
    assert task_summary.statuses == {"in_progress": 10, "completed": 19}
    assert [t.code for t in summary.indicator_totals] == [HOUSEHOLDS, SHARE, DONE]
    assert [a.code for a in detail.indicators] == [HOUSEHOLDS, SHARE, DONE]
    assert len(detail.units) == 30 and len(detail.indicators[1].values) == 29
    # What the province recomputes: the weighted share from the units' answers.
    share = detail.indicators[1].values
    recomputed = sum((v.value or 0) * (v.weight or 0) for v in share) / sum(
        v.weight or 0 for v in share
    )
    assert summary.indicator_totals[1].value == pytest.approx(recomputed)


def test_the_detail_file_is_canonical_json_the_same_for_the_same_content() -> None:
    plan = plan_of(30)
    period = period_of(plan)

    def cut(version: int, report_id: str, now: dt.datetime) -> bytes:
        whole = consolidate(
            plan, period, rows(plan, period), now=now, trigger="requested", version=version,
            report_id=report_id,
        )  # fmt: skip
        return detail_file(split(whole.model_copy(update={"content_hash": "0" * 64}))[1], 1).data

    first = cut(1, "a", period.closes_at)
    again = cut(7, "b", period.closes_at + dt.timedelta(days=3))
    assert first == again
    parsed = json.loads(first)
    assert first == json.dumps(
        parsed, sort_keys=True, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")
    assert "UBND xã số 1" in first.decode("utf-8")  # UTF-8, not escaped
    assert ReportDetail.model_validate(parsed).period_id == period.id


# --- through the handler ---------------------------------------------------------------------


async def test_a_district_version_goes_out_on_v2_with_its_detail_file_and_on_v1() -> None:
    plan = plan_of(30)
    period = period_of(plan)
    c, registry = consolidation(plan, period)
    fill(c, period, rows(plan, period))

    answered = await consolidate_now(period.id, c=c, request_id="r-1")

    [v2], [v1] = events(c)
    assert answered == v2.payload
    assert (v1.payload.report_id, v1.payload.version) == (v2.payload.report_id, 1)
    assert v1.payload.content_hash == v2.payload.content_hash
    detail = v2.payload.detail
    assert detail.filename == f"chi-tiet-{period.id}-v1.json"
    assert detail.url == (
        f"https://tong-hop.example/api/v1/periods/{period.id}/reports/"
        f"{v2.payload.report_id}/files/{detail.filename}"
    )
    data = await detail_of(c, period, v2)
    assert (hashlib.sha256(data).hexdigest(), len(data)) == (detail.sha256, detail.size)
    # The file holds exactly what v1 carries inline.
    assert join(v2.payload, ReportDetail.model_validate_json(data)) == v1.payload
    assert "units" not in json.loads(v2.model_dump_json())["payload"]
    assert registry.get_sample_value("baocao_reports_v1_withheld_total") == 0.0


async def test_a_version_that_says_the_same_has_the_same_detail_bytes() -> None:
    plan = plan_of(30)
    period = period_of(plan)
    c, _ = consolidation(plan, period)
    fill(c, period, rows(plan, period))
    await consolidate_now(period.id, c=c, request_id="draft")

    await on_period_closed(closed(plan, period), c=c)

    draft, final = sorted(events(c)[0], key=lambda e: e.payload.version)
    assert final.payload.version == 2
    assert final.payload.content_hash == draft.payload.content_hash
    assert final.payload.detail.sha256 == draft.payload.detail.sha256
    assert await detail_of(c, period, final) == await detail_of(c, period, draft)


async def test_a_province_of_800_units_goes_out_on_v2_only_and_that_is_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plan = plan_of(800)
    period = period_of(plan)
    c, registry = consolidation(plan, period)
    fill(c, period, rows(plan, period, results=RESULTS))

    await consolidate_now(period.id, c=c, request_id="r-1")

    [v2], v1 = events(c)
    assert v1 == []
    assert size(v2) < 16 * 1024
    assert v2.payload.detail.size > MAX_EVENT_BYTES  # what v1 would have carried inline
    assert registry.get_sample_value("baocao_reports_v1_withheld_total") == 1.0
    assert any("v1 withheld" in r.getMessage() for r in caplog.records)
    stored = await c.store.report(period.id, v2.payload.report_id)
    assert stored is not None and stored.v1_event_id is None


def test_the_v2_event_does_not_grow_with_the_units() -> None:
    """30, 800 and 20,000 units: the v2 event stays under 2 KB, v1 grows by about 1.3 KB a
    unit (its status, three answers, a paragraph of results, a difficulty and a proposal)."""
    sizes = {}
    for units in (30, 800, 20_000):
        plan = plan_of(units)
        period = period_of(plan)
        whole = consolidate(
            plan, period, rows(plan, period, RESULTS), now=period.closes_at,
            trigger="period_closed", version=1, report_id="r",
        )  # fmt: skip
        whole = whole.model_copy(update={"content_hash": content_hash(whole)})
        summary, detail = split(whole)
        v2 = with_detail(summary, detail_file(detail, 1), public_url="https://tong-hop.example")
        out = announcement(
            whole, v2, occurred_at=period.closes_at, correlation_id=uuid.uuid4(), causation_id=None
        )
        sizes[units] = (size(out.v2), out.v1_bytes, out.v1 is not None)

    # v2 bytes, v1 bytes (from 800 units: at least), v1 published
    assert sizes[30][2] and not sizes[800][2] and not sizes[20_000][2], sizes
    assert sizes[20_000][0] < 2 * 1024 < MAX_EVENT_BYTES, sizes
    assert sizes[20_000][0] - sizes[30][0] < 100, sizes  # a few more digits in the counts
    assert sizes[20_000][1] > 20 * MAX_EVENT_BYTES, sizes
