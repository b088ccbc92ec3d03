"""Metrics operators' alerts read: period coverage, consumer lag, dead letters waiting, HTTP
RED metrics; and the configuration the local stack and the alert test derive from the real files.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import httpx
import pytest
import yaml
from aiokafka.structs import TopicPartition
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from deploy.local import stack
from services.common.lag import partition_lag
from services.common.metrics import CommonMetrics, instrument_http
from services.deadlines.coverage import open_coverage
from services.deadlines.handlers import on_submission_received
from tests.support.events import submission_received
from tests.support.monitoring import shortened_rules
from tests.unit.test_deadlines_handlers import Scanner, the_period

pytestmark = pytest.mark.unit


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


async def test_a_scan_exports_how_many_units_an_open_period_still_misses() -> None:
    period = the_period()
    at = period.due_at - dt.timedelta(hours=6)
    scanner = Scanner(at)
    labels = {"plan": period.plan_id, "period": period.id}
    await scanner()
    expected = sample(scanner.registry, "baocao_period_units_expected", **labels)
    assert expected == len(scanner.plan.reporting_units()) == 2
    assert sample(scanner.registry, "baocao_period_units_missing", **labels) == 2
    assert sample(scanner.registry, "baocao_period_closes_in_seconds", **labels) == (
        (period.closes_at - at).total_seconds()
    )
    unit_id = scanner.plan.reporting_units()[0].id
    await on_submission_received(submission_received(period, unit_id, at), store=scanner.store)
    await scanner()
    assert sample(scanner.registry, "baocao_period_units_missing", **labels) == 1
    assert sample(scanner.registry, "baocao_period_missing_share_alert") == 0.2


async def test_a_period_that_locked_leaves_the_metrics() -> None:
    period = the_period()
    scanner = Scanner(period.due_at)
    await scanner()
    labels = {"plan": period.plan_id, "period": period.id}
    assert sample(scanner.registry, "baocao_period_units_missing", **labels) is not None
    scanner.clock.advance(period.closes_at - period.due_at)
    await scanner()
    assert sample(scanner.registry, "baocao_period_units_missing", **labels) is None


def test_only_open_periods_are_covered() -> None:
    period = the_period()
    plan = Scanner(period.opens_at).plan
    before = open_coverage(plan, [period], {}, period.opens_at - dt.timedelta(seconds=1))
    during = open_coverage(plan, [period], {period.id: {"x"}}, period.opens_at)
    assert before == []
    assert [(c.period_id, c.expected, c.missing) for c in during] == [(period.id, 2, 2)]


class FakeConsumer:
    """What partition_lag reads of an AIOKafkaConsumer."""

    def __init__(self, ends: dict[int, int], committed: dict[int, int | None]) -> None:
        self._ends, self._committed = ends, committed

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("t", p) for p in self._ends}

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._ends[tp.partition] for tp in partitions}

    async def committed(self, tp: TopicPartition) -> int | None:
        return self._committed[tp.partition]

    async def beginning_offsets(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return {tp: 3 for tp in partitions}


async def test_lag_is_the_high_water_mark_less_the_committed_offset() -> None:
    consumer = FakeConsumer({0: 10, 1: 7, 2: 5}, {0: 4, 1: 7, 2: None})
    # partition 2 never committed: everything from its first offset (3) waits
    assert await partition_lag(consumer) == {0: 6, 1: 0, 2: 2}
    assert await partition_lag(FakeConsumer({}, {})) == {}


def test_partitions_given_to_another_process_leave_the_lag_gauge() -> None:
    registry = CollectorRegistry()
    metrics = CommonMetrics(registry, "notify")
    metrics.consumer_lag("baocao.x.v1", {0: 5, 1: 2})
    metrics.consumer_lag("baocao.x.v1", {1: 3})
    labels = {"service": "notify", "topic": "baocao.x.v1"}
    assert sample(registry, "baocao_consumer_lag", partition="0", **labels) is None
    assert sample(registry, "baocao_consumer_lag", partition="1", **labels) == 3


def test_every_consumer_has_dead_letter_series_from_the_start() -> None:
    registry = CollectorRegistry()
    metrics = CommonMetrics(registry, "notify")
    metrics.consuming("receipt")
    labels = {"service": "notify", "consumer": "receipt"}
    assert sample(registry, "baocao_dead_letters_total", **labels) == 0
    assert sample(registry, "baocao_dead_letters_waiting", **labels) == 0
    metrics.dead_letters_waiting({"receipt": 2})
    assert sample(registry, "baocao_dead_letters_waiting", **labels) == 2
    metrics.dead_letters_waiting({})
    assert sample(registry, "baocao_dead_letters_waiting", **labels) == 0


async def test_http_requests_are_counted_by_route_template_method_and_status() -> None:
    registry = CollectorRegistry()
    app = FastAPI()

    @app.get("/units/{unit_id}")
    async def unit(unit_id: str) -> dict[str, str]:
        return {"unit_id": unit_id}

    @app.get("/metrics")
    async def metrics() -> dict[str, str]:
        return {}

    instrument_http(app, registry)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for unit_id in ("a", "b"):
            assert (await client.get(f"/units/{unit_id}")).status_code == 200
        await client.get("/metrics")
        await client.get("/nowhere")
    route = {"handler": "/units/{unit_id}", "method": "GET"}
    assert sample(registry, "http_requests_total", status="200", **route) == 2
    assert sample(registry, "http_request_duration_seconds_count", **route) == 2
    assert (
        sample(registry, "http_requests_total", handler="/metrics", method="GET", status="200")
        is None
    )
    assert sample(registry, "http_requests_total", handler="none", method="GET", status="404") == 1


STACK_PORT_VARIABLES = (
    *(f"BAOCAO_{s.upper()}_PORT" for s in stack.SERVICES),
    "BAOCAO_FERRETDB_DEBUG_PORT",
    "BAOCAO_PROMETHEUS_PORT",
    "BAOCAO_ALERTMANAGER_PORT",
)


def scrape_targets(config: dict[str, Any]) -> dict[str, list[str]]:
    """Each scraped target's name (the service for the `baocao` job, else the job) -> address."""
    targets: dict[str, list[str]] = {}
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            name = static.get("labels", {}).get("service", job["job_name"])
            targets[name] = static["targets"]
    return targets


def test_the_local_prometheus_config_has_the_stacks_ports_and_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in STACK_PORT_VARIABLES:  # the defaults, whatever stack this test runs beside
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("BAOCAO_NOTIFY_PORT", "18102")
    monkeypatch.setenv("BAOCAO_ALERTMANAGER_PORT", "19194")
    config: dict[str, Any] = yaml.safe_load(stack.prometheus_config(stack.Layout()))
    assert config["rule_files"] == [str(stack.PROMETHEUS_DIR / "alerts.yml")]
    alertmanagers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == ["127.0.0.1:19194"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {
        static["labels"]["service"]: static["targets"]
        for static in jobs["baocao"]["static_configs"]
    }
    assert targets["notify"] == ["127.0.0.1:18102"]
    assert targets["submissions"] == ["127.0.0.1:8000"]
    assert jobs["ferretdb"]["static_configs"][0]["targets"] == ["127.0.0.1:8088"]


def test_ports_moved_onto_each_others_defaults_are_moved_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every port shifted onto the next one's default: a replacement that ran once per port
    # over the same text would move 8000 to 8001, then on to 8002, 8003 and 8004.
    moved = {
        "submissions": 8001,
        "deadlines": 8002,
        "notify": 8003,
        "consolidate": 8004,
        "ferretdb": 9090,
        "prometheus": 9094,
        "alertmanager": 8088,
    }
    for service in stack.SERVICES:
        monkeypatch.setenv(f"BAOCAO_{service.upper()}_PORT", str(moved[service]))
    monkeypatch.setenv("BAOCAO_FERRETDB_DEBUG_PORT", str(moved["ferretdb"]))
    monkeypatch.setenv("BAOCAO_PROMETHEUS_PORT", str(moved["prometheus"]))
    monkeypatch.setenv("BAOCAO_ALERTMANAGER_PORT", str(moved["alertmanager"]))
    config: dict[str, Any] = yaml.safe_load(stack.prometheus_config(stack.Layout()))
    assert scrape_targets(config) == {name: [f"127.0.0.1:{p}"] for name, p in moved.items()}
    alertmanagers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == ["127.0.0.1:8088"]


def test_a_shorter_scrape_interval_is_a_parameter_not_an_edit_of_the_shipped_file() -> None:
    shipped: dict[str, Any] = yaml.safe_load(
        stack.prometheus_config(stack.Layout(scrape_interval=None))
    )
    assert shipped["global"] == {"scrape_interval": "15s", "evaluation_interval": "15s"}
    fast: dict[str, Any] = yaml.safe_load(
        stack.prometheus_config(stack.Layout(scrape_interval="1s"))
    )
    assert fast["global"] == {"scrape_interval": "1s", "evaluation_interval": "1s"}
    assert fast["scrape_configs"] == shipped["scrape_configs"]


def test_alertmanager_mails_the_operators_through_the_stacks_smtp_server() -> None:
    template = (stack.PROMETHEUS_DIR / "alertmanager.yml").read_text(encoding="utf-8")
    config = yaml.safe_load(
        stack.alertmanager_config(
            template,
            smarthost="127.0.0.1:1025",
            operators="a@b.example",
            office="vp@c.example, tp@c.example",
            runbook_base="https://git.example.org/baocao/-/blob/main/",
        )
    )
    assert config["global"]["smtp_smarthost"] == "127.0.0.1:1025"
    operators, office = config["receivers"]
    (email,) = operators["email_configs"]
    assert email["to"] == "a@b.example" and email["send_resolved"] is True
    # An alert for the office (audience="office") reaches the office and the operators, in
    # the same words (one mail template for both receivers).
    assert config["route"]["receiver"] == "operators"
    (to_office,) = config["route"]["routes"]
    assert to_office == {"matchers": ['audience="office"'], "receiver": office["name"]}
    (office_email,) = office["email_configs"]
    assert office_email["to"] == "vp@c.example, tp@c.example, a@b.example"
    assert {k: v for k, v in office_email.items() if k != "to"} == {
        k: v for k, v in email.items() if k != "to"
    }
    assert "@" not in config["global"]["smtp_smarthost"].replace("@SMTP", "")
    assert (
        "runbook: https://git.example.org/baocao/-/blob/main/{{ .Annotations.runbook_url }}"
        in (email["text"])
    )
    assert not re.search(r"@[A-Z_]+@", yaml.safe_dump(config)), "a placeholder left unfilled"


def test_the_offices_alerts_reach_the_consolidating_units_contacts_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BAOCAO_OFFICE_ALERT_EMAIL", raising=False)
    monkeypatch.delenv("BAOCAO_PLANS", raising=False)
    layout = stack.Layout()
    assert layout.office_alert_email is None
    # The seed plan's consolidating unit, Phòng Văn hóa và Thông tin, and its head.
    assert stack.office_addresses(layout.plan_files) == (
        "vanhoa@ngochoi.example, truongphong.vanhoa@ngochoi.example"
    )
    monkeypatch.setenv("BAOCAO_OFFICE_ALERT_EMAIL", "tonghop@x.example")
    assert stack.Layout().office_alert_email == "tonghop@x.example"


def test_the_runbook_links_default_to_this_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BAOCAO_RUNBOOK_BASE_URL", raising=False)
    assert stack.Layout().runbook_base_url == stack.ROOT.as_uri()
    monkeypatch.setenv("BAOCAO_RUNBOOK_BASE_URL", "https://git.example.org/baocao/-/blob/main")
    assert stack.Layout().runbook_base_url == "https://git.example.org/baocao/-/blob/main"


def test_the_alert_test_shortens_durations_and_keeps_expressions() -> None:
    real = yaml.safe_load((stack.PROMETHEUS_DIR / "alerts.yml").read_text(encoding="utf-8"))
    short = shortened_rules(yaml.safe_load((stack.PROMETHEUS_DIR / "alerts.yml").read_text()))
    pairs = [
        (a, b)
        for ga, gb in zip(real["groups"], short["groups"], strict=True)
        for a, b in zip(ga["rules"], gb["rules"], strict=True)
    ]
    assert all(a["expr"] == b["expr"] for a, b in pairs)
    durations = {a["alert"]: b["for"] for a, b in pairs}
    assert durations["BaocaoConsumerLagGrowing"] == "10s"
    assert durations["BaocaoDeadLetters"] == "0s"
