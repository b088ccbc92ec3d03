"""The office's overdue summary through notify's handler and SMTP pool into the real Mailpit:
one message per office contact and to the leadership (the office's parent unit), exact
Vietnamese, text and HTML, nothing more on redelivery."""

from __future__ import annotations

import dataclasses
import email
import uuid
from email import policy
from email.message import EmailMessage

import pytest

from services.notify.handlers import on_event
from services.notify.mailer import SmtpConfig, SmtpMailer
from tests.conftest import Servers
from tests.support import mailpit, notices
from tests.support.notify import Notifier
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

SENDER = "Hệ thống báo cáo baocao <khong-tra-loi@baocao.example>"
TOLD = {"vanhoa@ngochoi.example", "truongphong.vanhoa@ngochoi.example", "ubnd@ngochoi.example"}
"""The office's two contacts and, the summary being overdue, the leadership's (UBND huyện)."""


async def test_the_summary_reaches_each_office_contact_and_the_leadership_once_in_mailpit(
    servers: Servers,
) -> None:
    token = uuid.uuid4().hex
    sender = SmtpMailer(
        SmtpConfig(host=servers.smtp_host, port=servers.smtp_port, timeout=5), sender=SENDER
    )
    n = Notifier(sender)
    # The run's own portal address: its link in the text is what finds this run's mail.
    n.delivery = dataclasses.replace(n.delivery, portal_url=f"https://bc-{token}.example")
    event = notices.summary(overdue=True).model_copy(update={"event_id": uuid.uuid4()})

    try:
        await on_event(event, delivery=n.delivery)
        await on_event(event, delivery=n.delivery)  # Kafka delivers it again
    finally:
        await sender.close()

    async def arrived() -> list[dict[str, object]]:
        hits = await mailpit.search(servers.mailpit_api, token)
        return hits if len(hits) >= len(TOLD) else []

    hits = await eventually(arrived, what="the summary in Mailpit")
    assert len(hits) == len(TOLD)  # once each, the redelivery sent nothing
    assert n.outcome("sent") == len(TOLD) and n.outcome("duplicate") == len(TOLD)
    announced = n.outbox.events()
    assert {e.payload.recipient for e in announced} == TOLD  # type: ignore[attr-defined]
    recipients = set()
    for hit in hits:
        full = await mailpit.message(servers.mailpit_api, str(hit["ID"]))
        parsed = email.message_from_bytes(
            await mailpit.raw(servers.mailpit_api, str(hit["ID"])), policy=policy.default
        )
        assert isinstance(parsed, EmailMessage)
        subject = "Tổng hợp ngày 18/06/2027: 3/25 đơn vị chưa gửi Báo cáo 6 tháng năm 2027"
        assert full["Subject"] == parsed["Subject"] == subject
        recipients.add(parsed["To"].addresses[0].addr_spec)
        plain = parsed.get_body(("plain",))
        html = parsed.get_body(("html",))
        assert plain is not None and html is not None
        text = plain.get_content()
        assert "1. Phòng Tư pháp: hạn trước ngày 15/06/2027, đã quá hạn" in text
        assert "3. Ủy ban nhân dân xã Đắk Xú: hạn trước ngày 22/06/2027" in text
        assert "Ủy ban nhân dân xã Đắk Xú" in full["HTML"]
    assert recipients == TOLD
