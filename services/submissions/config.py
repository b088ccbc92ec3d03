from pydantic import Field

from services.common.settings import ServiceSettings


class SubmissionsSettings(ServiceSettings):
    port: int = Field(8000, validation_alias="BAOCAO_SUBMISSIONS_PORT")
    max_body_bytes: int = Field(1_000_000, validation_alias="BAOCAO_SUBMISSIONS_MAX_BODY_BYTES")
