"""``SmtpMailer`` against a Mailpit that asks what a real relay asks: STARTTLS with a login, or
TLS from the first byte. The certificate is self-signed and trusted through ``cert_bundle``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from deploy.local import stack
from services.notify.mailer import SendFailed, SmtpConfig, SmtpMailer
from tests.conftest import Servers
from tests.integration.test_smtp_mailer import SENDER, outgoing
from tests.support import mailpit
from tests.support.private_mailpit import PrivateMailpit, Security, private_mailpit
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

LOGIN = ("baocao", "mật-khẩu-thử")


@pytest.fixture(scope="module")
def relay(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateMailpit]:
    """STARTTLS required, and a login."""
    security = Security(require_starttls=True, login=LOGIN)
    with private_mailpit(
        stack.Layout().bin_dir,
        keep=100,
        log_dir=tmp_path_factory.mktemp("relay"),
        security=security,
    ) as server:
        yield server


@pytest.fixture(scope="module")
def tls_relay(
    servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrivateMailpit]:
    """TLS from the first byte (port 465 style)."""
    with private_mailpit(
        stack.Layout().bin_dir,
        keep=100,
        log_dir=tmp_path_factory.mktemp("tls-relay"),
        security=Security(implicit_tls=True),
    ) as server:
        yield server


def config(server: PrivateMailpit, **fields: object) -> SmtpConfig:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": server.smtp_port,
        "cert_bundle": str(server.cert),
        "timeout": 5,
    }
    values.update(fields)
    return SmtpConfig(**values)  # type: ignore[arg-type]


async def arrived(server: PrivateMailpit, token: str, count: int) -> list[dict[str, object]]:
    async def probe() -> list[dict[str, object]]:
        hits = await mailpit.search(server.api, token)
        return hits if len(hits) >= count else []

    return await eventually(probe, what=f"{count} message(s) with {token} in the relay")


async def send(cfg: SmtpConfig, count: int = 1) -> str:
    token = uuid.uuid4().hex
    sender = SmtpMailer(cfg, sender=SENDER, pool_size=2, per_session=10)
    try:
        for n in range(count):
            await sender.send(outgoing(f"{token} {n}"))
    finally:
        await sender.close()
    return token


async def test_starttls_with_a_login_delivers_over_reused_sessions(relay: PrivateMailpit) -> None:
    cfg = config(relay, starttls=True, username=LOGIN[0], password=SecretStr(LOGIN[1]))
    token = await send(cfg, count=5)
    hits = await arrived(relay, token, 5)
    assert len(hits) == 5
    assert all("Quá hạn" in str(hit["Subject"]) for hit in hits)


async def test_a_wrong_password_is_a_permanent_failure(relay: PrivateMailpit) -> None:
    cfg = config(relay, starttls=True, username=LOGIN[0], password=SecretStr("sai"))
    with pytest.raises(SendFailed) as refused:
        await send(cfg)
    assert refused.value.permanent, refused.value


async def test_without_starttls_the_relay_refuses_and_nothing_is_sent(
    relay: PrivateMailpit,
) -> None:
    before = await mailpit.search(relay.api, "Quá")
    with pytest.raises(SendFailed):
        await send(config(relay, username=LOGIN[0], password=SecretStr(LOGIN[1])))
    assert len(await mailpit.search(relay.api, "Quá")) == len(before)


async def test_an_untrusted_certificate_is_refused(relay: PrivateMailpit) -> None:
    cfg = config(
        relay, starttls=True, username=LOGIN[0], password=SecretStr(LOGIN[1]), cert_bundle=None
    )
    with pytest.raises(SendFailed) as refused:
        await send(cfg)
    assert "certificate" in str(refused.value).lower() or "ssl" in str(refused.value).lower()


async def test_implicit_tls_delivers(tls_relay: PrivateMailpit) -> None:
    token = await send(config(tls_relay, implicit_tls=True), count=3)
    assert len(await arrived(tls_relay, token, 3)) == 3
