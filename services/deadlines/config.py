"""Settings of the deadlines service."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import ServiceSettings


class DeadlinesSettings(ServiceSettings):
    port: int = Field(8001, validation_alias="BAOCAO_DEADLINES_PORT")
    scan_interval_seconds: float = Field(30, gt=0)
    catch_up_days: int = Field(30, ge=0, le=300)
    """Periods that closed longer ago than this are ignored: a first deployment (or one back
    from a long outage) must not announce years-old deadlines. Kept below a year because only
    the periods of last, this and next year are considered."""
