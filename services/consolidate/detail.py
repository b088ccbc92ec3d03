"""A report version cut in two for ``ReportConsolidated`` v2: the summary the event carries and
the per-unit detail its JSON file holds; and the two joined back into the whole (v1) payload.

Pure. The consolidation is still computed whole (``domain.PeriodFold.report``) and its content
hash over the whole, so v1 and v2 of one version carry the same hash; only what is published
and stored is cut.
"""

from __future__ import annotations

from collections import Counter
from typing import get_args

from contracts.events import IndicatorTotal, ReportConsolidatedPayload, TaskStatus
from contracts.report_v2 import (
    DetailFile,
    IndicatorAnswers,
    IndicatorSummary,
    ReportConsolidatedV2Payload,
    ReportDetail,
    ReportSummary,
    TaskSummary,
)
from services.consolidate.canonical import canonical_json
from services.consolidate.documents import RenderedFile, file_url

MEDIA_TYPE = "application/json"
_STATUS_ORDER: tuple[str, ...] = get_args(TaskStatus)


class NoContentHash(ValueError):
    """A summary is cut from a payload whose content hash was not worked out yet."""


def filename(period_id: str, version: int) -> str:
    """The detail file's name: unique per period and version, safe in a URL, beside the DOCX."""
    return f"chi-tiet-{period_id}-v{version}.json"


def split(whole: ReportConsolidatedPayload) -> tuple[ReportSummary, ReportDetail]:
    if whole.content_hash is None:
        raise NoContentHash(whole.report_id)
    summary = ReportSummary(
        **whole.model_dump(exclude={"units", "indicator_totals", "tasks", "document"}),
        document=whole.document,
        indicator_totals=[_indicator_summary(t) for t in whole.indicator_totals],
        tasks=[
            TaskSummary(
                task_id=t.task_id,
                section=t.section,
                title=t.title,
                reporting_units=len({e.unit_id for e in t.entries}),
                statuses=_statuses(Counter(e.status for e in t.entries)),
            )
            for t in whole.tasks
        ],
    )
    detail = ReportDetail(
        plan_id=whole.plan_id,
        period_id=whole.period_id,
        units=whole.units,
        indicators=[IndicatorAnswers(code=t.code, values=t.values) for t in whole.indicator_totals],
        tasks=whole.tasks,
    )
    return summary, detail


def _statuses(counts: Counter[str]) -> dict[str, int]:
    return {status: counts[status] for status in _STATUS_ORDER if counts[status]}


def _indicator_summary(total: IndicatorTotal) -> IndicatorSummary:
    # A v1 payload stored before plan format 2 had no value: its total was the sum.
    value = total.value if "value" in total.model_fields_set else total.total
    return IndicatorSummary(
        code=total.code,
        name=total.name,
        unit_of_measure=total.unit_of_measure,
        type=total.type,
        aggregation=total.aggregation,
        value=value,
        reporting_units=total.reporting_units,
        without_weight=total.without_weight,
        by_kind=total.by_kind,
    )


def join(summary: ReportSummary, detail: ReportDetail) -> ReportConsolidatedPayload:
    """The whole payload again (what the documents are rendered from, what v1 carries)."""
    answers = {a.code: a.values for a in detail.indicators}
    return ReportConsolidatedPayload(
        **summary.model_dump(exclude={"indicator_totals", "tasks", "document", "detail"}),
        document=summary.document,
        units=detail.units,
        indicator_totals=[
            IndicatorTotal(
                code=t.code,
                name=t.name,
                unit_of_measure=t.unit_of_measure,
                total=t.value if t.value is not None else 0.0,
                reporting_units=t.reporting_units,
                type=t.type,
                aggregation=t.aggregation,
                value=t.value,
                without_weight=t.without_weight,
                values=answers.get(t.code, []),
                by_kind=t.by_kind,
            )
            for t in summary.indicator_totals
        ],
        tasks=detail.tasks,
    )


def detail_file(detail: ReportDetail, version: int) -> RenderedFile:
    """The detail as its file: canonical JSON, so a replay of the same inputs writes the same
    bytes (and the same SHA-256) whatever the version or the time."""
    return RenderedFile(filename(detail.period_id, version), MEDIA_TYPE, canonical_json(detail))


def with_detail(
    summary: ReportSummary, file: RenderedFile, *, public_url: str
) -> ReportConsolidatedV2Payload:
    """The v2 payload: the summary and the reference to its stored detail file."""
    return ReportConsolidatedV2Payload(
        **summary.model_dump(exclude={"document"}),
        document=summary.document,
        detail=DetailFile(
            filename=file.filename,
            media_type=MEDIA_TYPE,
            sha256=file.sha256,
            size=len(file.data),
            url=file_url(public_url, summary.period_id, summary.report_id, file.filename),
        ),
    )
