"""Settings of the consolidate service."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import ServiceSettings


class ConsolidateSettings(ServiceSettings):
    port: int = Field(8003, validation_alias="BAOCAO_CONSOLIDATE_PORT")
