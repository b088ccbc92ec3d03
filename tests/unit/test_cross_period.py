"""Cross-period checks in the report: last period's figures beside these, and an annual count
lower than the same unit's six-month figure of the same year flagged."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import docx
import pytest
from prometheus_client import CollectorRegistry

from contracts.events import (
    IndicatorTotal,
    IndicatorValue,
    ReportConsolidatedPayload,
    TaskReport,
    UnitIndicatorValue,
)
from contracts.report_v2 import ReportConsolidatedV2Payload
from services.common.clock import FixedClock
from services.common.periods import Period, find_period
from services.common.reference import Catalog, load_plan
from services.consolidate import content, docx_report
from services.consolidate.domain import (
    SubmissionRow,
    consolidate,
    previous_period,
    shorter_window,
)
from services.consolidate.handlers import Consolidation, consolidate_now
from services.consolidate.metrics import ConsolidateMetrics
from tests.support.fakes import FakeConsolidateStore, MemoryOutbox
from tests.support.report_files import MemoryFileStore

pytestmark = pytest.mark.unit

PLAN = load_plan(Path(__file__).resolve().parents[2] / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml")
TASK, CODE = "ii-1-1-tuyen-truyen-giao-duc", "so-buoi-tuyen-truyen"


def period(period_id: str) -> Period:
    found = find_period(PLAN, period_id)
    assert found is not None
    return found


SIX_MONTHS, ANNUAL = (
    period("kh-nq35-ngoc-hoi.2027.6-thang"),
    period("kh-nq35-ngoc-hoi.2027.hang-nam"),
)


def rows_of(p: Period, figures: dict[str, float]) -> list[SubmissionRow]:
    return [
        SubmissionRow(
            submission_id=f"{unit_id}-{p.id}",
            receipt_no="BC-1",
            unit_id=unit_id,
            revision=1,
            received_at=p.due_at - dt.timedelta(days=1),
            tasks=(
                TaskReport(
                    task_id=TASK,
                    status="completed",
                    results="xong",
                    indicators=[IndicatorValue(code=CODE, value=value)],
                ),
            ),
        )
        for unit_id, value in figures.items()
    ]


def report(p: Period, figures: dict[str, float]) -> ReportConsolidatedPayload:
    return consolidate(
        PLAN, p, rows_of(p, figures), now=p.closes_at, trigger="period_closed", version=1,
        report_id="r",
    )  # fmt: skip


def test_the_previous_period_and_the_shorter_window_of_the_same_year() -> None:
    assert previous_period(PLAN, ANNUAL) == period("kh-nq35-ngoc-hoi.2026.hang-nam")
    assert shorter_window(PLAN, ANNUAL) == SIX_MONTHS
    assert shorter_window(PLAN, SIX_MONTHS) is None


def test_an_annual_count_below_the_six_month_figure_is_flagged_and_last_figures_shown() -> None:
    half = report(SIX_MONTHS, {"xa-bo-y": 5, "xa-dak-ang": 2})
    year = report(ANNUAL, {"xa-bo-y": 3, "xa-dak-ang": 4})
    last_year = report(period("kh-nq35-ngoc-hoi.2026.hang-nam"), {"xa-bo-y": 7})
    built = content.build(year, PLAN, previous=last_year, shorter=half)
    assert built.previous_title == last_year.title
    assert [r.previous for r in built.indicators if r.code == CODE] == ["7"]
    [flag] = built.cross_checks
    assert flag == (
        "Ủy ban nhân dân xã Bờ Y – Số buổi tuyên truyền, quán triệt: 3 (Báo cáo năm 2027), "
        "thấp hơn 5 (Báo cáo 6 tháng năm 2027)."
    )
    document = docx.Document(io.BytesIO(docx_report.render(built)))
    texts = [p.text for p in document.paragraphs]
    texts += [p.text for t in document.tables for c in t._cells for p in c.paragraphs]
    assert any(t.startswith("Kỳ trước (") for t in texts)
    assert "Số liệu cần xem lại:" in texts and f"- {flag}" in texts


def test_without_other_reports_nothing_is_added() -> None:
    built = content.build(report(ANNUAL, {"xa-bo-y": 3}), PLAN)
    assert (built.previous_title, built.cross_checks) == ("", [])
    assert all(r.previous == "" for r in built.indicators)


def test_a_percentage_shows_its_lowest_highest_and_mean_beside_the_aggregate() -> None:
    total = IndicatorTotal(
        code="ty-le",
        name="Tỷ lệ hộ",
        unit_of_measure="%",
        total=92.4,
        reporting_units=3,
        type="percentage",
        aggregation="weighted_mean",
        value=92.4,
        values=[
            UnitIndicatorValue(unit_id=u, unit_kind="commune", task_id="t", value=v, weight=w)
            for u, v, w in (("a", 90.0, 1200), ("b", 98.0, 3000), ("c", 75.0, 800))
        ],
    )
    row = content._indicator_row(total, {})
    assert row.value == "92,4 %"
    assert row.spread == "thấp nhất 75 %, cao nhất 98 %, trung bình cộng 87,67 %"


async def test_the_shorter_window_is_read_back_from_its_recorded_detail_file() -> None:
    """Recorded since v2, the six-month report keeps its units' figures in its detail file:
    the annual DOCX still finds the count that went down."""
    clock = FixedClock(ANNUAL.closes_at)
    store, files = FakeConsolidateStore(), MemoryFileStore()
    c = Consolidation(
        Catalog({PLAN.id: PLAN}),
        store,
        MemoryOutbox(clock),
        clock,
        lambda: None,
        ConsolidateMetrics(CollectorRegistry()),
        files,
        render_pdf=False,
    )
    for p, figures in ((SIX_MONTHS, {"xa-bo-y": 5}), (ANNUAL, {"xa-bo-y": 3})):
        store.rows[p.id] = {row.submission_id: row for row in rows_of(p, figures)}
    half = await consolidate_now(SIX_MONTHS.id, c=c, request_id="6-thang")
    stored = store.stored[SIX_MONTHS.id][half.report_id]
    assert stored.inline_detail is None and isinstance(half, ReportConsolidatedV2Payload)

    year = await consolidate_now(ANNUAL.id, c=c, request_id="nam")

    assert year.document is not None
    recorded = store.stored[ANNUAL.id][year.report_id]
    found = await files.get(ANNUAL.id, recorded.event_id, year.document.filename)
    assert found is not None
    document = docx.Document(io.BytesIO(found.data))
    texts = [p.text for p in document.paragraphs]
    assert "Số liệu cần xem lại:" in texts
    assert any("xã Bờ Y" in t and "thấp hơn 5" in t for t in texts), texts
