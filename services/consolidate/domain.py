"""Consolidating a period: who reported, when, and what, from the plan and the submissions.

Pure: no I/O, no clock. Everything comes out in plan order so that two consolidations of the
same data are equal.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

from contracts.events import (
    IndicatorTotal,
    IndicatorValue,
    KindAggregate,
    ReportConsolidatedPayload,
    TaskEntry,
    TaskReport,
    TaskResults,
    UnitIndicatorValue,
    UnitStatus,
)
from contracts.plan import (
    KIND_LABELS,
    Aggregation,
    Indicator,
    IndicatorType,
    Plan,
    Unit,
    UnitKind,
)
from services.common.periods import Period, periods_of
from services.consolidate.canonical import canonical_sha256

Trigger = Literal["period_closed", "requested"]

REPORT_IDS = uuid.UUID("5d1c7a4e-8f0b-5c61-9a57-3f2e6b0c4d18")
"""uuid5 namespace of report ids: the same cause always yields the same report id."""


@dataclass(frozen=True)
class SubmissionRow:
    """One revision of a unit's report, as the projection keeps it."""

    submission_id: str
    receipt_no: str
    unit_id: str
    revision: int
    received_at: dt.datetime
    tasks: tuple[TaskReport, ...]


@dataclass(frozen=True)
class UnitTerms:
    """What office staff decided for one unit in the period, as their events told us."""

    due_at: dt.datetime | None = None
    """An approved extension's due instant."""
    returned: Mapping[int, dt.datetime] = field(default_factory=dict)
    """Revisions returned for correction, each with its ``resubmit_by``."""
    exception_until: dt.datetime | None = None
    """A filing exception: the unit may file after the lock until then (the latest granted).
    It changes no count of the report; the period's status shows such a unit apart."""


NO_TERMS = UnitTerms()


def report_id_for_closing(period_closed_event_id: uuid.UUID) -> str:
    """A redelivered PeriodClosed maps to the report its first delivery recorded."""
    return str(uuid.uuid5(REPORT_IDS, f"period-closed|{period_closed_event_id}"))


def report_id_for_amendment(keys: Iterable[str]) -> str:
    """The late causes one amendment counts name it: a pass repeated after a crash, or by
    a replica, over the same causes maps to the same report."""
    return str(uuid.uuid5(REPORT_IDS, "amended|" + "|".join(sorted(keys))))


_NOT_CONTENT = {"report_id", "version", "trigger", "consolidated_at", "supersedes", "content_hash"}


def content_hash(payload: ReportConsolidatedPayload) -> str:
    """What a report says, hashed: equal inputs give equal hashes, whatever the version.

    The hash of the canonical JSON of the payload's content (``model_dump(mode="json")`` less
    ``_NOT_CONTENT``, keys sorted, compact, UTF-8), written piece by piece into the digest: the
    per-unit lists of a national roll-up are never dumped whole (``canonical.py``).
    """
    return canonical_sha256(payload, exclude=_NOT_CONTENT)


def report_id_for_request(period_id: str, request_id: str) -> str:
    """A retried request (same idempotency key, same period) maps to the same report."""
    return str(uuid.uuid5(REPORT_IDS, f"requested|{period_id}|{request_id}"))


class PeriodFold:
    """A period's submissions folded one row at a time, in any order.

    Kept per expected unit: when each revision came (punctuality needs every filing's time)
    and the latest revision whole; a superseded revision's content is dropped as soon as a
    later one arrives. So a consolidation holds one report per unit, never the history, and
    the handler can stream the projection through ``add``.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._expected = {u.id for u in plan.reporting_units()}
        self._filings: dict[str, list[tuple[int, dt.datetime]]] = {}
        self._latest: dict[str, SubmissionRow] = {}

    def add(self, row: SubmissionRow) -> None:
        if row.unit_id not in self._expected:  # a unit outside the plan counts toward nothing
            return
        self._filings.setdefault(row.unit_id, []).append((row.revision, row.received_at))
        kept = self._latest.get(row.unit_id)
        # A correction supersedes: the highest revision is the unit's current report (the
        # first of equals stays, as ``max`` over the rows in arrival order would keep it).
        if kept is None or (row.revision, row.received_at) > (kept.revision, kept.received_at):
            self._latest[row.unit_id] = row

    def report(
        self,
        period: Period,
        *,
        now: dt.datetime,
        trigger: Trigger,
        version: int,
        report_id: str,
        terms: Mapping[str, UnitTerms] | None = None,
    ) -> ReportConsolidatedPayload:
        """``terms``: by unit id, the extensions and returns that decide its punctuality."""
        plan = self.plan
        expected = plan.reporting_units()
        units = [
            _unit_status(
                unit,
                period,
                self._filings.get(unit.id, []),
                self._latest.get(unit.id),
                (terms or {}).get(unit.id, NO_TERMS),
            )
            for unit in expected
        ]
        latest = [self._latest[u.id] for u in expected if u.id in self._latest]
        on_time = sum(1 for u in units if u.status == "on_time")
        late = sum(1 for u in units if u.status == "late")
        return ReportConsolidatedPayload(
            report_id=report_id,
            version=version,
            trigger=trigger,
            plan_id=plan.id,
            period_id=period.id,
            report_kind=period.kind.code,
            year=period.year,
            title=period.title,
            due_at=period.due_at,
            consolidated_at=now,
            expected=len(expected),
            received=on_time + late,
            on_time=on_time,
            late=late,
            missing=len(expected) - on_time - late,
            units=units,
            indicator_totals=_indicator_totals(plan, latest),
            tasks=_task_results(plan, latest),
        )


def consolidate(
    plan: Plan,
    period: Period,
    submissions: Iterable[SubmissionRow],
    *,
    now: dt.datetime,
    trigger: Trigger,
    version: int,
    report_id: str,
    terms: Mapping[str, UnitTerms] | None = None,
) -> ReportConsolidatedPayload:
    """``terms``: by unit id, the extensions and returns that decide its punctuality."""
    fold = PeriodFold(plan)
    for row in submissions:
        fold.add(row)
    return fold.report(
        period, now=now, trigger=trigger, version=version, report_id=report_id, terms=terms
    )


def _on_time(filings: list[tuple[int, dt.datetime]], due_at: dt.datetime, terms: UnitTerms) -> bool:
    """Punctuality belongs to the first filing: a late correction does not make a unit late.
    A version sent after a *return* is judged again, unless it came by the return's
    ``resubmit_by`` (``services.submissions.review`` states the rule).

    ``filings``: (revision, received_at) of each of the unit's rows."""
    ordered = sorted(filings)
    on_time = ordered[0][1] < due_at
    for (previous, _), (_, received_at) in pairwise(ordered):
        resubmit_by = terms.returned.get(previous)
        if resubmit_by is not None and received_at >= resubmit_by:
            on_time = received_at < due_at
    return on_time


def _unit_status(
    unit: Unit,
    period: Period,
    filings: list[tuple[int, dt.datetime]],
    latest: SubmissionRow | None,
    terms: UnitTerms,
) -> UnitStatus:
    if latest is None:
        return UnitStatus(unit_id=unit.id, unit_name=unit.name, status="missing")
    return UnitStatus(
        unit_id=unit.id,
        unit_name=unit.name,
        status="on_time" if _on_time(filings, terms.due_at or period.due_at, terms) else "late",
        submission_id=latest.submission_id,
        receipt_no=latest.receipt_no,
        revision=latest.revision,
        # The first filing by time (of equal times, the lower revision): its instant.
        first_received_at=min(received_at for _, received_at in filings),
        last_received_at=latest.received_at,
    )


@dataclass(frozen=True)
class _Answer:
    """One unit's answer to one indicator in one task of its latest report."""

    unit_id: str
    kind: UnitKind
    task_id: str
    reported: IndicatorValue
    weight: float | None = None


def _indicator_totals(plan: Plan, latest: list[SubmissionRow]) -> list[IndicatorTotal]:
    """Each indicator at least one unit reported, aggregated by its rule, in plan order.

    ``latest`` is in plan unit order; within a unit, tasks are taken in plan order, so the
    answers (and the float arithmetic over them) come in the same order every time.
    """
    kinds = {u.id: u.kind for u in plan.units}
    task_order = {t.id: n for n, t in enumerate(plan.tasks)}
    weights = {i.code: i.weight for i in plan.indicators if i.weight}
    answers: dict[str, list[_Answer]] = defaultdict(list)
    for row in latest:
        for task in sorted(row.tasks, key=lambda t: task_order.get(t.task_id, len(task_order))):
            for reported in task.indicators:
                weight_code = weights.get(reported.code)
                answers[reported.code].append(
                    _Answer(
                        unit_id=row.unit_id,
                        kind=kinds[row.unit_id],
                        task_id=task.task_id,
                        reported=reported,
                        weight=_weight(row, task.task_id, weight_code) if weight_code else None,
                    )
                )
    kind_order = list(dict.fromkeys(u.kind for u in plan.units))
    return [
        _total(indicator, answers[indicator.code], kind_order)
        for indicator in plan.indicators
        if answers.get(indicator.code)
    ]


def _weight(row: SubmissionRow, task_id: str, code: str) -> float | None:
    """The unit's own figure for the weight indicator ``code`` in the same report: in the same
    task, or else the one figure the report gives for it (none, or two different: no weight)."""
    figures = {t.task_id: v.value for t in row.tasks for v in t.indicators if v.code == code}
    if task_id in figures:
        return figures[task_id]
    distinct = set(figures.values())
    return distinct.pop() if len(distinct) == 1 else None


def _total(
    indicator: Indicator, answers: list[_Answer], kind_order: list[UnitKind]
) -> IndicatorTotal:
    value, without_weight = _aggregate(indicator, answers)
    return IndicatorTotal(
        code=indicator.code,
        name=indicator.name,
        unit_of_measure=indicator.unit_of_measure or "",
        # Kept for the first readers of this event, who summed everything: the same number.
        total=value if value is not None else 0.0,
        reporting_units=len({a.unit_id for a in answers}),
        type=indicator.type.value,
        aggregation=indicator.how.value,
        value=value,
        without_weight=without_weight,
        values=[
            UnitIndicatorValue(
                unit_id=a.unit_id,
                unit_kind=a.kind.value,
                task_id=a.task_id,
                value=_figure(indicator, a),
                flag=_flag(a) if indicator.type is IndicatorType.BOOLEAN else None,
                text=(a.reported.text or "") if indicator.type is IndicatorType.TEXT else None,
                weight=a.weight if indicator.how is Aggregation.WEIGHTED_MEAN else None,
            )
            for a in answers
        ],
        by_kind=[
            _kind_aggregate(indicator, kind, [a for a in answers if a.kind is kind])
            for kind in kind_order
            if any(a.kind is kind for a in answers)
        ],
    )


def _kind_aggregate(indicator: Indicator, kind: UnitKind, answers: list[_Answer]) -> KindAggregate:
    value, without_weight = _aggregate(indicator, answers)
    return KindAggregate(
        kind=kind.value,
        label=KIND_LABELS[kind],
        value=value,
        reporting_units=len({a.unit_id for a in answers}),
        without_weight=without_weight,
    )


def _flag(answer: _Answer) -> bool:
    # An answer from before flags existed is a figure: anything but 0 is a yes.
    return answer.reported.flag if answer.reported.flag is not None else answer.reported.value != 0


def _figure(indicator: Indicator, answer: _Answer) -> float | None:
    if indicator.type is IndicatorType.TEXT:
        return None
    if indicator.type is IndicatorType.BOOLEAN:
        return 1.0 if _flag(answer) else 0.0
    return answer.reported.value


def _aggregate(indicator: Indicator, answers: list[_Answer]) -> tuple[float | None, int]:
    """The aggregate of ``answers`` by the indicator's rule, and how many lacked a weight."""
    how = indicator.how
    if how is Aggregation.LIST:
        return None, 0
    if how is Aggregation.COUNT_YES:
        return float(sum(1 for a in answers if _flag(a))), 0
    figures = [f for a in answers if (f := _figure(indicator, a)) is not None]
    if not figures:
        return None, 0
    if how is Aggregation.SUM:
        return sum(figures, 0.0), 0
    if how is Aggregation.MEAN:
        return sum(figures, 0.0) / len(figures), 0
    if how is Aggregation.MIN:
        return min(figures), 0
    if how is Aggregation.MAX:
        return max(figures), 0
    # weighted_mean: an answer without a weight is left out, and counted.
    weighted = [(a.reported.value, a.weight) for a in answers if a.weight is not None]
    without = len(answers) - len(weighted)
    total_weight = sum((w for _, w in weighted), 0.0)
    if total_weight <= 0:
        return None, without
    return sum((v * w for v, w in weighted), 0.0) / total_weight, without


def _task_results(plan: Plan, latest: list[SubmissionRow]) -> list[TaskResults]:
    """Every plan task in plan order, with the entries of the units that reported on it.

    One pass over the reports, whatever the number of tasks: entries keep the units' plan
    order, and within a report the order its tasks came in."""
    entries: dict[str, list[TaskEntry]] = defaultdict(list)
    for row in latest:
        for report in row.tasks:
            entries[report.task_id].append(
                TaskEntry(
                    unit_id=row.unit_id,
                    status=report.status,
                    results=report.results,
                    difficulties=report.difficulties,
                    proposals=report.proposals,
                )
            )
    return [
        TaskResults(
            task_id=task.id,
            section=task.section,
            title=task.title,
            entries=entries.get(task.id, []),
        )
        for task in plan.tasks
    ]


def previous_period(plan: Plan, period: Period) -> Period | None:
    """The same kind's period due last before this one: its figures stand beside these."""
    earlier = [
        p
        for p in periods_of(plan, period.year - 1, period.year)
        if p.kind.code == period.kind.code and p.due_at < period.due_at
    ]
    return earlier[-1] if earlier else None


def shorter_window(plan: Plan, period: Period) -> Period | None:
    """A period of the same year whose data window starts the same day and ends earlier (the
    six-month report beside the annual one): a count cannot be lower over the longer window."""
    shorter = [
        p
        for p in periods_of(plan, period.year, period.year)
        if p.id != period.id and p.data_from == period.data_from and p.data_to < period.data_to
    ]
    return max(shorter, key=lambda p: p.data_to) if shorter else None
