"""``BAOCAO_SMTP_PASSWORD`` is a secret: handed to the SMTP login and shown nowhere else."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import httpx
import pytest
from pydantic import SecretStr

from services.common.reference import Catalog
from services.notify import mailer as mailer_module
from services.notify.app import build_app
from services.notify.config import NotifySettings
from services.notify.domain import messages_for
from services.notify.mailer import SmtpConfig, SmtpMailer
from tests.support import notices

pytestmark = pytest.mark.unit

SECRET = "mật-khẩu-Zq8#không-được-lộ"


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> NotifySettings:
    monkeypatch.setenv("BAOCAO_SMTP_USERNAME", "baocao")
    monkeypatch.setenv("BAOCAO_SMTP_PASSWORD", SECRET)
    return NotifySettings(namespace="unit")  # type: ignore[call-arg]


def test_the_password_is_read_as_a_secret(settings: NotifySettings) -> None:
    assert isinstance(settings.smtp_password, SecretStr)
    assert settings.smtp_password.get_secret_value() == SECRET
    for shown in (repr(settings), str(settings), settings.model_dump_json(), str(vars(settings))):
        assert SECRET not in shown


def test_no_password_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BAOCAO_SMTP_PASSWORD", raising=False)
    assert NotifySettings(namespace="unit").smtp_password is None  # type: ignore[call-arg]


def test_the_smtp_config_does_not_show_it_either(settings: NotifySettings) -> None:
    config = SmtpConfig(host="127.0.0.1", port=25, password=settings.smtp_password)

    assert SECRET not in repr(config)
    assert SECRET not in str(config)


async def test_neither_docs_nor_the_openapi_document_show_it(settings: NotifySettings) -> None:
    app = build_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notify") as client:
        docs = await client.get("/docs")
        document = await client.get("/openapi.json")

    assert docs.status_code == 200 and document.status_code == 200
    assert SECRET not in docs.text
    assert SECRET not in document.text


class RecordingSmtp:
    """Stands in for ``aiosmtplib.SMTP``: keeps what it was built with, refuses to connect."""

    built: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        RecordingSmtp.built.append(kwargs)

    async def connect(self) -> None:
        raise ConnectionRefusedError("no server in a unit test")

    def close(self) -> None:
        return None


async def test_the_login_gets_the_real_value_and_no_log_line_shows_it(
    settings: NotifySettings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(mailer_module.aiosmtplib, "SMTP", RecordingSmtp)
    RecordingSmtp.built = []
    sender = SmtpMailer(
        SmtpConfig(
            host="127.0.0.1",
            port=25,
            username=settings.smtp_username,
            password=settings.smtp_password,
        ),
        sender="Hệ thống báo cáo baocao <khong-tra-loi@baocao.example>",
    )
    plan = Catalog.load([notices.SEED]).plan(notices.PLAN_ID)
    assert plan is not None
    [message] = messages_for(notices.CASES["receipt"], plan, notices.PORTAL)

    with caplog.at_level(logging.DEBUG), pytest.raises(mailer_module.SendFailed) as failed:
        await sender.send(message)

    [built] = RecordingSmtp.built
    assert (built["username"], built["password"]) == ("baocao", SECRET)
    assert SECRET not in str(failed.value)
    assert SECRET not in caplog.text


def test_a_gateway_success_pattern_that_does_not_compile_stops_the_service_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BAOCAO_SMS_GATEWAY_SUCCESS_PATTERN", '"code": *("00"')
    with pytest.raises(ValueError, match="SUCCESS_PATTERN"):
        NotifySettings(namespace="unit")  # type: ignore[call-arg]
    monkeypatch.setenv("BAOCAO_SMS_GATEWAY_SUCCESS_PATTERN", '"code": *"00"')
    assert NotifySettings(namespace="unit").sms_gateway_success_pattern == '"code": *"00"'  # type: ignore[call-arg]
