"""The Prometheus and Alertmanager that `make up` starts see every target up, hold every rule
and are wired to each other.

They are started by the stack's own functions (``stack.alertmanager_process``,
``stack.prometheus_process``, in the order ``stack.everything`` gives), with the configuration
the stack renders from deploy/prometheus/ on free ports of this test's own, and only the scrape
interval shortened through the layout (the shipped file says 15 s). They watch the four
services (real processes, a namespace of this test's own, their ports handed to the layout as
`make up` hands them: BAOCAO_<SERVICE>_PORT), the stack's FerretDB and each other.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from deploy.local import stack
from tests.conftest import Servers
from tests.e2e.conftest import SEED_PLAN, SERVICES, System, start_system
from tests.support.launch import free_port
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
async def monitored(
    servers: Servers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[stack.Layout, dict[str, Any]]]:
    if servers.provider != "local stack":
        pytest.skip("the stack's monitoring scrapes the local stack's FerretDB, not a container")
    start = dt.datetime(2027, 6, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    system: System = await asyncio.to_thread(
        start_system, servers, tmp_path / "system", [SEED_PLAN], start.isoformat()
    )
    for service, port in system.ports.items():
        monkeypatch.setenv(f"BAOCAO_{service.upper()}_PORT", str(port))
    for unset in ("BAOCAO_PLANS", "BAOCAO_OFFICE_ALERT_EMAIL"):  # the seed plan's office
        monkeypatch.delenv(unset, raising=False)
    layout = stack.Layout(
        data_dir_override=str(tmp_path / "stack"),  # its own PID files, logs and data
        prometheus_port=free_port(),
        alertmanager_port=free_port(),
        scrape_interval="1s",
        operators_email=f"{system.namespace}@van-hanh.example",
    )
    table = stack.everything(layout)
    monitoring = [table[name] for name in table if name in stack.MONITORING]
    try:
        await asyncio.to_thread(stack.provision_monitoring, layout)
        await asyncio.to_thread(stack.start_all, monitoring)
        yield layout, yaml.safe_load(stack.prometheus_config(layout))
    finally:
        stack.stop_all(monitoring)
        system.stop()


async def api(base: str, path: str) -> Any:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        response = await client.get(path)
    response.raise_for_status()
    return response.json()["data"]


def configured_targets(config: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (job["job_name"], target)
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }


async def test_every_target_of_the_stacks_prometheus_is_up_with_every_rule_and_its_alertmanager(
    monitored: tuple[stack.Layout, dict[str, Any]],
) -> None:
    layout, config = monitored
    prometheus = f"http://127.0.0.1:{layout.prometheus_port}"
    expected = configured_targets(config)
    # Every job of the shipped file: the four services, FerretDB, Prometheus, Alertmanager.
    assert {job for job, _ in expected} == {"baocao", "ferretdb", "prometheus", "alertmanager"}
    assert ("ferretdb", f"127.0.0.1:{layout.ferretdb_debug_port}") in expected
    assert {t for job, t in expected if job == "baocao"} == {
        f"127.0.0.1:{layout.service_port(s)}" for s in SERVICES
    }

    async def targets() -> dict[tuple[str, str], str]:
        active = (await api(prometheus, "/api/v1/targets"))["activeTargets"]
        return {
            (t["labels"]["job"], t["labels"]["instance"]): t["health"]
            + (f" ({t['lastError']})" if t["lastError"] else "")
            for t in active
        }

    async def all_up() -> dict[tuple[str, str], str] | None:
        seen = await targets()
        return seen if set(seen) == expected and set(seen.values()) == {"up"} else None

    try:
        await eventually(all_up, timeout=30, interval=0.5, what="every target up")
    except AssertionError as error:
        raise AssertionError(f"{error}: {await targets()}") from None
    services = {
        t["labels"].get("service")
        for t in (await api(prometheus, "/api/v1/targets"))["activeTargets"]
        if t["labels"]["job"] == "baocao"
    }
    assert services == set(SERVICES)

    # The rules of alerts.yml, every one of them, loaded from the file the stack points at.
    rules = yaml.safe_load((stack.PROMETHEUS_DIR / "alerts.yml").read_text(encoding="utf-8"))
    shipped = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    loaded = {
        rule["name"]: rule
        for group in (await api(prometheus, "/api/v1/rules"))["groups"]
        for rule in group["rules"]
        if rule["type"] == "alerting"
    }
    assert set(loaded) == shipped
    assert not [name for name, rule in loaded.items() if rule.get("lastError")]

    # Prometheus sends its alerts to the stack's Alertmanager, which mails through the stack's
    # SMTP server to the operators' address.
    alertmanager = f"http://127.0.0.1:{layout.alertmanager_port}"
    managers = (await api(prometheus, "/api/v1/alertmanagers"))["activeAlertmanagers"]
    assert [m["url"].removesuffix("/api/v2/alerts") for m in managers] == [alertmanager]
    async with httpx.AsyncClient(base_url=alertmanager, timeout=10) as client:
        status = (await client.get("/api/v2/status")).raise_for_status().json()
    settings = yaml.safe_load(status["config"]["original"])
    assert settings["global"]["smtp_smarthost"] == f"127.0.0.1:{layout.smtp_port}"
    (email,) = settings["receivers"][0]["email_configs"]
    assert email["to"] == layout.operators_email
    # The office's alerts reach the plan's consolidating office too (plan data), same words.
    (office,) = settings["receivers"][1]["email_configs"]
    seed_office = "vanhoa@ngochoi.example, truongphong.vanhoa@ngochoi.example"
    assert office["to"] == f"{seed_office}, {layout.operators_email}"
    assert office["text"] == email["text"]
    assert f"runbook: {layout.runbook_base_url}/{{{{ .Annotations.runbook_url }}}}" in email["text"]
