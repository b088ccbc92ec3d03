"""Version 1 of every event baocao publishes. Topic names and keys are in ``topics.py``;
version 2 of ``ReportConsolidated`` (the per-unit detail in a file) is in ``report_v2.py``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from contracts.envelope import Event, Payload

Id = Annotated[str, Field(min_length=1, max_length=128)]
TaskStatus = Literal["not_started", "in_progress", "completed", "recurring"]
"""chưa triển khai / đang triển khai / hoàn thành / thực hiện thường xuyên"""


IndicatorTypeName = Literal["count", "number", "percentage", "boolean", "text"]
"""As in the plan (``contracts.plan.IndicatorType``)."""
AggregationName = Literal["sum", "mean", "weighted_mean", "min", "max", "count_yes", "list"]
"""As in the plan (``contracts.plan.Aggregation``)."""


class IndicatorValue(Payload):
    """One indicator as a unit answered it.

    ``value`` keeps its first meaning (a figure, never negative) so that every reader of
    version 1 goes on working: the answer of a count, number or percentage indicator; for a
    yes/no indicator 1 or 0, as ``flag`` says; for a text indicator 0, the answer being in
    ``text``. ``flag`` and ``text`` were added with plan format 2; a payload without them is a
    figure.
    """

    code: Id
    value: float = Field(
        ge=0,
        allow_inf_nan=False,
        description="count/number/percentage: the figure; yes/no: 1 or 0 (as flag); text: 0",
    )
    flag: bool | None = Field(None, description="yes/no indicators: the answer")
    text: str | None = Field(None, max_length=20_000, description="text indicators: the answer")


class TaskReport(Payload):
    """What a unit reports on one of its tasks."""

    task_id: Id
    status: TaskStatus
    results: str = Field(max_length=20_000)
    indicators: list[IndicatorValue] = Field(default_factory=list)
    difficulties: str = Field("", max_length=10_000)
    proposals: str = Field("", max_length=10_000)


class AttachmentRef(Payload):
    """A file kept by the submissions service; the event carries its identity, not its bytes."""

    attachment_id: Id
    filename: str
    media_type: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Submitter(Payload):
    name: str
    email: str | None = None


class SubmissionReceivedPayload(Payload):
    submission_id: Id
    receipt_no: Id
    plan_id: Id
    period_id: Id
    unit_id: Id
    revision: int = Field(ge=1, description="1 for the first report; corrections count up")
    supersedes: Id | None = None
    received_at: AwareDatetime
    due_at: AwareDatetime
    on_time: bool
    submitted_by: Submitter | None = None
    tasks: list[TaskReport] = Field(min_length=1)
    attachments: list[AttachmentRef] = Field(default_factory=list)


class SubmissionReceived(Event):
    """A unit's report for a period was accepted and stored (a correction is a new revision)."""

    event_type: Literal["submission.received"] = "submission.received"
    schema_version: Literal[1] = 1
    payload: SubmissionReceivedPayload


class PeriodRef(Payload):
    plan_id: Id
    period_id: Id
    report_kind: Id
    year: int
    due_at: AwareDatetime


Audience = Literal["officer", "unit_head", "office", "leadership"]
"""Whom a reminder reaches (a plan's reminder ladder says so per rung)."""


def _officer() -> list[Audience]:
    return ["officer"]


def _office() -> list[Audience]:
    return ["office"]


class DeadlineApproachingPayload(PeriodRef):
    unit_id: Id
    days_before: int = Field(ge=1)
    reminder_at: AwareDatetime
    # Added within v1 by the working-day reminder ladder; absent from older events.
    rung: str | None = None
    """The ladder's rung ('b14' … 'b0': working days before the due day, 0 on it)."""
    working_days_before: int | None = Field(None, ge=0)
    reaches: list[Audience] = Field(default_factory=_officer)


class DeadlineApproaching(Event):
    """A unit has not reported and the due date is ``days_before`` days away."""

    event_type: Literal["deadline.approaching"] = "deadline.approaching"
    schema_version: Literal[1] = 1
    payload: DeadlineApproachingPayload


class DeadlineOverduePayload(PeriodRef):
    unit_id: Id
    # Added within v1 by the working-day reminder ladder; absent from older events.
    rung: str | None = None
    """The ladder's rung ('a1': working days after the due day, 'a1+7d' for its repeats)."""
    working_days_after: int | None = Field(None, ge=1)
    reaches: list[Audience] = Field(default_factory=_officer)


class DeadlineOverdue(Event):
    """The due date passed and the unit has not reported."""

    event_type: Literal["deadline.overdue"] = "deadline.overdue"
    schema_version: Literal[1] = 1
    payload: DeadlineOverduePayload


class PendingUnit(Payload):
    unit_id: Id
    due_at: AwareDatetime = Field(description="the unit's own due instant (its extension's)")
    overdue: bool
    returned: bool = Field(False, description="its report was returned for revision")


class DeadlineSummaryPayload(PeriodRef):
    summary_at: AwareDatetime
    rung: str = Field(description="the period's ladder rung of that day ('b3', 'a1', ...)")
    reaches: list[Audience] = Field(default_factory=_office)
    expected_count: int = Field(ge=0, description="units expected to report for the period")
    pending: list[PendingUnit]


class DeadlineSummary(Event):
    """On a reminder day of a period, the units that still owe their report: one notice for
    the consolidating office instead of one per unit."""

    event_type: Literal["deadline.summary"] = "deadline.summary"
    schema_version: Literal[1] = 1
    payload: DeadlineSummaryPayload


class PeriodOpenedPayload(PeriodRef):
    title: str
    opens_at: AwareDatetime
    closes_at: AwareDatetime
    data_from: dt.date
    data_to: dt.date
    expected_unit_ids: list[Id]


class PeriodOpened(Event):
    """Units may now file reports for this period."""

    event_type: Literal["period.opened"] = "period.opened"
    schema_version: Literal[1] = 1
    payload: PeriodOpenedPayload


class PeriodClosedPayload(PeriodRef):
    closed_at: AwareDatetime


class PeriodClosed(Event):
    """No more reports are accepted for this period; it is ready to be consolidated."""

    event_type: Literal["period.closed"] = "period.closed"
    schema_version: Literal[1] = 1
    payload: PeriodClosedPayload


UnitReportStatus = Literal["on_time", "late", "missing"]


class UnitStatus(Payload):
    unit_id: Id
    unit_name: str
    status: UnitReportStatus
    submission_id: Id | None = None
    receipt_no: Id | None = None
    revision: int | None = None
    first_received_at: AwareDatetime | None = None
    last_received_at: AwareDatetime | None = None


class UnitIndicatorValue(Payload):
    """One unit's answer behind an indicator row, so a reader can recompute the aggregate."""

    unit_id: Id
    unit_kind: Id
    task_id: Id
    value: float | None = Field(
        None, description="count/number/percentage: the figure; yes/no: 1 or 0; text: null"
    )
    flag: bool | None = None
    text: str | None = None
    weight: float | None = Field(
        None,
        description="weighted_mean: the unit's value of the weight indicator in the same report; "
        "null: the unit gave none and is left out of the mean",
    )


class KindAggregate(Payload):
    """An indicator aggregated over the units of one kind (offices, communes...)."""

    kind: Id
    label: str = Field(description="the kind's Vietnamese label, as a report heading prints it")
    value: float | None = Field(
        None, description="null for aggregation list, or a weighted mean without any weight"
    )
    reporting_units: int = Field(ge=0)
    without_weight: int = Field(0, ge=0)


class IndicatorTotal(Payload):
    """An indicator over the units' latest reports, combined by the plan's aggregation rule.

    ``aggregation`` and ``value`` are authoritative. ``total`` is kept for readers of the first
    payloads, which were all sums: it equals ``value`` when that is a number and is 0 when it is
    not (a ``list``, or a weighted mean no unit gave a weight for). Payloads without
    ``type``/``aggregation`` were sums of numbers.
    """

    code: Id
    name: str
    unit_of_measure: str = Field(description="empty when the plan names none")
    total: float = Field(description="see value; 0 when the aggregate is not a number")
    reporting_units: int
    type: IndicatorTypeName = "number"
    aggregation: AggregationName = "sum"
    value: float | None = Field(
        None,
        description="the aggregate: sum, mean, weighted mean, min or max of the figures, or the "
        "number of yes answers; null for list (read values) or when nothing can be computed; "
        "absent from payloads made before plan format 2 (read total)",
    )
    without_weight: int = Field(
        0, ge=0, description="weighted_mean: answers left out because the unit gave no weight"
    )
    values: list[UnitIndicatorValue] = Field(
        default_factory=list, description="every unit's answer, units in plan order"
    )
    by_kind: list[KindAggregate] = Field(
        default_factory=list,
        description="the same rule per unit kind, kinds in the order the plan first lists them",
    )


class TaskEntry(Payload):
    unit_id: Id
    status: TaskStatus
    results: str
    difficulties: str = ""
    proposals: str = ""


class TaskResults(Payload):
    task_id: Id
    section: str
    title: str
    entries: list[TaskEntry]


class DocumentFile(Payload):
    """One more file of the same report version (the XLSX annex, the PDF)."""

    filename: str
    media_type: str
    sha256: str
    size: int = Field(ge=0, description="bytes")
    url: str | None = None


class DocumentRef(Payload):
    """The rendered official report, when the consolidate service has produced one.

    The fields at the top describe the DOCX; ``files`` the other files of the same version.
    """

    document_id: Id
    media_type: str
    filename: str
    sha256: str
    url: str | None = None
    size: int | None = Field(None, ge=0, description="bytes (added in November 2026)")
    files: list[DocumentFile] = Field(
        default_factory=list, description="the version's other files, e.g. the XLSX annex, PDF"
    )
    missing: list[str] = Field(
        default_factory=list,
        description="files that could not be made, each with why (e.g. the PDF without "
        "LibreOffice); the DOCX and XLSX are always made",
    )


class ReportConsolidatedPayload(Payload):
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
    units: list[UnitStatus]
    indicator_totals: list[IndicatorTotal] = Field(default_factory=list)
    tasks: list[TaskResults] = Field(default_factory=list)
    document: DocumentRef | None = None
    supersedes: Id | None = Field(
        None, description="report_id of the version this one replaces; consumers keep the highest"
    )
    content_hash: str | None = Field(
        None,
        description="SHA-256 of the content (everything but ids, version, trigger and times): "
        "two versions with the same hash say the same thing",
    )


class ReportConsolidated(Event):
    """The district report for a period; consumed by the province system."""

    event_type: Literal["report.consolidated"] = "report.consolidated"
    schema_version: Literal[1] = 1
    payload: ReportConsolidatedPayload


Channel = Literal["email", "sms"]


class NotificationPayload(Payload):
    notification_id: Id
    channel: Channel
    template: Id
    recipient: str
    unit_id: Id | None = None
    plan_id: Id | None = None
    period_id: Id | None = None
    cause_event_id: Id
    cause_event_type: Id
    attempts: int = Field(ge=1)


class NotificationSentPayload(NotificationPayload):
    sent_at: AwareDatetime
    # Added within v1; absent from older events and from e-mail.
    sms_segments: int | None = Field(None, ge=1, description="SMS: segments the text cost")
    sms_encoding: Literal["gsm7", "ucs2"] | None = Field(
        None, description="SMS: GSM-7 (160/153 a segment) or UCS-2 (70/67)"
    )


class NotificationSent(Event):
    """A message was accepted by the e-mail or SMS gateway."""

    event_type: Literal["notification.sent"] = "notification.sent"
    schema_version: Literal[1] = 1
    payload: NotificationSentPayload


class NotificationFailedPayload(NotificationPayload):
    failed_at: AwareDatetime
    error: str
    permanent: bool = Field(
        description="true: refused outright (a permanent error); false: the retries ran out. "
        "Not retried again either way; the ledger holds the record and its reason"
    )


class NotificationFailed(Event):
    """A message could not be delivered after its retries (or was refused outright)."""

    event_type: Literal["notification.failed"] = "notification.failed"
    schema_version: Literal[1] = 1
    payload: NotificationFailedPayload


# --- the office's decisions on a unit's report (issue 9) -------------------------------------


class UnitRef(Payload):
    """The unit and period a decision is about."""

    plan_id: Id
    period_id: Id
    unit_id: Id


ReviewDecision = Literal["accepted", "returned"]


class ReportReviewedPayload(UnitRef):
    review_id: Id
    submission_id: Id
    revision: int = Field(ge=1, description="the version of the unit's report that was reviewed")
    decision: ReviewDecision
    comment: str = Field("", max_length=5_000, description="returned: what to correct")
    reviewer: Id = Field(description="the reviewer's account")
    reviewer_name: str = ""
    reviewed_at: AwareDatetime
    resubmit_by: AwareDatetime | None = Field(
        None,
        description="returned: a new version received before this instant keeps the "
        "timeliness (on time or late) of the version returned",
    )


class ReportReviewed(Event):
    """Office staff accepted a unit's report, or returned it with a comment to correct."""

    event_type: Literal["report.reviewed"] = "report.reviewed"
    schema_version: Literal[1] = 1
    payload: ReportReviewedPayload


class FilingExceptionGrantedPayload(UnitRef):
    exception_id: Id
    reason: str = Field(min_length=1, max_length=2_000)
    until: AwareDatetime = Field(description="the unit may file for the period until then")
    granted_by: Id
    granted_by_name: str = ""
    granted_at: AwareDatetime


class FilingExceptionGranted(Event):
    """Office staff let one unit file for a period after its lock instant, with a reason."""

    event_type: Literal["filing-exception.granted"] = "filing-exception.granted"
    schema_version: Literal[1] = 1
    payload: FilingExceptionGrantedPayload


class ExtensionRequestedPayload(UnitRef):
    request_id: Id
    reason: str = Field(min_length=1, max_length=2_000)
    due_at: AwareDatetime = Field(description="the due instant in force when asked")
    wanted_due_at: AwareDatetime
    requested_by: Id
    requested_by_name: str = ""
    requested_at: AwareDatetime


class ExtensionRequested(Event):
    """A unit asked for a later due date for one period, with a reason."""

    event_type: Literal["extension.requested"] = "extension.requested"
    schema_version: Literal[1] = 1
    payload: ExtensionRequestedPayload


class ExtensionDecidedPayload(UnitRef):
    request_id: Id
    decision: Literal["approved", "refused"]
    reason: str = Field("", max_length=2_000, description="refused: why; approved: a note")
    due_at: AwareDatetime = Field(description="the period's due instant, from the plan")
    new_due_at: AwareDatetime | None = Field(
        None, description="approved: the unit's due instant for the period from now on"
    )
    new_closes_at: AwareDatetime | None = Field(
        None,
        description="approved: the unit's lock instant (the plan's grace days after the new "
        "due instant, never before the period's own lock)",
    )
    decided_by: Id
    decided_by_name: str = ""
    decided_at: AwareDatetime


class ExtensionDecided(Event):
    """Office staff approved a unit's extension request (a new due instant) or refused it."""

    event_type: Literal["extension.decided"] = "extension.decided"
    schema_version: Literal[1] = 1
    payload: ExtensionDecidedPayload


ALL_EVENTS: tuple[type[Event], ...] = (
    SubmissionReceived,
    DeadlineApproaching,
    DeadlineOverdue,
    DeadlineSummary,
    PeriodOpened,
    PeriodClosed,
    ReportConsolidated,
    NotificationSent,
    NotificationFailed,
    ReportReviewed,
    FilingExceptionGranted,
    ExtensionRequested,
    ExtensionDecided,
)
