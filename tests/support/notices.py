"""One event of every kind notify turns into a notice, with fixed ids and times: the golden
files (tests/unit/test_notify_templates.py) and the delivery to Mailpit use the same."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from contracts.envelope import Event
from contracts.events import (
    DeadlineApproaching,
    DeadlineApproachingPayload,
    DeadlineOverdue,
    DeadlineOverduePayload,
    DeadlineSummary,
    DeadlineSummaryPayload,
    ExtensionDecided,
    ExtensionDecidedPayload,
    FilingExceptionGranted,
    FilingExceptionGrantedPayload,
    ReportConsolidated,
    ReportConsolidatedPayload,
    ReportReviewed,
    ReportReviewedPayload,
    SubmissionReceived,
    SubmissionReceivedPayload,
    Submitter,
    TaskReport,
)
from contracts.report_v2 import ReportConsolidatedV2, ReportConsolidatedV2Payload

SEED = Path(__file__).resolve().parents[2] / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"
PORTAL = "https://baocao.ngochoi.example"
PLAN_ID = "kh-nq35-ngoc-hoi"
PERIOD = "kh-nq35-ngoc-hoi.2027.6-thang"
UNIT = "xa-bo-y"
DUE_AT = dt.datetime(2027, 6, 14, 17, 0, tzinfo=dt.UTC)  # 15/06/2027 00:00 local
AT = dt.datetime(2027, 6, 14, 16, 30, tzinfo=dt.UTC)  # 23:30 ngày 14/06/2027 local
LATER = dt.datetime(2027, 6, 18, 2, 15, tzinfo=dt.UTC)  # 09:15 ngày 18/06/2027 local
EVENT_ID = uuid.UUID("00000000-0000-4000-8000-000000000012")
CORRELATION = uuid.UUID("00000000-0000-4000-8000-000000000001")
REF = {"plan_id": PLAN_ID, "period_id": PERIOD, "unit_id": UNIT}


def envelope(producer: str) -> dict[str, object]:
    return {
        "event_id": EVENT_ID,
        "occurred_at": AT,
        "producer": producer,
        "correlation_id": CORRELATION,
    }


def receipt(revision: int = 1, on_time: bool = True) -> SubmissionReceived:
    return SubmissionReceived(
        **envelope("submissions"),
        payload=SubmissionReceivedPayload(
            **REF,
            submission_id="s-42",
            receipt_no="TN-2027-000042",
            revision=revision,
            received_at=AT,
            due_at=DUE_AT,
            on_time=on_time,
            submitted_by=Submitter(name="Nguyễn Thị Hà"),
            tasks=[TaskReport(task_id="ii-1-1", status="completed", results="4 buổi.")],
        ),
    )


def period_ref() -> dict[str, object]:
    return {
        "plan_id": PLAN_ID,
        "period_id": PERIOD,
        "report_kind": "6-thang",
        "year": 2027,
        "due_at": DUE_AT,
        "unit_id": UNIT,
    }


def reviewed(decision: str) -> ReportReviewed:
    return ReportReviewed(
        **envelope("submissions"),
        payload=ReportReviewedPayload.model_validate(
            {
                **REF,
                "review_id": "r-1",
                "submission_id": "s-42",
                "revision": 2,
                "decision": decision,
                "comment": "Bổ sung số buổi tuyên truyền; ghi rõ địa bàn."
                if decision == "returned"
                else "",
                "reviewer": "cv-vanhoa",
                "reviewer_name": "Đặng Thu Trang",
                "reviewed_at": LATER,
                "resubmit_by": LATER + dt.timedelta(days=3) if decision == "returned" else None,
            }
        ),
    )


def extension(decision: str) -> ExtensionDecided:
    approved = decision == "approved"
    return ExtensionDecided(
        **envelope("submissions"),
        payload=ExtensionDecidedPayload.model_validate(
            {
                **REF,
                "request_id": "x-1",
                "decision": decision,
                "reason": "Đồng ý do mưa lũ." if approved else "Đã quá thời gian xem xét.",
                "due_at": DUE_AT,
                "new_due_at": DUE_AT + dt.timedelta(days=7) if approved else None,
                "new_closes_at": DUE_AT + dt.timedelta(days=10) if approved else None,
                "decided_by": "tp-vanhoa",
                "decided_by_name": "Võ Minh Quân",
                "decided_at": LATER,
            }
        ),
    )


def exception() -> FilingExceptionGranted:
    return FilingExceptionGranted(
        **envelope("submissions"),
        payload=FilingExceptionGrantedPayload(
            **REF,
            exception_id="e-1",
            reason="Mất điện diện rộng trong ba ngày cuối kỳ.",
            until=LATER + dt.timedelta(days=2),
            granted_by="tp-vanhoa",
            granted_by_name="Võ Minh Quân",
            granted_at=LATER,
        ),
    )


def _report(version: int) -> dict[str, object]:
    return {
        "report_id": f"bc-{version}",
        "version": version,
        "trigger": "period_closed" if version == 1 else "requested",
        "plan_id": PLAN_ID,
        "period_id": PERIOD,
        "report_kind": "6-thang",
        "year": 2027,
        "title": "Báo cáo 6 tháng năm 2027",
        "due_at": DUE_AT,
        "consolidated_at": LATER,
        "expected": 25,
        "received": 23,
        "on_time": 20,
        "late": 3,
        "missing": 2,
        "document": {
            "document_id": "d-1",
            "media_type": "application/pdf",
            "filename": "bao-cao.pdf",
            "sha256": "0" * 64,
            "url": f"{PORTAL}/documents/d-1",
        }
        if version == 1
        else None,
        "content_hash": "1" * 64,
    }


def consolidated(version: int) -> ReportConsolidatedV2:
    """What notify reads: v2, its per-unit detail in a file the notice does not need."""
    return ReportConsolidatedV2(
        **envelope("consolidate"),
        payload=ReportConsolidatedV2Payload.model_validate(
            {
                **_report(version),
                "detail": {
                    "filename": f"chi-tiet-v{version}.json",
                    "sha256": "2" * 64,
                    "size": 1234,
                    "url": f"{PORTAL}/documents/chi-tiet-v{version}.json",
                },
            }
        ),
    )


def consolidated_v1(version: int) -> ReportConsolidated:
    """The same version as v1 carried it (a notice in the ledger from before v2)."""
    return ReportConsolidated(
        **envelope("consolidate"),
        payload=ReportConsolidatedPayload.model_validate({**_report(version), "units": []}),
    )


def summary(*, overdue: bool) -> DeadlineSummary:
    """The office's summary: three units still owe, one of them extended and one returned."""
    at = LATER if overdue else AT - dt.timedelta(days=3)
    pending = [
        ("xa-dak-xu", DUE_AT + dt.timedelta(days=7), False),  # extended by a week
        ("xa-bo-y", DUE_AT, True),
        ("phong-tu-phap", DUE_AT, False),
    ]
    return DeadlineSummary(
        **envelope("deadlines"),
        payload=DeadlineSummaryPayload.model_validate(
            {
                "plan_id": PLAN_ID,
                "period_id": PERIOD,
                "report_kind": "6-thang",
                "year": 2027,
                "due_at": DUE_AT,
                "summary_at": at,
                "rung": "a2" if overdue else "b3",
                "reaches": ["office", "leadership"] if overdue else ["office"],
                "expected_count": 25,
                "pending": [
                    {"unit_id": u, "due_at": due, "overdue": at >= due, "returned": back}
                    for u, due, back in pending
                ],
            }
        ),
    )


CASES: dict[str, Event] = {
    "receipt": receipt(),
    "receipt-late-correction": receipt(revision=3, on_time=False),
    "reminder": DeadlineApproaching(
        **envelope("deadlines"),
        payload=DeadlineApproachingPayload(**period_ref(), days_before=3, reminder_at=AT),
    ),
    # The due day's rung (b0): deadlines still says one day left (days_before is at least 1).
    "reminder-due-day": DeadlineApproaching(
        **envelope("deadlines"),
        payload=DeadlineApproachingPayload(
            **period_ref(), days_before=1, reminder_at=AT, rung="b0", working_days_before=0
        ),
    ),
    "overdue": DeadlineOverdue(
        **envelope("deadlines"), payload=DeadlineOverduePayload(**period_ref())
    ),
    "returned": reviewed("returned"),
    "accepted": reviewed("accepted"),
    "extension-approved": extension("approved"),
    "extension-refused": extension("refused"),
    "exception": exception(),
    "consolidated": consolidated(1),
    "consolidated-v2": consolidated(2),
    "summary": summary(overdue=False),
    "summary-overdue": summary(overdue=True),
}


def sms_reminder(at: dt.datetime) -> DeadlineApproaching:
    """A reminder at ``at`` for xa-bo-y, whose officer receives e-mail and SMS."""
    return DeadlineApproaching(
        occurred_at=at,
        producer="deadlines",
        correlation_id=uuid.uuid4(),
        payload=DeadlineApproachingPayload(
            plan_id="kh-nq35-ngoc-hoi",
            period_id="kh-nq35-ngoc-hoi.2027.6-thang",
            report_kind="6-thang",
            year=2027,
            due_at=dt.datetime(2027, 6, 14, 17, 0, tzinfo=dt.UTC),
            unit_id="xa-bo-y",  # A Khánh receives e-mail and SMS
            days_before=3,
            reminder_at=at,
        ),
    )
