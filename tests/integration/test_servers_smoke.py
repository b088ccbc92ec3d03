"""The servers are real: each answers its own protocol the way production clients use it."""

from __future__ import annotations

import email.header
import uuid
from email.message import EmailMessage

import aiosmtplib
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from tests.conftest import Servers
from tests.support import mailpit
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_kafka_round_trip_through_a_consumer_group(servers: Servers) -> None:
    topic, group = f"smoke-{uuid.uuid4().hex}", f"smoke-{uuid.uuid4().hex}"
    producer = AIOKafkaProducer(
        bootstrap_servers=servers.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        sent = [f"tin nhắn {i} – Ngọc Hồi".encode() for i in range(5)]
        for value in sent:
            await producer.send_and_wait(topic, value, key=b"unit-1")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=servers.kafka_bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        received: list[bytes] = []

        async def all_received() -> bool:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                received.extend(r.value for r in records)
            return len(received) >= len(sent)

        await eventually(all_received, what="the five messages")
        await consumer.commit()
        committed = [await consumer.committed(tp) for tp in consumer.assignment()]
    finally:
        await consumer.stop()
    assert received == sent  # one key, one partition: order kept
    assert sum(c or 0 for c in committed) == len(sent)


async def test_mongodb_unique_index_and_upsert(servers: Servers) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(servers.mongo_uri)
    db = client[f"smoke_{uuid.uuid4().hex}"]
    try:
        units = db["units"]
        await units.create_index("code", unique=True)
        await units.insert_one({"code": "xa-bo-y", "name": "UBND xã Bờ Y"})
        with pytest.raises(DuplicateKeyError):
            await units.insert_one({"code": "xa-bo-y", "name": "bản sao"})

        for _ in range(2):
            await units.update_one(
                {"code": "xa-sa-loong"},
                {"$setOnInsert": {"name": "UBND xã Sa Loong"}, "$inc": {"seen": 1}},
                upsert=True,
            )
        doc = await units.find_one({"code": "xa-sa-loong"})
        assert doc is not None
        assert (doc["name"], doc["seen"]) == ("UBND xã Sa Loong", 2)
        assert await units.count_documents({}) == 2
    finally:
        await client.drop_database(db.name)
        await client.close()


async def test_vietnamese_mail_is_delivered_and_decoded(servers: Servers) -> None:
    token = uuid.uuid4().hex
    subject = f"Báo cáo 6 tháng năm 2027 – Đắk Xú {token}"
    message = EmailMessage()
    message["From"] = "baocao@baocao.example"
    message["To"] = "vanhoa@ngochoi.example"
    message["Subject"] = subject
    message.set_content("Kính gửi: Phòng Văn hóa và Thông tin.\nĐã tiếp nhận báo cáo.")
    raw_subject_header = message.as_bytes().split(b"Subject: ")[1].split(b"\n")[0]
    assert raw_subject_header.startswith(b"=?utf-8?")  # RFC 2047 on the wire

    await aiosmtplib.send(message, hostname=servers.smtp_host, port=servers.smtp_port)

    found = await eventually(
        lambda: mailpit.search(servers.mailpit_api, token), what="the message in Mailpit"
    )
    assert len(found) == 1
    assert found[0]["Subject"] == subject
    full = await mailpit.message(servers.mailpit_api, found[0]["ID"])
    assert "Phòng Văn hóa và Thông tin" in full["Text"]
    assert str(email.header.make_header(email.header.decode_header(subject))) == subject
