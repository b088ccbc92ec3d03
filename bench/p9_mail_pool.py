"""P9: e-mails/s through notify's mail path against two baselines in the same process.

baocao: ``SmtpMailer`` as the service builds it (pool of 4 reused sessions, 100 messages a
session), each message built from an ``Outgoing`` (text + HTML, headers folded for strict
decoders) and sent concurrently, the pool bounding how many at once.
Baselines, with the same messages already serialised: ``aiosmtplib.send`` opening a new
connection per message, and a raw loop over one reused ``aiosmtplib.SMTP`` connection.
Plain SMTP to Mailpit only; the STARTTLS run (where reconnecting costs a TLS handshake) is not
built yet. The ledger (MongoDB) is not in this path: see P6 for the whole service.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

import aiosmtplib
import httpx

from bench.context import Run
from bench.harness import Row, Spread, log, ratio_text
from contracts.events import DeadlineOverdue, DeadlineOverduePayload
from services.notify.domain import Outgoing
from services.notify.mailer import SmtpConfig, SmtpMailer, wire_message

ID = "P9"
GOAL_SHARE = 0.70
DUE_AT = dt.datetime(2027, 6, 14, 17, 0, tzinfo=dt.UTC)


def _messages(count: int, tag: str) -> list[Outgoing]:
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
    text = (
        "Kính gửi: Ủy ban nhân dân xã Đắk Xú,\n\nĐã quá hạn báo cáo (trước ngày 15/06/2027) "
        "nhưng hệ thống chưa nhận được Báo cáo 6 tháng năm 2027 của đơn vị.\n\n"
        "Trang báo cáo của đơn vị: http://127.0.0.1:8000/periods/p/report\n"
    )
    return [
        Outgoing(
            notification_id=f"{cause.event_id}|overdue|email|{tag}-{i}@ngochoi.example",
            channel="email",
            template="overdue",
            recipient=f"{tag}-{i}@ngochoi.example",
            recipient_name="Ủy ban nhân dân xã Đắk Xú",
            subject="Quá hạn: Báo cáo 6 tháng năm 2027 – Ủy ban nhân dân xã Đắk Xú",
            text=text,
            unit_id="xa-dak-xu",
            plan_id="kh-nq35-ngoc-hoi",
            period_id="kh-nq35-ngoc-hoi.2027.6-thang",
            cause=cause,
            reply_to="vanhoa@ngochoi.example",
            reply_to_name="Phòng Văn hóa và Thông tin",
        )
        for i in range(count)
    ]


async def run(run: Run) -> list[Row]:
    count = run.bounds.p9_mails
    host, port = "127.0.0.1", run.servers.layout.smtp_port
    address = f"{run.namespace}@baocao.example"
    sender = f"Hệ thống báo cáo <{address}>"
    messages = _messages(count, run.namespace)
    raws = [wire_message(m, sender) for m in messages]

    async def pool() -> float:
        mailer = SmtpMailer(SmtpConfig(host=host, port=port, timeout=20), sender=sender)
        began = time.perf_counter()
        await asyncio.gather(*(mailer.send(m) for m in messages))
        rate = count / (time.perf_counter() - began)
        await mailer.close()
        return rate

    async def reconnect_each() -> float:
        began = time.perf_counter()
        for m, raw in zip(messages, raws, strict=True):
            await aiosmtplib.send(
                raw, sender=address, recipients=[m.recipient], hostname=host, port=port
            )
        return count / (time.perf_counter() - began)

    async def one_connection() -> float:
        client = aiosmtplib.SMTP(hostname=host, port=port, timeout=20)
        await client.connect()
        began = time.perf_counter()
        for m, raw in zip(messages, raws, strict=True):
            await client.sendmail(address, [m.recipient], raw)
        rate = count / (time.perf_counter() - began)
        await client.quit()
        return rate

    pooled, reconnecting, reused = [], [], []
    try:
        log("P9: warming up")
        await one_connection()
        for rep in range(run.bounds.repetitions):
            pooled.append(await pool())
            reconnecting.append(await reconnect_each())
            reused.append(await one_connection())
            log(
                f"P9: repetition {rep + 1}: pool {pooled[-1]:.0f}/s, new connection each "
                f"{reconnecting[-1]:.0f}/s, one reused connection {reused[-1]:.0f}/s"
            )
            await _delete_mail(run.servers.mailpit_api, address)
    finally:
        await _delete_mail(run.servers.mailpit_api, address)

    p, r, u = Spread.of(pooled), Spread.of(reconnecting), Spread.of(reused)
    share = p.median / u.median
    return [
        Row(
            ID,
            f"{count} e-mails through notify's SMTP pool → Mailpit (plain SMTP)",
            p.text("mails/s", 0),
            f"{u.text('mails/s', 0)} one reused connection; {r.text('mails/s', 0)} new "
            "connection each",
            ratio_text(share),
            f"≥ {GOAL_SHARE:.0%} of one reused connection",
            share >= GOAL_SHARE,
            {
                "pool_rates": pooled,
                "reconnect_rates": reconnecting,
                "reused_rates": reused,
                "over_reconnect": p.median / r.median,
            },
        )
    ]


async def _delete_mail(api: str, address: str) -> None:
    """This run's mail only (found by its From address), a page at a time."""
    async with httpx.AsyncClient(base_url=api, timeout=30) as client:
        for _ in range(1_000):
            found = await client.get(
                "/api/v1/search", params={"query": f"from:{address}", "limit": 1000}
            )
            ids = [m["ID"] for m in found.json()["messages"]]
            if not ids:
                return
            await client.request("DELETE", "/api/v1/messages", json={"IDs": ids})
