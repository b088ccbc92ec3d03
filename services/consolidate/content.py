"""What the district report says, in the order it says it: pure, shared by every renderer.

The consolidation (``ReportConsolidatedPayload``) holds the facts; the plan holds the wording
(task sections and titles, unit names, lead or cooperating, indicator names, "Nơi nhận", the
signature block). This module joins them into :class:`ReportContent`; the DOCX, XLSX and any
other rendering only lay it out, so the document and its annex cannot disagree.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from contracts.events import IndicatorTotal, ReportConsolidatedPayload, TaskResults
from contracts.plan import KIND_LABELS, Plan
from contracts.report_v2 import IndicatorSummary, ReportSummary

STATUS_LABELS = {
    "completed": "Hoàn thành",
    "in_progress": "Đang thực hiện",
    "not_started": "Chưa thực hiện",
    "recurring": "Thực hiện thường xuyên",
}
UNIT_STATUS_LABELS = {"on_time": "Đúng hạn", "late": "Quá hạn", "missing": "Chưa báo cáo"}
AGGREGATION_LABELS = {
    "sum": "Tổng",
    "mean": "Trung bình",
    "weighted_mean": "Trung bình có trọng số",
    "min": "Thấp nhất",
    "max": "Cao nhất",
    "count_yes": "Số đơn vị trả lời “có”",
    "list": "Liệt kê",
}


@dataclass(frozen=True)
class Entry:
    unit_name: str
    lead: bool
    status: str
    results: str


@dataclass(frozen=True)
class TaskSection:
    section: str
    title: str
    status_counts: dict[str, int]
    entries: list[Entry]


@dataclass(frozen=True)
class Remark:
    """A difficulty or a proposal, grouped by task."""

    section: str
    task_title: str
    unit_name: str
    text: str


@dataclass(frozen=True)
class IndicatorRow:
    code: str
    name: str
    unit_of_measure: str
    aggregation: str
    value: str
    reporting_units: int
    by_kind: list[tuple[str, str, int]]
    """(kind label, value, reporting units)."""
    listed: list[tuple[str, str]] = field(default_factory=list)
    """Text indicators: (unit name, answer)."""
    previous: str = ""
    """The same indicator in the previous period's latest report ("" when there is none)."""
    spread: str = ""
    """Percentages: the lowest, highest and plain mean of the units' figures, never a sum."""


@dataclass(frozen=True)
class UnitRow:
    unit_name: str
    kind_label: str
    status: str
    receipt_no: str
    received_local: str
    revision: int | None


@dataclass(frozen=True)
class ReportContent:
    issuer: str
    issuer_place: str
    national_name: str
    motto: str
    number_line: str
    date_line: str
    heading: str
    subject: str
    draft: bool
    period_title: str
    expected: int
    received: int
    on_time: int
    late: int
    missing: int
    completeness: str
    on_time_rate: str
    late_units: list[str]
    missing_units: list[str]
    tasks: list[TaskSection]
    indicators: list[IndicatorRow]
    difficulties: list[Remark]
    proposals: list[Remark]
    units: list[UnitRow]
    recipients: list[str]
    signer_authority: list[str]
    signer_title: str
    signer_name: str
    version: int
    content_hash: str | None
    previous_title: str = ""
    """The period whose figures stand beside this one's ("" when none was consolidated)."""
    cross_checks: list[str] = field(default_factory=list)
    """Counts lower than the same unit's figure over a shorter window of the same year."""


def percent(part: int, whole: int) -> str:
    if whole == 0:
        return "—"
    return f"{100 * part / whole:.1f}".replace(".", ",") + " %"


def number(value: float | None) -> str:
    """Vietnamese style: 1.234,5 (thousands with dots, decimals with a comma)."""
    if value is None:
        return "—"
    if float(value).is_integer():
        return f"{int(value):,}".replace(",", ".")
    whole, _, decimals = f"{value:,.2f}".partition(".")
    return f"{whole.replace(',', '.')},{decimals.rstrip('0')}"


def _date_line(place: str, at: dt.datetime) -> str:
    return f"{place}, ngày {at.day:02d} tháng {at.month:02d} năm {at.year}"


def _subject(plan: Plan, period_title: str) -> str:
    about = period_title.removeprefix("Báo cáo ").strip()
    return f"Kết quả thực hiện Kế hoạch {plan.title.strip()} – {about}"


def build(
    payload: ReportConsolidatedPayload,
    plan: Plan,
    *,
    draft: bool = False,
    previous: ReportSummary | ReportConsolidatedPayload | None = None,
    shorter: ReportConsolidatedPayload | None = None,
) -> ReportContent:
    """``previous``: the last period's report, whose figures stand beside these. ``shorter``:
    a report of the same year whose data window starts the same day and ends earlier (the
    six-month report beside the annual one): a count cannot go down over a longer window."""
    tz = plan.tz
    names = {u.id: u.name for u in plan.units}
    kinds = {u.id: u.kind for u in plan.units}
    issued = payload.consolidated_at.astimezone(tz)
    tasks = [_task_section(t, plan, names) for t in _in_plan_order(payload.tasks, plan)]
    difficulties, proposals = _remarks(payload.tasks, plan, names)
    signer = plan.signer
    return ReportContent(
        issuer=plan.issuer,
        issuer_place=plan.issuer_place,
        national_name="CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        motto="Độc lập - Tự do - Hạnh phúc",
        number_line="Số: …/BC-UBND",
        date_line=_date_line(plan.issuer_place, issued),
        heading="BÁO CÁO",
        subject=_subject(plan, payload.title),
        draft=draft,
        period_title=payload.title,
        expected=payload.expected,
        received=payload.received,
        on_time=payload.on_time,
        late=payload.late,
        missing=payload.missing,
        completeness=percent(payload.received, payload.expected),
        on_time_rate=percent(payload.on_time, payload.expected),
        late_units=[u.unit_name for u in payload.units if u.status == "late"],
        missing_units=[u.unit_name for u in payload.units if u.status == "missing"],
        tasks=tasks,
        indicators=[
            _indicator_row(i, names, _previous_value(previous, i.code))
            for i in payload.indicator_totals
        ],
        difficulties=difficulties,
        proposals=proposals,
        units=[
            UnitRow(
                unit_name=u.unit_name,
                kind_label=KIND_LABELS[kinds[u.unit_id]] if u.unit_id in kinds else "",
                status=UNIT_STATUS_LABELS[u.status],
                receipt_no=u.receipt_no or "",
                received_local=(
                    f"{u.last_received_at.astimezone(tz):%H:%M %d/%m/%Y}"
                    if u.last_received_at
                    else ""
                ),
                revision=u.revision,
            )
            for u in payload.units
        ],
        recipients=list(plan.recipients),
        signer_authority=signer.authority.split("\n") if signer else [plan.issuer.upper()],
        signer_title=signer.title if signer else "",
        signer_name="",  # left for the person who signs: the plan's name may have changed
        version=payload.version,
        content_hash=payload.content_hash,
        previous_title=previous.title if previous else "",
        cross_checks=_lower_than_shorter(payload, shorter, names) if shorter else [],
    )


def _in_plan_order(tasks: list[TaskResults], plan: Plan) -> list[TaskResults]:
    order = {t.id: n for n, t in enumerate(plan.tasks)}
    return sorted(tasks, key=lambda t: order.get(t.task_id, len(order)))


def _task_section(task: TaskResults, plan: Plan, names: dict[str, str]) -> TaskSection:
    roles = {a.unit_id: a.role for a in plan.assignments(task.task_id)}
    unit_order = {u.id: n for n, u in enumerate(plan.units)}
    ordered = sorted(
        task.entries,
        key=lambda e: (roles.get(e.unit_id) != "lead", unit_order.get(e.unit_id, 10**6)),
    )
    counts: Counter[str] = Counter(e.status for e in task.entries)
    return TaskSection(
        section=task.section,
        title=task.title,
        status_counts={STATUS_LABELS[s]: counts[s] for s in STATUS_LABELS if counts[s]},
        entries=[
            Entry(
                unit_name=names.get(e.unit_id, e.unit_id),
                lead=roles.get(e.unit_id) == "lead",
                status=STATUS_LABELS[e.status],
                results=e.results.strip(),
            )
            for e in ordered
        ],
    )


def _remarks(
    tasks: list[TaskResults], plan: Plan, names: dict[str, str]
) -> tuple[list[Remark], list[Remark]]:
    difficulties, proposals = [], []
    for task in _in_plan_order(tasks, plan):
        for e in task.entries:
            unit = names.get(e.unit_id, e.unit_id)
            if e.difficulties.strip():
                difficulties.append(Remark(task.section, task.title, unit, e.difficulties.strip()))
            if e.proposals.strip():
                proposals.append(Remark(task.section, task.title, unit, e.proposals.strip()))
    return difficulties, proposals


def _shown(total: IndicatorTotal | IndicatorSummary) -> str:
    shown = "—" if total.aggregation == "list" else number(total.value)
    if total.type == "percentage" and total.value is not None:
        shown = f"{number(round(total.value, 2))} %"
    return shown


def _previous_value(previous: ReportSummary | ReportConsolidatedPayload | None, code: str) -> str:
    if previous is None:
        return ""
    totals: list[IndicatorTotal] | list[IndicatorSummary] = previous.indicator_totals
    found = next((t for t in totals if t.code == code), None)
    return _shown(found) if found else "—"


def _lower_than_shorter(
    payload: ReportConsolidatedPayload, shorter: ReportConsolidatedPayload, names: dict[str, str]
) -> list[str]:
    earlier = {
        (t.code, v.unit_id): v.value
        for t in shorter.indicator_totals
        if t.type == "count"
        for v in t.values
        if v.value is not None
    }
    found = []
    for total in payload.indicator_totals:
        if total.type != "count":
            continue
        for v in total.values:
            before = earlier.get((total.code, v.unit_id))
            if v.value is not None and before is not None and v.value < before:
                found.append(
                    f"{names.get(v.unit_id, v.unit_id)} – {total.name}: {number(v.value)} "
                    f"({payload.title}), thấp hơn {number(before)} ({shorter.title})."
                )
    return found


def _indicator_row(
    total: IndicatorTotal, names: dict[str, str], previous: str = ""
) -> IndicatorRow:
    shown = _shown(total)
    return IndicatorRow(
        code=total.code,
        name=total.name,
        unit_of_measure=total.unit_of_measure,
        aggregation=AGGREGATION_LABELS.get(total.aggregation, total.aggregation),
        value=shown,
        reporting_units=total.reporting_units,
        by_kind=[(k.label, number(k.value), k.reporting_units) for k in total.by_kind],
        listed=[
            (names.get(v.unit_id, v.unit_id), v.text or "")
            for v in total.values
            if total.aggregation == "list" and (v.text or "").strip()
        ],
        previous=previous,
        spread=_spread(total),
    )


def _spread(total: IndicatorTotal) -> str:
    figures = [v.value for v in total.values if v.value is not None]
    if total.type != "percentage" or len(figures) < 2:
        return ""
    low, high, mean = min(figures), max(figures), sum(figures) / len(figures)
    return (
        f"thấp nhất {number(round(low, 2))} %, cao nhất {number(round(high, 2))} %, "
        f"trung bình cộng {number(round(mean, 2))} %"
    )
