"""P9: e-mails/s through notify's mail path against two baselines in the same process.

baocao: ``SmtpMailer`` as the service builds it (pool of 4 reused sessions, 100 messages a
session), each message built from an ``Outgoing`` (text + HTML, headers folded for strict
decoders) and sent concurrently, the pool bounding how many at once.
Baselines, with the same messages already serialised: ``aiosmtplib.send`` opening a new
connection per message, and a raw loop over one reused ``aiosmtplib.SMTP`` connection.

Twice: over plain SMTP, and with STARTTLS, where each new connection also costs a TLS
handshake (RSA 2048, certificate checked against the self-signed pair), as against a real
mail server. Both go to a Mailpit of the benchmark's own (``private_mailpit``), so that
10,000 mails do not push out of the shared Mailpit the mail a test run is waiting for.
The ledger (MongoDB) is not in this path: see P6 for the whole service.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib

from bench.context import Run
from bench.harness import Row, Spread, log, ratio_text, times_text
from contracts.events import DeadlineOverdue, DeadlineOverduePayload
from services.notify.domain import Outgoing
from services.notify.mailer import SmtpConfig, SmtpMailer, wire_message
from tests.support.private_mailpit import PrivateMailpit, private_mailpit

ID = "P9"
GOAL_SHARE = 0.70
GOAL_OVER_RECONNECT_TLS = 5.0
WARM_UP = 200
RECONNECT_SAMPLE = 500
"""The new-connection-per-message baseline sends the first 500 messages only: its rate is the
same per message from the first to the last, and with STARTTLS on this machine (7 mails/s)
the whole 10,000 would take 20 minutes a repetition."""
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
    # Room for one repetition of the three paths; the mail is deleted after each.
    keep = 3 * count + WARM_UP + 100
    with private_mailpit(
        run.servers.layout.bin_dir, keep=keep, log_dir=run.log_root / "p9"
    ) as mailpit:
        return [
            await _measure(run, mailpit, count, starttls=False),
            await _measure(run, mailpit, count, starttls=True),
        ]


@dataclass(frozen=True)
class _Paths:
    """The three ways of sending the same messages to one server."""

    host: str
    port: int
    starttls: bool
    cert: Path
    address: str
    sender: str

    def config(self) -> SmtpConfig:
        return SmtpConfig(
            host=self.host,
            port=self.port,
            starttls=self.starttls,
            cert_bundle=str(self.cert),
            timeout=20,
        )

    async def pool(self, messages: list[Outgoing]) -> float:
        """notify's path: built from an Outgoing, sent concurrently through the pool as the
        service configures it by default (4 sessions, 100 messages each)."""
        mailer = SmtpMailer(self.config(), sender=self.sender)
        began = time.perf_counter()
        await asyncio.gather(*(mailer.send(m) for m in messages))
        rate = len(messages) / (time.perf_counter() - began)
        await mailer.close()
        return rate

    async def reconnect_each(self, messages: list[Outgoing], raws: list[bytes]) -> float:
        began = time.perf_counter()
        for m, raw in zip(messages, raws, strict=True):
            await aiosmtplib.send(
                raw,
                sender=self.address,
                recipients=[m.recipient],
                hostname=self.host,
                port=self.port,
                # explicit: aiosmtplib upgrades on its own when the server offers STARTTLS
                start_tls=self.starttls,
                cert_bundle=str(self.cert),
            )
        return len(messages) / (time.perf_counter() - began)

    async def one_connection(self, messages: list[Outgoing], raws: list[bytes]) -> float:
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=20,
            start_tls=self.starttls,
            cert_bundle=str(self.cert),
        )
        await client.connect()
        began = time.perf_counter()
        for m, raw in zip(messages, raws, strict=True):
            await client.sendmail(self.address, [m.recipient], raw)
        rate = len(messages) / (time.perf_counter() - began)
        await client.quit()
        return rate


async def _measure(run: Run, mailpit: PrivateMailpit, count: int, *, starttls: bool) -> Row:
    mode = "STARTTLS" if starttls else "plain SMTP"
    address = f"{run.namespace}@baocao.example"
    paths = _Paths(
        "127.0.0.1",
        mailpit.smtp_port,
        starttls,
        mailpit.cert,
        address,
        f"Hệ thống báo cáo <{address}>",
    )
    messages = _messages(count, f"{run.namespace}-{'tls' if starttls else 'plain'}")
    raws = [wire_message(m, paths.sender) for m in messages]

    pooled, reconnecting, reused = [], [], []
    log(f"P9 ({mode}): warming up")
    await paths.one_connection(messages[:WARM_UP], raws[:WARM_UP])
    await asyncio.to_thread(mailpit.delete_all)
    for rep in range(run.bounds.repetitions):
        pooled.append(await paths.pool(messages))
        sample = slice(0, RECONNECT_SAMPLE)
        reconnecting.append(await paths.reconnect_each(messages[sample], raws[sample]))
        reused.append(await paths.one_connection(messages, raws))
        log(
            f"P9 ({mode}): repetition {rep + 1}: pool {pooled[-1]:.0f}/s, new connection "
            f"each {reconnecting[-1]:.0f}/s, one reused connection {reused[-1]:.0f}/s"
        )
        await asyncio.to_thread(mailpit.delete_all)

    p, r, u = Spread.of(pooled), Spread.of(reconnecting), Spread.of(reused)
    share, over_reconnect = Spread.paired(pooled, reused), Spread.paired(pooled, reconnecting)
    goal = f"≥ {GOAL_SHARE:.0%} of one reused connection"
    met = share.median >= GOAL_SHARE
    if starttls:
        goal += f"; ≥ {GOAL_OVER_RECONNECT_TLS:.0f}× new connection each"
        met = met and over_reconnect.median >= GOAL_OVER_RECONNECT_TLS
    log(
        f"P9 ({mode}): pool {p.median:.0f} mails/s = {share.median:.0%} of one reused "
        f"connection, {over_reconnect.median:.1f}× a new connection per message"
    )
    return Row(
        ID,
        f"{count} e-mails through notify's SMTP pool → Mailpit ({mode})",
        p.text("mails/s", 0),
        f"{u.text('mails/s', 0)} one reused connection; {r.text('mails/s', 0)} new connection each",
        f"{ratio_text(share)}; {times_text(over_reconnect, 1)} reconnect",
        goal,
        met,
        {
            "starttls": starttls,
            "pool_rates": pooled,
            "reconnect_rates": reconnecting,
            "reused_rates": reused,
            "over_reconnect": over_reconnect.samples,
            "reconnect_sample": min(count, RECONNECT_SAMPLE),
        },
    )
