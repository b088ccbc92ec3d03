"""Events as other services would send them, for tests that only need a plausible one."""

from __future__ import annotations

import datetime as dt
import uuid

from contracts.events import SubmissionReceived
from services.common.periods import Period


def submission_received(
    period: Period, unit_id: str, at: dt.datetime, *, task_id: str = "nv-1"
) -> SubmissionReceived:
    """A unit's first report for ``period``, received at ``at`` (late after the due date)."""
    return SubmissionReceived.model_validate(
        {
            "occurred_at": at,
            "producer": "submissions",
            "correlation_id": uuid.uuid4(),
            "payload": {
                "submission_id": uuid.uuid4().hex,
                "receipt_no": "BC-1",
                "plan_id": period.plan_id,
                "period_id": period.id,
                "unit_id": unit_id,
                "revision": 1,
                "received_at": at,
                "due_at": period.due_at,
                "on_time": at < period.due_at,
                "tasks": [{"task_id": task_id, "status": "in_progress", "results": "Đã làm"}],
            },
        }
    )
