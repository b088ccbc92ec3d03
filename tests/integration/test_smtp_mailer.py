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
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.events import DeadlineOverdue, DeadlineOverduePayload
from deploy.local import stack
from services.common.reference import Catalog
from services.notify.domain import Outgoing, messages_for
from services.notify.mailer import SendFailed, SmtpConfig, SmtpMailer
from tests.conftest import Servers
from tests.support import mailpit, notices
from tests.support.private_mailpit import private_mailpit
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
    tmp_path: Path,
) -> None:
    """Every length from 20 to 200, each cut of the sample at four offsets (the cases of
    tests/unit/test_notify_wire.py), so that a multi-byte character falls on every place an
    encoded word may end: Mailpit's decoding and Python's strict parser of the raw message
    both give the subject sent (see ``_everything``). 724 mails: a Mailpit of the test's own,
    which prunes none."""
    subjects = {}
    for length in range(20, 201):
        for offset in (0, 1, 2, 3):
            subject = " ".join(SAMPLE[offset : offset + length].split())
            subjects[f"{length}-{offset}"] = subject
    with private_mailpit(
        stack.Layout().bin_dir, keep=len(subjects) + 10, log_dir=tmp_path
    ) as server:
        sender = SmtpMailer(
            SmtpConfig(host="127.0.0.1", port=server.smtp_port, timeout=10),
            sender=SENDER,
            pool_size=4,
        )
        await asyncio.gather(
            *(
                sender.send(
                    dataclasses.replace(
                        outgoing(key),
                        subject=subject,
                        text=f"Mã: {key}\n",
                        recipient=f"{key}@thu.example",
                    )
                )
                for key, subject in subjects.items()
            )
        )
        await sender.close()
        received = await _everything(server.api, len(subjects))

    wrong = [
        (key, subject, received.get(key))
        for key, subject in subjects.items()
        if received.get(key, ("", "", None))[:2] != (subject, subject)
    ]
    assert wrong == []
    _, _, parsed = received["24-0"]
    assert parsed is not None and parsed.get_body(("html",)) is not None
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Reply-To"].addresses[0].display_name == "Phòng Văn hóa và Thông tin"


async def _everything(api: str, count: int) -> dict[str, tuple[str, str, EmailMessage | None]]:
    """Each message by the key in its address: (Mailpit's subject, Python's subject, parsed).

    Mailpit's subject for every message (its listing); Python's strict parse of the raw
    message as Mailpit received it for one length in eight (all four offsets): the same
    bytes are parsed for every case by tests/unit/test_notify_wire.py, and 724 raw downloads
    would cost this test half a minute."""

    async def listed() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=api, timeout=30) as client:
            response = await client.get("/api/v1/messages", params={"limit": count + 10})
            response.raise_for_status()
            found = list(response.json()["messages"])
        return found if len(found) >= count else []

    slots = asyncio.Semaphore(8)

    async def read(hit: dict[str, Any]) -> tuple[str, tuple[str, str, EmailMessage | None]]:
        key = str(hit["To"][0]["Address"]).removesuffix("@thu.example")
        if int(key.split("-")[0]) % 8:
            return key, (hit["Subject"], hit["Subject"], None)
        async with slots:
            raw = await mailpit.raw(api, hit["ID"])
        parsed = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        text = parsed.get_body(("plain",))
        assert text is not None
        assert text.get_content().strip().removeprefix("Mã: ") == key
        return key, (hit["Subject"], parsed["Subject"], parsed)

    hits = await eventually(listed, what=f"{count} messages in the private Mailpit")
    return dict(await asyncio.gather(*(read(hit) for hit in hits)))


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
