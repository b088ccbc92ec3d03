"""Kafka topic of every event, and the payload field used as message key.

The key is the entity whose order matters: a unit's events stay in order on one partition,
a period's lifecycle on another. A deployment may prefix every name with a namespace
(``BAOCAO_NAMESPACE``) so that several systems can share one cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.envelope import Event
from contracts.events import (
    DeadlineApproaching,
    DeadlineOverdue,
    DeadlineSummary,
    ExtensionDecided,
    ExtensionRequested,
    FilingExceptionGranted,
    NotificationFailed,
    NotificationSent,
    PeriodClosed,
    PeriodOpened,
    ReportConsolidated,
    ReportReviewed,
    SubmissionReceived,
)
from contracts.report_v2 import ReportConsolidatedV2


@dataclass(frozen=True)
class Topic:
    name: str
    event: type[Event]
    key_field: str


SUBMISSION_RECEIVED = Topic("baocao.submission-received.v1", SubmissionReceived, "unit_id")
DEADLINE_APPROACHING = Topic("baocao.deadline-approaching.v1", DeadlineApproaching, "unit_id")
DEADLINE_OVERDUE = Topic("baocao.deadline-overdue.v1", DeadlineOverdue, "unit_id")
DEADLINE_SUMMARY = Topic("baocao.deadline-summary.v1", DeadlineSummary, "period_id")
PERIOD_OPENED = Topic("baocao.period-opened.v1", PeriodOpened, "period_id")
PERIOD_CLOSED = Topic("baocao.period-closed.v1", PeriodClosed, "period_id")
REPORT_CONSOLIDATED = Topic("baocao.report-consolidated.v1", ReportConsolidated, "period_id")
# Published beside v1 (whenever v1 fits in a record) for as long as consumers need v1.
REPORT_CONSOLIDATED_V2 = Topic("baocao.report-consolidated.v2", ReportConsolidatedV2, "period_id")
NOTIFICATION_SENT = Topic("baocao.notification-sent.v1", NotificationSent, "unit_id")
NOTIFICATION_FAILED = Topic("baocao.notification-failed.v1", NotificationFailed, "unit_id")
REPORT_REVIEWED = Topic("baocao.report-reviewed.v1", ReportReviewed, "unit_id")
FILING_EXCEPTION_GRANTED = Topic(
    "baocao.filing-exception-granted.v1", FilingExceptionGranted, "unit_id"
)
EXTENSION_REQUESTED = Topic("baocao.extension-requested.v1", ExtensionRequested, "unit_id")
EXTENSION_DECIDED = Topic("baocao.extension-decided.v1", ExtensionDecided, "unit_id")

ALL_TOPICS: tuple[Topic, ...] = (
    SUBMISSION_RECEIVED,
    DEADLINE_APPROACHING,
    DEADLINE_OVERDUE,
    PERIOD_OPENED,
    PERIOD_CLOSED,
    REPORT_CONSOLIDATED,
    NOTIFICATION_SENT,
    NOTIFICATION_FAILED,
    REPORT_REVIEWED,
    FILING_EXCEPTION_GRANTED,
    EXTENSION_REQUESTED,
    EXTENSION_DECIDED,
    DEADLINE_SUMMARY,
    REPORT_CONSOLIDATED_V2,
)
TOPIC_OF: dict[type[Event], Topic] = {t.event: t for t in ALL_TOPICS}
EVENT_CLASSES: dict[tuple[str, int], type[Event]] = {
    (t.event.model_fields["event_type"].default, t.event.model_fields["schema_version"].default): (
        t.event
    )
    for t in ALL_TOPICS
}
"""The class of each (event_type, schema_version): one event type may have two versions."""
