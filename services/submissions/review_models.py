"""What the review API accepts and answers (``...Create`` in, ``...Public`` out).

Text comes in through the same checks as a report's (``models``): one line for ids, long text
with line breaks for comments and reasons. Dates are local days of the plan's time zone, as
people say them: an extension "before 20/07" is due at the start of 20 July, an exception
"until 20/07" lasts to the end of it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

from contracts.events import TaskReport
from services.submissions.models import Line, LongText, Strict
from services.submissions.review import ReviewState


class ReviewCreate(Strict):
    decision: Literal["accept", "return"]
    revision: int = Field(ge=1, description="the version reviewed: the latest one")
    comment: LongText = Field(
        "", max_length=5_000, description="required to return: what the unit must correct"
    )


class ReviewPublic(BaseModel):
    period_id: str
    unit_id: str
    submission_id: str
    revision: int
    decision: Literal["accepted", "returned"]
    comment: str
    reviewer: str
    reviewer_name: str
    reviewed_at: AwareDatetime
    resubmit_by: AwareDatetime | None = Field(
        None, description="returned: a new version before then keeps this one's timeliness"
    )


class Submitter(BaseModel):
    name: str
    email: str | None = None


class VersionPublic(BaseModel):
    """One version of a unit's report: who sent it, when, and how the office judged it."""

    revision: int
    submission_id: str
    receipt_no: str
    received_at: AwareDatetime
    received_at_local: str
    due_at: AwareDatetime
    on_time: bool
    submitted_by: Submitter | None = None
    review: ReviewPublic | None = None


class VersionsPublic(BaseModel):
    period_id: str
    unit_id: str
    state: ReviewState = Field(description="of the latest version")
    versions: list[VersionPublic] = Field(description="oldest first")


class VersionDetail(VersionPublic):
    period_id: str
    unit_id: str
    tasks: list[TaskReport]
    attachments: list[dict[str, Any]] = Field(default_factory=list)


class ExceptionCreate(Strict):
    reason: LongText = Field(min_length=1, max_length=2_000)
    until: dt.date = Field(description="the last local day the unit may file on")


class ExceptionPublic(BaseModel):
    period_id: str
    unit_id: str
    exception_id: str
    reason: str
    until: AwareDatetime
    until_local: str
    granted_by: str
    granted_by_name: str
    granted_at: AwareDatetime
    in_force: bool


class ExtensionRequestCreate(Strict):
    reason: LongText = Field(min_length=1, max_length=2_000)
    due_before: dt.date = Field(description="the due date wanted: the report before this day")


class ExtensionDecisionCreate(Strict):
    request_id: Line = Field(min_length=1, max_length=64)
    decision: Literal["approve", "refuse"]
    due_before: dt.date | None = Field(
        None, description="approve: the new due date (default: the one asked for)"
    )
    reason: LongText = Field("", max_length=2_000, description="required to refuse")


class ExtensionRequestPublic(BaseModel):
    request_id: str
    period_id: str
    unit_id: str
    reason: str
    due_at: AwareDatetime = Field(description="the unit's due instant when it asked")
    wanted_due_at: AwareDatetime
    requested_by: str
    requested_by_name: str
    requested_at: AwareDatetime
    state: Literal["pending", "approved", "refused"]
    decision_reason: str = ""
    decided_by: str | None = None
    decided_by_name: str | None = None
    decided_at: AwareDatetime | None = None
    new_due_at: AwareDatetime | None = None
    new_closes_at: AwareDatetime | None = None


class StandingPublic(BaseModel):
    """A unit's position in a period: its due and lock instants, what the office granted it,
    and the review state of its latest version."""

    period_id: str
    unit_id: str
    due_at: AwareDatetime
    due_local: str
    closes_at: AwareDatetime = Field(description="the unit's lock instant")
    closes_local: str
    extended: bool
    may_file_now: bool
    review_state: ReviewState | None = Field(None, description="null: nothing filed yet")
    latest_revision: int | None = None
    exception: ExceptionPublic | None = None
    extension_request: ExtensionRequestPublic | None = None
