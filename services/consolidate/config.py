"""Settings of the consolidate service."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import ServiceSettings


class ConsolidateSettings(ServiceSettings):
    port: int = Field(8003, validation_alias="BAOCAO_CONSOLIDATE_PORT")
    public_url: str = Field(
        "http://127.0.0.1:8003",
        validation_alias="BAOCAO_CONSOLIDATE_PUBLIC_URL",
        description="how others (the province) reach this service: report file URLs start here",
    )
    render_pdf: bool = Field(True, validation_alias="BAOCAO_RENDER_PDF")
