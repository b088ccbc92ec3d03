"""Alerts fire and reach someone: three conditions forced on the real stack, end to end.

The services run as processes (a namespace of their own), watched by a Prometheus and an
Alertmanager of the test's own, configured from deploy/prometheus/ with only the timings
shortened (scrape and evaluation every second, rule ``for:`` divided by 60, expressions as
they are). Alertmanager mails through the stack's Mailpit to an address of this run's own.

1. A poison record (garbage on a topic three services consume) -> BaocaoDeadLetters.
2. A period that locks within 24 hours with every unit missing (the services' clock starts
   12 hours before the lock of the quarterly plan's Q2 2027) -> BaocaoPeriodClosingWithUnitsMissing.
3. notify stopped while reports arrive -> BaocaoServiceDown; then back behind a slow mail
   server while they keep arriving -> BaocaoConsumerLagGrowing.

Each is seen firing in Prometheus's API and mailed, then resolved (the dead letters discarded
by an admin, the units' reports filed, notify back, the mail server at full speed again) and
mailed as such. Every mail, firing and resolved, is read: its state, both summaries (Vietnamese
and English, as the rule words them) and the link to the alert's runbook section.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from contracts.plan import Plan
from deploy.local import stack
from services.common.auth import Role
from services.common.periods import periods_around
from services.common.reference import load_plan
from tests.conftest import Servers
from tests.e2e.conftest import SECOND_PLAN, System
from tests.e2e.flow import report_body
from tests.support import mailpit
from tests.support.auth import bearer
from tests.support.monitoring import SCRAPE_SECONDS, Monitoring
from tests.support.smtp_relay import SlowSmtpRelay
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
log = logging.getLogger(__name__)

DEAD_LETTERS = "BaocaoDeadLetters"
PERIOD = "BaocaoPeriodClosingWithUnitsMissing"
LAG = "BaocaoConsumerLagGrowing"
DOWN = "BaocaoServiceDown"
MEASURED_EVERY = 5.0
"""The services measure lag and waiting dead letters every 5 s (services.common.consumer)."""
SLOW_MAIL_SECONDS = 1.0
"""Per SMTP command: a message takes about four times that."""


def q2_lock(plan: Plan) -> dt.datetime:
    """When the plan's Q2 2027 period locks (its first lock after 1 July 2027)."""
    after = dt.datetime(2027, 7, 1, tzinfo=dt.UTC)
    return min(p.closes_at for p in periods_around(plan, after) if p.closes_at > after)


def q2_period_id(plan: Plan) -> str:
    lock = q2_lock(plan)
    after = dt.datetime(2027, 7, 1, tzinfo=dt.UTC)
    return next(p.id for p in periods_around(plan, after) if p.closes_at == lock)


@pytest.fixture
async def relay(servers: Servers) -> AsyncIterator[SlowSmtpRelay]:
    relay = SlowSmtpRelay(servers.smtp_host, servers.smtp_port)
    await relay.start()
    yield relay
    await relay.stop()


@pytest.fixture
async def watched(
    servers: Servers, relay: SlowSmtpRelay, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[System, Monitoring]]:
    plan = load_plan(SECOND_PLAN)
    clock_start = (q2_lock(plan) - dt.timedelta(hours=12)).isoformat()
    tmp = tmp_path_factory.mktemp("alerts")
    namespace = "e2e" + uuid.uuid4().hex[:10]
    system = System(servers, namespace, [SECOND_PLAN], clock_start, tmp / namespace)
    # notify mails through the relay, so that the test can slow the mail server down.
    system.launch("submissions")
    system.launch("deadlines")
    system.launch("consolidate")
    system.launch("notify", BAOCAO_SMTP_HOST="127.0.0.1", BAOCAO_SMTP_PORT=str(relay.port))
    for service in system.processes:
        await asyncio.to_thread(system.wait_ready, service, 120.0)
    monitoring = Monitoring(
        work=tmp / "monitoring",
        targets=system.ports,
        smarthost=f"{servers.smtp_host}:{servers.smtp_port}",
        operators=f"{system.namespace}@van-hanh.example",
        office=f"{system.namespace}@tong-hop.example",
    )
    try:
        await asyncio.to_thread(monitoring.start)
        yield system, monitoring
    finally:
        monitoring.stop()
        system.stop()


async def alert_mail(
    system: System,
    monitoring: Monitoring,
    status: str,
    alertname: str,
    service: str,
    since: dt.datetime,
) -> dict[str, Any]:
    """The mail Alertmanager sent about ``alertname`` of ``service`` (FIRING or RESOLVED)
    after ``since`` (a mail about an earlier state of the same alert does not count)."""
    prefix = f"[baocao] {status} {alertname} · {service} "

    async def found() -> dict[str, Any] | None:
        messages = await mailpit.search(
            system.servers.mailpit_api, f"to:{monitoring.operators} subject:{alertname}"
        )
        return next(
            (
                m
                for m in messages
                if m["Subject"].startswith(prefix)
                and dt.datetime.fromisoformat(m["Created"]) >= since
            ),
            None,
        )

    return await eventually(found, timeout=60, interval=0.5, what=f"mail {prefix!r}")


def summary_line(template: str) -> re.Pattern[str]:
    """A whole line of the mail as the rule's summary template renders it, whatever the values
    put in for its ``{{ ... }}``."""
    parts = re.split(r"\{\{.*?\}\}", template)
    return re.compile("^" + ".+?".join(re.escape(part) for part in parts) + "$", re.MULTILINE)


async def read_mail(
    system: System, monitoring: Monitoring, mail: dict[str, Any], status: str, alertname: str
) -> None:
    """The mail says the alert's state, both of its summaries and where its runbook is."""
    text = str((await mailpit.message(system.servers.mailpit_api, mail["ID"]))["Text"])
    text = text.replace("\r\n", "\n")  # a mail's lines end in CRLF
    state = "ĐANG XẢY RA / FIRING" if status == "FIRING" else "ĐÃ HẾT / RESOLVED"
    assert f"{state}: {alertname} (" in text, text
    annotations = ANNOTATIONS[alertname]
    for language in ("summary_vi", "summary"):
        assert summary_line(annotations[language]).search(text), (language, text)
    # An absolute link that leads to the alert's own section of the runbook.
    # (one line per alert the mail groups: all of them of this alert, so one link)
    link = f"{monitoring.runbook_base}/{annotations['runbook_url']}"
    assert set(re.findall(r"^Hướng dẫn xử lý / runbook: (\S+)$", text, re.MULTILINE)) == {link}
    target = urllib.parse.urlsplit(link)
    assert target.fragment == alertname.lower()
    assert alertname in sections(target.path), (target.path, alertname)


def sections(path: str) -> list[str]:
    """The headings of the Markdown file at ``path`` (a file: URL's path) that name an alert."""
    text = Path(urllib.request.url2pathname(path)).read_text(encoding="utf-8")
    return re.findall(r"^## (Baocao\S+)$", text, re.MULTILINE)


ANNOTATIONS = {
    rule["alert"]: rule["annotations"]
    for group in yaml.safe_load((stack.PROMETHEUS_DIR / "alerts.yml").read_text("utf-8"))["groups"]
    for rule in group["rules"]
}


async def firing(monitoring: Monitoring, alertname: str, timeout: float, **labels: str) -> float:
    """Seconds until Prometheus's API shows the alert firing with those labels."""
    started = time.monotonic()

    async def fires() -> list[dict[str, Any]] | None:
        alerts = await monitoring.alerts(alertname)
        return [a for a in alerts if labels.items() <= a["labels"].items()] or None

    try:
        await eventually(fires, timeout=timeout, interval=0.5, what=f"{alertname} {labels}")
    except AssertionError as error:
        expr = EXPLAIN[alertname]
        raise AssertionError(f"{error}\n{expr} = {await monitoring.query(expr)}") from None
    return time.monotonic() - started


EXPLAIN = {
    DEAD_LETTERS: "baocao_dead_letters_waiting",
    PERIOD: "baocao_period_units_missing / baocao_period_units_expected",
    LAG: "baocao_consumer_lag",
    DOWN: 'up{job="baocao"}',
}
"""What to show when an alert did not fire: the series its rule reads."""


async def resolved(monitoring: Monitoring, alertname: str, timeout: float, **labels: str) -> None:
    async def gone() -> bool:
        alerts = await monitoring.alerts(alertname) + await monitoring.alerts(alertname, "pending")
        return not [a for a in alerts if labels.items() <= a["labels"].items()]

    await eventually(gone, timeout=timeout, interval=0.5, what=f"{alertname} {labels} resolved")


def budget(monitoring: Monitoring, alertname: str, *, measured: float = 0.0) -> float:
    """The rule's (shortened) for: plus two scrape intervals, plus how stale the service's
    own measurement may be, plus ten evaluations of slack for a busy machine."""
    return monitoring.rule_for(alertname) + 2 * SCRAPE_SECONDS + measured + 10 * SCRAPE_SECONDS


async def file(system: System, plan: Plan, period_id: str, unit_id: str) -> None:
    async with httpx.AsyncClient(base_url=system.url("submissions"), timeout=60) as client:
        response = await client.post(
            "/api/v1/submissions",
            json=report_body(plan, period_id, unit_id),
            headers=bearer(Role.OFFICER, unit_id),
        )
    assert response.status_code == 201, response.text


async def poison(system: System) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=system.servers.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            system.topic("baocao.submission-received.v1"), b"\x00not an event{", key=b"poison"
        )
    finally:
        await producer.stop()


async def discard_dead_letters(system: System, service: str) -> int:
    async with httpx.AsyncClient(
        base_url=system.url(service), timeout=30, headers=bearer(Role.ADMIN)
    ) as client:
        letters = (await client.get("/api/v1/dead-letters")).json()
        for letter in letters:
            letter_id = urllib.parse.quote(letter["_id"], safe="")
            response = await client.post(
                f"/api/v1/dead-letters/{letter_id}/discard",
                json={"reason": "rác do bài kiểm thử ghi vào, không phải sự kiện"},
            )
            assert response.status_code == 200, response.text
    return len(letters)


async def test_three_forced_conditions_fire_reach_the_operators_and_resolve(
    watched: tuple[System, Monitoring], relay: SlowSmtpRelay
) -> None:
    system, monitoring = watched
    plan = load_plan(SECOND_PLAN)
    period_id = q2_period_id(plan)
    units = [u.id for u in plan.reporting_units()]

    try:
        await eventually(lambda: _all_up(monitoring), timeout=30, what="every target up")
    except AssertionError as error:
        raise AssertionError(f"{error}: {await monitoring.targets_up()}") from None

    # 1 and 2: garbage on a topic; a period 12 h from its lock with all of its units missing.
    forced = now()
    await poison(system)
    waited = await firing(
        monitoring,
        DEAD_LETTERS,
        budget(monitoring, DEAD_LETTERS, measured=MEASURED_EVERY),
        service="notify",
    )
    log.info("%s firing after %.1f s", DEAD_LETTERS, waited)
    waited = await firing(
        monitoring, PERIOD, budget(monitoring, PERIOD, measured=1.0), period=period_id
    )
    log.info("%s firing after %.1f s", PERIOD, waited)
    for alertname, service in ((DEAD_LETTERS, "notify"), (PERIOD, "deadlines")):
        mail = await alert_mail(system, monitoring, "FIRING", alertname, service, forced)
        log.info("mail: %s", mail["Subject"])
        await read_mail(system, monitoring, mail, "FIRING", alertname)
    # The period's alert is the office's (audience="office"): the same mail reaches it too.
    mail = await alert_mail(system, monitoring, "FIRING", PERIOD, "deadlines", forced)
    addressed = (await mailpit.message(system.servers.mailpit_api, mail["ID"]))["To"]
    assert {a["Address"] for a in addressed} == {monitoring.office, monitoring.operators}

    # 3: notify stopped while reports arrive (every unit but one files: the period resolves)...
    stopped = now()
    system.halt("notify")
    for unit_id in units[:-1]:
        await file(system, plan, period_id, unit_id)
    waited = await firing(monitoring, DOWN, budget(monitoring, DOWN), service="notify")
    log.info("%s firing after %.1f s", DOWN, waited)
    mail = await alert_mail(system, monitoring, "FIRING", DOWN, "notify", stopped)
    log.info("mail: %s", mail["Subject"])
    await read_mail(system, monitoring, mail, "FIRING", DOWN)
    # ...then back, behind a mail server slower than the reports keep coming.
    relay.delay = SLOW_MAIL_SECONDS
    behind = now()
    system.launch("notify", BAOCAO_SMTP_HOST="127.0.0.1", BAOCAO_SMTP_PORT=str(relay.port))
    await asyncio.to_thread(system.wait_ready, "notify", 120.0)
    keep_filing = asyncio.create_task(_file_again_and_again(system, plan, period_id, units))
    try:
        waited = await firing(
            monitoring, LAG, budget(monitoring, LAG, measured=MEASURED_EVERY) + 30, service="notify"
        )
        log.info("%s firing after %.1f s", LAG, waited)
        mail = await alert_mail(system, monitoring, "FIRING", LAG, "notify", behind)
        log.info("mail: %s", mail["Subject"])
        await read_mail(system, monitoring, mail, "FIRING", LAG)
    finally:
        keep_filing.cancel()
        await asyncio.gather(keep_filing, return_exceptions=True)

    # Resolve all three: the mail server at full speed, the dead letters discarded.
    relay.delay = 0.0
    dealt_with = now()
    for service in ("deadlines", "notify", "consolidate"):
        await discard_dead_letters(system, service)
    await resolved(monitoring, PERIOD, 60, period=period_id)
    await resolved(monitoring, DEAD_LETTERS, 60)
    await resolved(monitoring, LAG, 180, service="notify")
    # The period resolved as the reports came in, notify's outage when it was back; the other
    # two once dealt with.
    for alertname, service, since in (
        (DEAD_LETTERS, "notify", dealt_with),
        (PERIOD, "deadlines", forced),
        (DOWN, "notify", behind),
        (LAG, "notify", dealt_with),
    ):
        mail = await alert_mail(system, monitoring, "RESOLVED", alertname, service, since)
        log.info("mail: %s", mail["Subject"])
        await read_mail(system, monitoring, mail, "RESOLVED", alertname)


def now() -> dt.datetime:
    # Mailpit stamps mail to the millisecond; a second's margin for clocks rounding apart.
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)


async def _all_up(monitoring: Monitoring) -> dict[str, str] | None:
    targets = await monitoring.targets_up()
    return targets if len(targets) == 4 and set(targets.values()) == {"up"} else None


async def _file_again_and_again(
    system: System, plan: Plan, period_id: str, units: list[str]
) -> None:
    """Corrections from every unit, one after another until cancelled: faster than the slow
    mail server, well within what the other consumers handle."""
    n = 0
    while True:
        await file(system, plan, period_id, units[n % len(units)])
        n += 1
