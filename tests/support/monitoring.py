"""A Prometheus and an Alertmanager of the test's own, on free ports, watching one system.

Configured from the real files in deploy/prometheus/ with only the timings shortened: scrape
and evaluation every second, rule ``for:`` durations divided by 60 (a minute becomes a second)
with every expression unchanged, and Alertmanager grouping within a second. Alertmanager mails
through the stack's SMTP server to an address of the test's own.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from deploy.local import stack

PROMETHEUS_DIR = stack.PROMETHEUS_DIR
SCRAPE_SECONDS = 1
SHRINK = 60
"""Rule ``for:`` durations are divided by this: 10m becomes 10s."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)


def shortened_rules(document: dict[str, Any]) -> dict[str, Any]:
    """The real rules with every ``for:`` and ``keep_firing_for:`` divided by SHRINK;
    expressions untouched."""
    for group in document["groups"]:
        for rule in group["rules"]:
            for key in ("for", "keep_firing_for"):
                if key in rule:
                    rule[key] = f"{seconds(str(rule[key])) / SHRINK:g}s"
    return document


@dataclass
class Monitoring:
    """Start with :meth:`start`; every process is stopped by :meth:`stop`."""

    work: Path
    targets: dict[str, int]
    """Service name -> its HTTP port."""
    smarthost: str
    operators: str
    office: str
    runbook_base: str = stack.ROOT.as_uri()
    """The mails link the runbook in this checkout, where the test can follow the link."""
    prometheus_port: int = field(default_factory=free_port)
    alertmanager_port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def prometheus(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def alertmanager(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager_port}"

    def rule_for(self, alertname: str) -> float:
        """The shortened ``for:`` of a rule, in seconds."""
        rules = yaml.safe_load((self.work / "alerts.yml").read_text(encoding="utf-8"))
        for group in rules["groups"]:
            for rule in group["rules"]:
                if rule["alert"] == alertname:
                    return seconds(rule["for"])
        raise KeyError(alertname)

    def write_configs(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text(encoding="utf-8"))
        (self.work / "alerts.yml").write_text(yaml.safe_dump(shortened_rules(rules)), "utf-8")

        config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.local.yml").read_text("utf-8"))
        config["global"] = {
            "scrape_interval": f"{SCRAPE_SECONDS}s",
            "evaluation_interval": f"{SCRAPE_SECONDS}s",
        }
        config["rule_files"] = [str(self.work / "alerts.yml")]
        config["alerting"]["alertmanagers"][0]["static_configs"] = [
            {"targets": [f"127.0.0.1:{self.alertmanager_port}"]}
        ]
        (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "baocao"]
        job["static_configs"] = [
            {"targets": [f"127.0.0.1:{port}"], "labels": {"service": service}}
            for service, port in self.targets.items()
        ]
        config["scrape_configs"] = [job]
        (self.work / "prometheus.yml").write_text(yaml.safe_dump(config), "utf-8")

        template = (PROMETHEUS_DIR / "alertmanager.yml").read_text(encoding="utf-8")
        alerting = yaml.safe_load(
            stack.alertmanager_config(
                template,
                smarthost=self.smarthost,
                operators=self.operators,
                office=self.office,
                runbook_base=self.runbook_base,
            )
        )
        alerting["route"].update(group_wait="1s", group_interval="1s", repeat_interval="1h")
        (self.work / "alertmanager.yml").write_text(yaml.safe_dump(alerting), "utf-8")

    def start(self) -> None:
        programs = stack.provision_monitoring(stack.Layout())
        self.write_configs()
        self._launch(
            "alertmanager",
            [
                str(programs.alertmanager),
                f"--config.file={self.work / 'alertmanager.yml'}",
                f"--storage.path={self.work / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{self.alertmanager_port}",
                "--cluster.listen-address=",
            ],
            f"{self.alertmanager}/-/ready",
        )
        self._launch(
            "prometheus",
            [
                str(programs.prometheus),
                f"--config.file={self.work / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.work / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.prometheus_port}",
                # Resolved and still-firing alerts reach Alertmanager within a second.
                "--rules.alert.resend-delay=1s",
            ],
            f"{self.prometheus}/-/ready",
        )

    def _launch(self, name: str, command: list[str], ready: str, timeout: float = 60) -> None:
        log = (self.work / f"{name}.log").open("ab")
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes.append(process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(ready, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        tail = (self.work / f"{name}.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"{name} did not become ready; its log ends:\n{tail}")

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    async def alerts(self, alertname: str, state: str = "firing") -> list[dict[str, Any]]:
        """Prometheus's alerts of that name in that state (pending, firing)."""
        async with httpx.AsyncClient(base_url=self.prometheus, timeout=10) as client:
            response = await client.get("/api/v1/alerts")
        response.raise_for_status()
        return [
            a
            for a in response.json()["data"]["alerts"]
            if a["labels"]["alertname"] == alertname and a["state"] == state
        ]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.prometheus, timeout=10) as client:
            response = await client.get("/api/v1/query", params={"query": expr})
        response.raise_for_status()
        return list(response.json()["data"]["result"])

    async def targets_up(self) -> dict[str, str]:
        async with httpx.AsyncClient(base_url=self.prometheus, timeout=10) as client:
            response = await client.get("/api/v1/targets")
        response.raise_for_status()
        return {
            t["labels"]["service"]: t["health"] + (f" ({t['lastError']})" if t["lastError"] else "")
            for t in response.json()["data"]["activeTargets"]
        }
