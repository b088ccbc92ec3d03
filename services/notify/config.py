from pydantic import Field

from services.common.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    port: int = Field(8002, validation_alias="BAOCAO_NOTIFY_PORT")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: str | None = None
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
