from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from services.common.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    port: int = Field(8002, validation_alias="BAOCAO_NOTIFY_PORT")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = Field(
        None, description="SMTP login password; never logged, printed or shown in /docs"
    )
    smtp_starttls: bool = False
    smtp_implicit_tls: bool = Field(False, description="TLS from the first byte (port 465)")
    smtp_validate_certs: bool = True
    smtp_cert_bundle: str | None = Field(None, description="CA file to trust for the server")
    smtp_timeout_seconds: float = 20.0
    smtp_pool_size: int = Field(
        4, ge=1, description="SMTP sessions kept open and reused; also the sends at once"
    )
    smtp_messages_per_session: int = Field(
        100, ge=1, description="a session is closed and a new one opened after this many"
    )
    notify_fan_out: int = Field(
        8,
        ge=1,
        description="messages of one event (or one retry pass) in progress at once; the SMTP "
        "pool bounds the sends, a larger number overlaps ledger writes with them",
    )
    mail_from: str = "Hệ thống báo cáo baocao <khong-tra-loi@baocao.example>"
    send_attempts: int = Field(5, ge=1, description="tries per message before it is failed")
    send_retry_seconds: float = Field(2.0, gt=0, description="first back-off; doubles each try")
    lease_seconds: float = Field(
        120.0,
        gt=0,
        validation_alias="BAOCAO_NOTIFY_LEASE_SECONDS",
        description="how long a notice in flight belongs to the process trying it; longer than "
        "one attempt can take (SMTP timeouts), or a live holder would lose it",
    )
    sms_provider: Literal["none", "log", "http"] = Field(
        "none", description="none: no SMS; log: a log line each (development); http: gateway"
    )
    sms_gateway_url: str | None = None
    sms_gateway_auth_header: str = "Authorization"
    sms_gateway_token: SecretStr | None = Field(
        None, description="sent as the value of sms_gateway_auth_header (e.g. 'Bearer …')"
    )
    sms_gateway_body: str = Field(
        '{"to": {{ to | tojson }}, "text": {{ text | tojson }}}',
        description="Jinja2 template of the request body, with the number and the text",
    )
    sms_gateway_content_type: str = "application/json"
    sms_gateway_success_pattern: str | None = Field(
        None,
        description="regular expression a 2xx body must match to count as sent (gateways that "
        'answer 200 with an error code), e.g. \'"code":\\s*"00"\'; unset: any 2xx is sent',
    )
    sms_gateway_mismatch_permanent: bool = Field(
        True, description="a 2xx not matching the pattern is final (true) or retried (false)"
    )
    sms_timeout_seconds: float = Field(10.0, gt=0)
    sms_unaccented: bool = Field(
        False, description="send Vietnamese without diacritics: GSM-7, fewer segments"
    )
    sms_quiet_start: dt.time = Field(dt.time(21, 0), description="local time SMS stop")
    sms_quiet_end: dt.time = Field(dt.time(7, 0), description="local time SMS resume")

    @model_validator(mode="after")
    def _gateway_has_an_address(self) -> NotifySettings:
        if self.sms_provider == "http" and not self.sms_gateway_url:
            raise ValueError("BAOCAO_SMS_PROVIDER=http needs BAOCAO_SMS_GATEWAY_URL")
        if self.sms_gateway_success_pattern is not None:
            # A typo in the pattern stops the service at start, not at the first SMS.
            try:
                re.compile(self.sms_gateway_success_pattern)
            except re.error as error:
                raise ValueError(f"BAOCAO_SMS_GATEWAY_SUCCESS_PATTERN: {error}") from error
        return self
