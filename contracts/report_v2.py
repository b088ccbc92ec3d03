"""Version 2 of ``ReportConsolidated``: the summary in the event, the per-unit detail in a file.

Version 1 carries every unit's status, answers and task entries, about 1.5 KB of JSON a unit:
from some 700 units it no longer fits in a Kafka record (1 MiB). Version 2 keeps in the event
what does not grow with the units (the counts, each indicator's aggregate and its breakdown by
kind of unit, each task's status counts, the files) and moves the rest to a JSON file stored
and served like the DOCX, which the event names by URL, SHA-256, media type and size
(``detail``). The file's content is a :class:`ReportDetail`.

What else changed from v1: an indicator's ``total`` (kept in v1 for the readers of its first,
sum-only payloads) is gone, ``value`` is the aggregate; ``content_hash`` is always set.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from contracts.envelope import Event, Payload
from contracts.events import (
    AggregationName,
    DocumentRef,
    Id,
    IndicatorTypeName,
    KindAggregate,
    TaskResults,
    TaskStatus,
    UnitIndicatorValue,
    UnitStatus,
)

SHA256 = r"^[0-9a-f]{64}$"


class IndicatorSummary(Payload):
    """An indicator over the units' latest reports, combined by the plan's aggregation rule.
    Each unit's answer behind it is in the detail file (``ReportDetail.indicators``)."""

    code: Id
    name: str
    unit_of_measure: str = Field(description="empty when the plan names none")
    type: IndicatorTypeName
    aggregation: AggregationName
    value: float | None = Field(
        description="the aggregate: sum, mean, weighted mean, min or max of the figures, or the "
        "number of yes answers; null for list (read the detail file) or when nothing can be "
        "computed (a weighted mean without any weight)"
    )
    reporting_units: int = Field(ge=0)
    without_weight: int = Field(
        0, ge=0, description="weighted_mean: answers left out because the unit gave no weight"
    )
    by_kind: list[KindAggregate] = Field(
        default_factory=list,
        description="the same rule per unit kind, kinds in the order the plan first lists them",
    )


class TaskSummary(Payload):
    """One plan task: how many units reported on it, by status; their entries are in the
    detail file (``ReportDetail.tasks``)."""

    task_id: Id
    section: str
    title: str
    reporting_units: int = Field(ge=0, description="units whose latest report covers the task")
    statuses: dict[TaskStatus, int] = Field(
        default_factory=dict, description="entries by status; a status nobody gave is absent"
    )


class DetailFile(Payload):
    """The version's per-unit detail: a JSON file (UTF-8) whose content is a ReportDetail.

    Downloaded like the documents (the same route, token and ETag); check its SHA-256."""

    filename: str
    media_type: Literal["application/json"] = "application/json"
    sha256: str = Field(pattern=SHA256)
    size: int = Field(ge=0, description="bytes")
    url: str


class ReportSummary(Payload):
    """What a report version says that does not grow with the units: a v2 payload less its
    detail file."""

    report_id: Id
    version: int = Field(ge=1, description="a period re-consolidated later gets a new version")
    trigger: Literal["period_closed", "requested"]
    plan_id: Id
    period_id: Id
    report_kind: Id
    year: int
    title: str
    due_at: AwareDatetime
    consolidated_at: AwareDatetime
    expected: int = Field(ge=0)
    received: int = Field(ge=0)
    on_time: int = Field(ge=0)
    late: int = Field(ge=0)
    missing: int = Field(ge=0)
    indicator_totals: list[IndicatorSummary] = Field(
        default_factory=list, description="every indicator at least one unit answered, plan order"
    )
    tasks: list[TaskSummary] = Field(default_factory=list, description="every plan task, in order")
    document: DocumentRef | None = None
    supersedes: Id | None = Field(
        None, description="report_id of the version this one replaces; consumers keep the highest"
    )
    content_hash: str = Field(
        pattern=SHA256,
        description="SHA-256 of the version's content, summary and detail (not its report_id, "
        "version, trigger, consolidated_at, supersedes or files): two versions with the same hash "
        "say the same thing. The v1 event of the same version carries the same value.",
    )


class ReportConsolidatedV2Payload(ReportSummary):
    detail: DetailFile = Field(
        description="the per-unit detail (units' statuses, answers, task entries) as a JSON file"
    )


class ReportConsolidatedV2(Event):
    """The district report for a period, its per-unit detail in a file; for the province system."""

    event_type: Literal["report.consolidated"] = "report.consolidated"
    schema_version: Literal[2] = 2
    payload: ReportConsolidatedV2Payload


class IndicatorAnswers(Payload):
    """Every unit's answer behind one indicator of ``ReportSummary.indicator_totals``."""

    code: Id
    values: list[UnitIndicatorValue] = Field(description="units in plan order")


class ReportDetail(Payload):
    """The content of a v2 detail file: one report version's per-unit detail.

    Written as canonical JSON (keys sorted, no insignificant space, UTF-8, not ASCII-escaped),
    without ids, version or times: the same content gives the same bytes whatever the version,
    so an equal SHA-256 between two versions' files means an equal detail.
    """

    plan_id: Id
    period_id: Id
    units: list[UnitStatus] = Field(description="every expected unit, plan order")
    indicators: list[IndicatorAnswers] = Field(
        default_factory=list, description="in the order of the event's indicator_totals"
    )
    tasks: list[TaskResults] = Field(
        default_factory=list, description="every plan task in plan order, with its entries"
    )
