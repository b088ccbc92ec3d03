"""Settings of the deadlines service."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from contracts.plan.workdays import DEFAULT_FILE
from services.common.settings import ServiceSettings


class DeadlinesSettings(ServiceSettings):
    port: int = Field(8001, validation_alias="BAOCAO_DEADLINES_PORT")
    scan_interval_seconds: float = Field(30, gt=0)
    catch_up_days: int = Field(30, ge=0, le=300)
    """Periods that closed longer ago than this are ignored: a first deployment (or one back
    from a long outage) must not announce years-old deadlines. Kept below a year because only
    the periods of last, this and next year are considered."""
    alert_missing_share: float = Field(0.2, ge=0, le=1)
    """The office is alerted when a period locks within 24 hours with more than this share of
    its units yet to report (exported for the alert rule, which compares against it)."""
    calendar_file: Path = DEFAULT_FILE
    """The government's yearly swaps of working days (``contracts.plan.workdays``)."""
