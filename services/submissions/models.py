"""What the HTTP API accepts and answers (role-suffixed: ...Create in, ...Public out)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.events import TaskStatus

Text = Annotated[str, Field(max_length=20_000)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class IndicatorValueCreate(Strict):
    code: str = Field(min_length=1, max_length=64)
    value: float = Field(ge=0, allow_inf_nan=False)


class TaskReportCreate(Strict):
    task_id: str = Field(min_length=1, max_length=64)
    status: TaskStatus
    results: Text = Field(min_length=1)
    indicators: list[IndicatorValueCreate] = Field(default_factory=list, max_length=50)
    difficulties: Annotated[str, Field(max_length=10_000)] = ""
    proposals: Annotated[str, Field(max_length=10_000)] = ""


class SubmitterCreate(Strict):
    name: str = Field(min_length=1, max_length=120)
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$", max_length=254)


class SubmissionCreate(Strict):
    period_id: str = Field(min_length=1, max_length=128)
    unit_id: str = Field(min_length=1, max_length=64)
    submitted_by: SubmitterCreate | None = None
    tasks: list[TaskReportCreate] = Field(min_length=1, max_length=100)


class SubmissionReceipt(BaseModel):
    submission_id: uuid.UUID
    receipt_no: str
    period_id: str
    unit_id: str
    revision: int
    received_at: AwareDatetime
    received_at_local: str
    due_at: AwareDatetime
    on_time: bool
    server_time: AwareDatetime
    message: str


class ApiError(BaseModel):
    code: str
    message: str
    details: list[dict[str, object]] = Field(default_factory=list)


def local_text(moment: dt.datetime, tz: dt.tzinfo) -> str:
    """'14:05 ngày 26/11/2026' in the plan's time zone."""
    local = moment.astimezone(tz)
    return f"{local:%H:%M} ngày {local:%d/%m/%Y}"
