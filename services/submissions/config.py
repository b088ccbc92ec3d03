from pathlib import Path

from pydantic import Field

from services.common.settings import ServiceSettings


class SubmissionsSettings(ServiceSettings):
    port: int = Field(8000, validation_alias="BAOCAO_SUBMISSIONS_PORT")
    max_body_bytes: int = Field(1_000_000, validation_alias="BAOCAO_SUBMISSIONS_MAX_BODY_BYTES")
    max_attachment_bytes: int = Field(
        20_000_000,
        ge=1,
        description="one attached file at most (20 MB)",
    )
    max_report_attachment_bytes: int = Field(
        50_000_000,
        ge=1,
        description="all files one unit attaches for one period together at most (50 MB)",
    )
    max_concurrent_submissions: int = Field(
        8,
        ge=1,
        validation_alias="BAOCAO_SUBMISSIONS_MAX_CONCURRENT",
        description="reports stored at the same time; more wait (see the next two)",
    )
    max_waiting_submissions: int = Field(
        64, ge=0, validation_alias="BAOCAO_SUBMISSIONS_MAX_WAITING"
    )
    max_wait_seconds: float = Field(
        5.0,
        gt=0,
        validation_alias="BAOCAO_SUBMISSIONS_MAX_WAIT_SECONDS",
        description="a report waiting longer is answered 503 busy, with Retry-After",
    )
    resubmit_grace_days: int = Field(
        5,
        ge=0,
        le=366,
        description="a returned report resubmitted within this many days keeps the timeliness "
        "of the version returned (README: Review, locks and extensions)",
    )
    auth_private_key_file: Path = Field(
        description="PEM of the Ed25519 key that signs sign-in tokens; readable by this service "
        "only (the other services hold its public half)"
    )
    cookie_secure: bool = Field(
        True,
        validation_alias="BAOCAO_COOKIE_SECURE",
        description="send the session cookie over HTTPS only; false for plain-HTTP development",
    )
    session_hours: float = Field(
        12.0, gt=0, description="a sign-in lasts this long at most, however active"
    )
    session_idle_minutes: float = Field(
        30.0, gt=0, description="a sign-in with no request for this long ends"
    )
    consolidate_url: str = Field(
        "http://127.0.0.1:8003",
        description="where the consolidate service answers, for the pages' links to the "
        "consolidated reports",
    )
    deadlines_url: str = Field(
        "http://127.0.0.1:8001",
        description="where people's calendar apps reach the deadlines service, for the "
        "calendar feed links (GET /api/v1/units/{unit}/calendar.ics)",
    )
