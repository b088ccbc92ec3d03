"""What notify puts on the wire: headers that Python's strict parser decodes exactly, whatever
the subject's length and wherever the fold lands, and a text + HTML body."""

from __future__ import annotations

import datetime as dt
import email
import re
import unicodedata
import uuid
from email import policy
from email.message import EmailMessage

import pytest

from contracts.events import DeadlineOverdue, DeadlineOverduePayload
from services.notify.domain import Outgoing
from services.notify.mailer import message_id, wire_message

pytestmark = pytest.mark.unit

SENDER = "Hệ thống báo cáo baocao <khong-tra-loi@baocao.example>"
DUE_AT = dt.datetime(2027, 6, 14, 17, 0, tzinfo=dt.UTC)
SAMPLE = (
    "Đã tiếp nhận Báo cáo năm 2026 – Ủy ban nhân dân xã Bờ Y; Nhắc hạn: Báo cáo quý I năm 2027 "
    "– còn 3 ngày; Trả lại để chỉnh sửa: Báo cáo 6 tháng năm 2027 (bổ sung lần 2) – Phòng Văn "
    "hóa và Thông tin huyện Ngọc Hồi, tỉnh Kon Tum; Ủy ban nhân dân xã Đắk Xú ươ ỡ ự ặ ẫ"
)


def outgoing(subject: str, *, name: str = "Nguyễn Văn Đức", text: str = "") -> Outgoing:
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
        notification_id=f"{cause.event_id}|overdue|email|xadakxu@ngochoi.example",
        channel="email",
        template="overdue",
        recipient="xadakxu@ngochoi.example",
        recipient_name=name,
        subject=subject,
        text=text or "Kính gửi: Ủy ban nhân dân xã Đắk Xú,\n\nXem tại http://portal.example/a\n",
        unit_id="xa-dak-xu",
        plan_id="kh-nq35-ngoc-hoi",
        period_id="kh-nq35-ngoc-hoi.2027.6-thang",
        cause=cause,
        reply_to="vanhoa@ngochoi.example",
        reply_to_name="Phòng Văn hóa và Thông tin",
    )


def parsed(message: Outgoing) -> tuple[bytes, EmailMessage]:
    raw = wire_message(message, SENDER)
    decoded = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(decoded, EmailMessage)
    return raw, decoded


def subjects() -> list[str]:
    """Every length from 20 to 200, each cut of the sample at several offsets, so that a
    space, a diacritic and a multi-byte character each land on every folding position."""
    cases = []
    for length in range(20, 201):
        for offset in (0, 1, 2, 3):
            cut = " ".join(SAMPLE[offset : offset + length].split())
            if len(cut) >= 20:
                cases.append(cut)
    return cases


def test_every_subject_from_20_to_200_characters_decodes_exactly() -> None:
    wrong = []
    for subject in subjects():
        raw, decoded = parsed(outgoing(subject))
        if decoded["Subject"] != subject:
            wrong.append((subject, decoded["Subject"]))
        headers = raw.split(b"\r\n\r\n", 1)[0]
        assert all(len(line) <= 78 for line in headers.split(b"\r\n")), subject
        # RFC 2047: an encoded word is at most 75 characters
        words = re.findall(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=", headers)
        assert words and all(len(w) <= 75 for w in words)
    assert wrong == []


def test_the_receipt_subject_of_the_issue_keeps_its_space() -> None:
    subject = "Đã tiếp nhận Báo cáo năm 2026 – Ủy ban nhân dân xã Bờ Y"

    _, decoded = parsed(outgoing(subject))

    assert decoded["Subject"] == subject
    assert unicodedata.is_normalized("NFC", decoded["Subject"])


@pytest.mark.parametrize(
    "name",
    [
        "Nguyễn Văn Đức",
        "Ủy ban nhân dân xã Bờ Y – Văn phòng, bộ phận một cửa (tiếp nhận hồ sơ) và lưu trữ",
        "A Khánh",
    ],
)
def test_display_names_decode_exactly(name: str) -> None:
    _, decoded = parsed(outgoing("Nhắc hạn", name=name))

    [to] = decoded["To"].addresses
    [sender] = decoded["From"].addresses
    [reply] = decoded["Reply-To"].addresses
    assert (to.display_name, to.addr_spec) == (name, "xadakxu@ngochoi.example")
    assert (sender.display_name, sender.addr_spec) == (
        "Hệ thống báo cáo baocao",
        "khong-tra-loi@baocao.example",
    )
    assert (reply.display_name, reply.addr_spec) == (
        "Phòng Văn hóa và Thông tin",
        "vanhoa@ngochoi.example",
    )


def test_the_message_carries_date_a_stable_id_and_says_it_is_automatic() -> None:
    message = outgoing("Quá hạn: Báo cáo 6 tháng năm 2027")

    _, first = parsed(message)
    _, again = parsed(message)

    assert first["Message-ID"] == again["Message-ID"] == message_id(message.notification_id)
    assert first["Auto-Submitted"] == "auto-generated"
    assert first["Date"].datetime.tzinfo is not None


def test_the_body_is_text_and_html_from_the_same_rendering() -> None:
    text = (
        "Kính gửi: Ủy ban nhân dân xã Đắk Xú,\n\n"
        "  Hạn báo cáo: trước ngày 15/06/2027\n  Gửi về: Phòng <Văn hóa> & Thông tin\n\n"
        "Trang báo cáo của đơn vị: http://portal.example/periods/p/report\n"
    )

    _, decoded = parsed(outgoing("Nhắc hạn", text=text))

    assert decoded.get_content_type() == "multipart/alternative"
    plain = decoded.get_body(("plain",))
    html = decoded.get_body(("html",))
    assert plain is not None and html is not None
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    assert plain.get_content().replace("\r\n", "\n") == text
    markup = html.get_content()
    assert "Kính gửi: Ủy ban nhân dân xã Đắk Xú," in markup
    assert "Phòng &lt;Văn hóa&gt; &amp; Thông tin" in markup  # escaped, never markup
    assert '<a href="http://portal.example/periods/p/report"' in markup
    assert "<style" not in markup and "<link" not in markup  # inline CSS only
    assert 'style="' in markup
