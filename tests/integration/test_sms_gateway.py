"""``HttpSmsGateway`` against a real local HTTP server answering 200, 429, 5xx, 400 or not
at all: what is sent, and which failures are worth another try."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from services.notify.mailer import SendFailed
from services.notify.sms import HttpSmsGateway
from tests.support.sms_gateway import HOLD, SmsGatewayServer

pytestmark = pytest.mark.integration

TEXT = "UBND xã Đắk Xú: đã quá hạn Báo cáo 6 tháng năm 2027 – đề nghị gửi ngay."


@pytest.fixture
async def server() -> AsyncIterator[SmsGatewayServer]:
    gateway = SmsGatewayServer()
    await gateway.start()
    yield gateway
    await gateway.stop()


def gateway(server: SmsGatewayServer, **options: object) -> HttpSmsGateway:
    return HttpSmsGateway(
        server.url,
        headers={"Authorization": "Bearer thu-nghiem"},
        timeout=1.0,
        **options,  # type: ignore[arg-type]
    )


async def test_a_200_is_sent_with_the_number_text_and_credential(
    server: SmsGatewayServer,
) -> None:
    sms = gateway(server)

    await sms.send("+84900000028", TEXT)
    await sms.close()

    [request] = server.received
    assert request.headers["authorization"] == "Bearer thu-nghiem"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"to": "+84900000028", "text": TEXT}


async def test_the_body_follows_the_configured_template(server: SmsGatewayServer) -> None:
    sms = gateway(
        server,
        body_template="Phone={{ to | urlencode }}&Content={{ text | urlencode }}&Brand=BAOCAO",
        content_type="application/x-www-form-urlencoded",
    )

    await sms.send("+84900000028", "Đã nhận")
    await sms.close()

    [request] = server.received
    assert request.body == b"Phone=%2B84900000028&Content=%C4%90%C3%A3%20nh%E1%BA%ADn&Brand=BAOCAO"


@pytest.mark.parametrize(
    ("status", "permanent"), [(429, False), (500, False), (503, False), (400, True)]
)
async def test_429_and_5xx_are_retried_and_other_refusals_are_final(
    server: SmsGatewayServer, status: int, permanent: bool
) -> None:
    server.statuses = [status]
    sms = gateway(server)

    with pytest.raises(SendFailed) as caught:
        await sms.send("+84900000028", TEXT)
    await sms.send("+84900000028", TEXT)  # the next one goes through
    await sms.close()

    assert caught.value.permanent is permanent
    assert str(status) in str(caught.value)
    assert len(server.received) == 2


@pytest.mark.parametrize("permanent", [True, False])
async def test_a_200_with_an_error_code_fails_when_a_success_check_is_configured(
    server: SmsGatewayServer, permanent: bool
) -> None:
    server.bodies = [b'{"code": "99", "message": "So dien thoai khong hop le"}', b'{"code": "00"}']
    sms = gateway(server, success_pattern=r'"code":\s*"00"', mismatch_permanent=permanent)

    with pytest.raises(SendFailed) as caught:
        await sms.send("+84900000028", TEXT)
    await sms.send("+84900000028", TEXT)  # the next answer says success
    await sms.close()

    assert caught.value.permanent is permanent
    assert '"99"' in str(caught.value)
    assert len(server.received) == 2


async def test_without_a_success_check_any_200_is_sent(server: SmsGatewayServer) -> None:
    server.bodies = [b'{"code": "99"}']
    sms = gateway(server)

    await sms.send("+84900000028", TEXT)
    await sms.close()

    assert len(server.received) == 1


async def test_a_gateway_that_does_not_answer_times_out_and_is_retried(
    server: SmsGatewayServer,
) -> None:
    server.statuses = [HOLD]
    sms = gateway(server)

    started = time.monotonic()
    with pytest.raises(SendFailed) as caught:
        await sms.send("+84900000028", TEXT)
    waited = time.monotonic() - started
    await sms.send("+84900000028", TEXT)
    await sms.close()

    assert caught.value.permanent is False
    assert 0.9 < waited < 5
    assert len(server.received) == 2


async def test_a_gateway_that_is_not_there_is_retried() -> None:
    absent = SmsGatewayServer()
    await absent.start()
    url = absent.url
    await absent.stop()

    with pytest.raises(SendFailed) as caught:
        await HttpSmsGateway(url, timeout=1.0).send("+84900000028", TEXT)

    assert caught.value.permanent is False
