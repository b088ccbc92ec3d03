"""``SmtpMailer`` against the real Mailpit: Vietnamese arrives intact, ids are stable."""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import uuid
from typing import Any

import pytest

from contracts.events import DeadlineOverdue, DeadlineOverduePayload
from services.notify.domain import Outgoing
from services.notify.mailer import SendFailed, SmtpMailer
from tests.conftest import Servers
from tests.support import mailpit
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

SENDER = "Hệ thống báo cáo baocao <khong-tra-loi@baocao.example>"
DUE_AT = dt.datetime(2027, 6, 14, 17, 0, tzinfo=dt.UTC)


def outgoing(token: str, notification_id: str | None = None) -> Outgoing:
    cause = DeadlineOverdue(
        occurred_at=DUE_AT,
        producer="deadlines",
        correlation_id=uuid.uuid4(),
        payload=DeadlineOverduePayload(
            plan_id="kh-nq35-ngoc-hoi",
            period_id="kh-nq35-ngoc-hoi.2027.6-thang",
            report_kind="6-thang",
            year=2027,
            due_at=DUE_AT,
            unit_id="xa-dak-xu",
        ),
    )
    return Outgoing(
        notification_id=notification_id
        or f"{cause.event_id}|overdue|email|xadakxu@ngochoi.example",
        channel="email",
        template="overdue",
        recipient="xadakxu@ngochoi.example",
        recipient_name="Nguyễn Văn Đức",
        subject=f"Quá hạn: Báo cáo 6 tháng năm 2027 – Ủy ban nhân dân xã Đắk Xú [{token}]",
        text=f"Kính gửi: Ủy ban nhân dân xã Đắk Xú,\n\nĐã quá hạn báo cáo (trước ngày "
        f"15/06/2027) nhưng hệ thống chưa nhận được báo cáo 6 tháng năm 2027.\n\n"
        f"Mã kiểm tra: {token}\n",
        unit_id="xa-dak-xu",
        plan_id="kh-nq35-ngoc-hoi",
        period_id="kh-nq35-ngoc-hoi.2027.6-thang",
        cause=cause,
    )


def mailer(servers: Servers, port: int | None = None) -> SmtpMailer:
    return SmtpMailer(
        host=servers.smtp_host, port=port or servers.smtp_port, sender=SENDER, timeout=5
    )


async def found(servers: Servers, token: str, count: int) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]]:
        hits = await mailpit.search(servers.mailpit_api, token)
        return hits if len(hits) >= count else []

    return await eventually(probe, what=f"{count} message(s) with {token} in Mailpit")


async def test_a_vietnamese_message_arrives_decoded(servers: Servers) -> None:
    token = uuid.uuid4().hex
    message = outgoing(token)

    await mailer(servers).send(message)

    [summary] = await found(servers, token, 1)
    full = await mailpit.message(servers.mailpit_api, summary["ID"])
    assert full["Subject"] == message.subject
    assert "Kính gửi: Ủy ban nhân dân xã Đắk Xú," in full["Text"]
    assert "Đã quá hạn báo cáo (trước ngày 15/06/2027)" in full["Text"]
    assert full["From"]["Name"] == "Hệ thống báo cáo baocao"
    assert full["From"]["Address"] == "khong-tra-loi@baocao.example"
    assert [(t["Name"], t["Address"]) for t in full["To"]] == [
        ("Nguyễn Văn Đức", "xadakxu@ngochoi.example")
    ]


async def test_the_message_id_is_stable_for_a_notification(servers: Servers) -> None:
    token = uuid.uuid4().hex
    notification_id = f"{uuid.uuid4()}|overdue|email|xadakxu@ngochoi.example"
    expected = hashlib.sha256(notification_id.encode()).hexdigest()[:32] + "@baocao"

    await mailer(servers).send(outgoing(token, notification_id))
    await mailer(servers).send(outgoing(token, notification_id))  # a resend after a crash
    await mailer(servers).send(outgoing(token))  # another notification

    hits = await found(servers, token, 3)
    ids = sorted(h["MessageID"].strip("<>") for h in hits)
    assert ids.count(expected) == 2
    assert len(set(ids)) == 2


async def test_sending_to_a_closed_port_is_a_transient_failure(servers: Servers) -> None:
    with socket.socket() as probe:  # a port nobody listens on once this socket is closed
        probe.bind((servers.smtp_host, 0))
        closed_port = probe.getsockname()[1]

    with pytest.raises(SendFailed) as caught:
        await mailer(servers, closed_port).send(outgoing(uuid.uuid4().hex))

    assert caught.value.permanent is False
