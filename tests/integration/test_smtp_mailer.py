"""``SmtpMailer`` against the real Mailpit: Vietnamese arrives intact, ids are stable."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import email
import hashlib
import socket
import uuid
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest

from contracts.events import DeadlineOverdue, DeadlineOverduePayload
from services.common.reference import Catalog
from services.notify.domain import Outgoing, messages_for
from services.notify.mailer import SendFailed, SmtpConfig, SmtpMailer
from tests.conftest import Servers
from tests.support import mailpit, notices
from tests.support.smtp_server import ScriptedSmtpServer
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
        reply_to="vanhoa@ngochoi.example",
        reply_to_name="Phòng Văn hóa và Thông tin",
    )


def mailer(servers: Servers, port: int | None = None) -> SmtpMailer:
    config = SmtpConfig(host=servers.smtp_host, port=port or servers.smtp_port, timeout=5)
    return SmtpMailer(config, sender=SENDER)


def scripted_mailer(server: ScriptedSmtpServer, **pool: Any) -> SmtpMailer:
    return SmtpMailer(
        SmtpConfig(host="127.0.0.1", port=server.port, timeout=5), sender=SENDER, **pool
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


SAMPLE = (
    "Đã tiếp nhận Báo cáo năm 2026 – Ủy ban nhân dân xã Bờ Y; Trả lại để chỉnh sửa: Báo cáo "
    "6 tháng năm 2027 (bổ sung lần 2) – Phòng Văn hóa và Thông tin huyện Ngọc Hồi, tỉnh Kon "
    "Tum; Nhắc hạn: Báo cáo quý I năm 2027 – còn 3 ngày; Ủy ban nhân dân xã Đắk Xú ươ ỡ ự ặ ẫ"
)


async def test_subjects_of_20_to_200_characters_arrive_exact_in_mailpit_and_python(
    servers: Servers,
) -> None:
    """Each length once, each folding position hit by some subject: Mailpit's decoding and
    Python's strict parser of the raw message both give the subject sent."""
    token = uuid.uuid4().hex[:12]
    subjects = {}
    for length in range(20, 201, 3):
        subject = " ".join(SAMPLE[length % 7 : length % 7 + length].split())
        subjects[f"{token}-{length}"] = subject
    sender = mailer(servers)
    for key, subject in subjects.items():
        message = dataclasses.replace(outgoing(key), subject=subject, text=f"Mã: {key}\n")
        await sender.send(message)

    hits = await found(servers, token, len(subjects))
    by_key = {}
    for hit in hits:
        full = await mailpit.message(servers.mailpit_api, hit["ID"])
        key = full["Text"].strip().removeprefix("Mã: ")
        parsed = email.message_from_bytes(
            await mailpit.raw(servers.mailpit_api, hit["ID"]), policy=policy.default
        )
        assert isinstance(parsed, EmailMessage)
        by_key[key] = (full["Subject"], parsed["Subject"], full["HTML"], parsed)
    wrong = [
        (key, subject, by_key[key][:2])
        for key, subject in subjects.items()
        if by_key[key][:2] != (subject, subject)
    ]
    assert wrong == []
    _, _, html, parsed = by_key[next(iter(subjects))]
    assert "Mã: " in html
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Reply-To"].addresses[0].display_name == "Phòng Văn hóa và Thông tin"


async def test_one_session_carries_many_messages() -> None:
    server = ScriptedSmtpServer()
    await server.start()
    try:
        sender = scripted_mailer(server, pool_size=2, per_session=100)
        for _ in range(20):
            await sender.send(outgoing(uuid.uuid4().hex))
        await sender.close()
    finally:
        await server.stop()

    assert len(server.messages) == 20
    assert server.connections == 1


async def test_sessions_are_replaced_after_the_configured_count() -> None:
    server = ScriptedSmtpServer()
    await server.start()
    try:
        sender = scripted_mailer(server, pool_size=1, per_session=5)
        for _ in range(12):
            await sender.send(outgoing(uuid.uuid4().hex))
    finally:
        await server.stop()

    assert len(server.messages) == 12
    assert server.connections == 3


async def test_a_server_that_answers_452_after_n_per_session_still_gets_every_message() -> None:
    server = ScriptedSmtpServer(per_session=3)
    await server.start()
    try:
        sender = scripted_mailer(server, pool_size=4, per_session=100)
        results = await asyncio.gather(
            *(sender.send(outgoing(uuid.uuid4().hex)) for _ in range(40)), return_exceptions=True
        )
    finally:
        await server.stop()

    assert [r for r in results if r is not None] == []
    assert len(server.messages) == 40
    assert server.refused > 0  # the limit was hit, and each refusal moved to a new session


async def test_a_server_that_closes_with_421_after_n_per_session_still_gets_every_message() -> None:
    server = ScriptedSmtpServer(closing_after=3)
    await server.start()
    try:
        sender = scripted_mailer(server, pool_size=4, per_session=100)
        results = await asyncio.gather(
            *(sender.send(outgoing(uuid.uuid4().hex)) for _ in range(40)), return_exceptions=True
        )
    finally:
        await server.stop()

    assert [r for r in results if r is not None] == []
    assert len(server.messages) == 40
    assert server.refused > 0  # the server did close sessions, and each was replaced
    assert server.connections >= 40 // 3


async def test_a_dropped_connection_fails_no_other_send() -> None:
    server = ScriptedSmtpServer(drop_every=4)
    await server.start()
    outcomes: list[str] = []
    try:
        sender = scripted_mailer(server, pool_size=1, per_session=100)
        for _ in range(30):
            try:
                await sender.send(outgoing(uuid.uuid4().hex))
                outcomes.append("sent")
            except SendFailed as error:
                outcomes.append("permanent" if error.permanent else "failed")
    finally:
        await server.stop()

    assert server.dropped >= 7
    assert "permanent" not in outcomes
    assert outcomes.count("sent") == len(server.messages)
    # A broken session is replaced: a failure is never followed by another one.
    assert "failed,failed" not in ",".join(outcomes)
    assert outcomes.count("sent") >= 30 - server.dropped


async def test_the_pool_delivers_to_mailpit(servers: Servers) -> None:
    token = uuid.uuid4().hex
    sender = SmtpMailer(
        SmtpConfig(host=servers.smtp_host, port=servers.smtp_port, timeout=5),
        sender=SENDER,
        pool_size=3,
        per_session=4,
    )

    await asyncio.gather(*(sender.send(outgoing(f"{token} {i}")) for i in range(10)))
    await sender.close()

    assert len(await found(servers, token, 10)) == 10


async def test_every_notice_type_arrives_once_exact_with_text_and_html(servers: Servers) -> None:
    plan = Catalog.load([notices.SEED]).plan(notices.PLAN_ID)
    assert plan is not None
    token = uuid.uuid4().hex
    sent = {}
    for case, event in notices.CASES.items():
        [message, *_] = messages_for(event, plan, notices.PORTAL)
        # unique per run: the cases' fixed event ids would give Mailpit the same Message-IDs
        message = dataclasses.replace(
            message,
            notification_id=f"{token}|{message.notification_id}",
            text=f"{message.text}\nMã: {token}-{case}\n",
        )
        sent[f"{token}-{case}"] = message
    sender = mailer(servers)
    for message in sent.values():
        await sender.send(message)

    hits = await found(servers, token, len(sent))
    assert len(hits) == len(sent)  # once each
    for hit in hits:
        full = await mailpit.message(servers.mailpit_api, hit["ID"])
        key = full["Text"].rsplit("Mã: ", 1)[1].strip()
        parsed = email.message_from_bytes(
            await mailpit.raw(servers.mailpit_api, hit["ID"]), policy=policy.default
        )
        assert isinstance(parsed, EmailMessage)
        expected = sent.pop(key)
        assert full["Subject"] == parsed["Subject"] == expected.subject, key
        assert parsed.get_body(("plain",)) is not None and parsed.get_body(("html",)) is not None
        assert "Kính gửi:" in full["HTML"], key
    assert sent == {}
