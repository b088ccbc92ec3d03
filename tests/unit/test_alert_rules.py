"""deploy/prometheus/alerts.yml is well formed and only uses metric names the services expose."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

# Every baocao_* metric the alert rules may reference. Rename a metric in services/ and this
# list (and alerts.yml) must follow, otherwise an alert would silently never fire.
KNOWN_METRICS = {
    "baocao_ready",
    "baocao_dead_letters_total",
    "baocao_outbox_pending",
    "baocao_outbox_oldest_pending_seconds",
    "baocao_outbox_relayed_total",
    "baocao_outbox_parked_total",
    "baocao_dead_letter_write_retries_total",
    "baocao_handler_retries_total",
    "baocao_notifications_total",
    "baocao_deadline_scan_last_success_timestamp_seconds",
}

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
ALERTS_FILE = PROMETHEUS_DIR / "alerts.yml"
SEVERITIES = {"critical", "warning", "info"}
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
# a baocao_ metric name, not inside a quoted label value such as job="baocao"
METRIC_NAME = re.compile(r"(?<![\w\"'])baocao_[a-zA-Z0-9_:]*")


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict) and set(document) == {"groups"}
    collected: list[dict[str, Any]] = []
    group_names = [group["name"] for group in document["groups"]]
    assert len(group_names) == len(set(group_names)), "duplicate group names"
    for group in document["groups"]:
        assert group.get("rules"), f"group {group['name']} has no rules"
        collected.extend(group["rules"])
    return collected


@pytest.mark.unit
def test_every_rule_is_complete(rules):
    for rule in rules:
        name = rule.get("alert")
        assert name and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name), f"bad alert name in {rule}"
        assert isinstance(rule.get("expr"), str) and rule["expr"].strip(), f"{name}: no expr"
        assert DURATION.match(str(rule.get("for", ""))), f"{name}: missing or bad 'for'"
        assert rule.get("labels", {}).get("severity") in SEVERITIES, f"{name}: bad severity"
        annotations = rule.get("annotations", {})
        assert annotations.get("summary"), f"{name}: no annotations.summary"
        assert annotations.get("description"), f"{name}: no annotations.description"
        unknown = set(rule) - {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
        assert not unknown, f"{name}: unknown keys {unknown}"


@pytest.mark.unit
def test_alert_names_are_unique(rules):
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "duplicate alert names"


@pytest.mark.unit
def test_expressions_are_balanced(rules):
    pairs = {")": "(", "]": "[", "}": "{"}
    for rule in rules:
        stack: list[str] = []
        # drop quoted label values so a bracket inside a string does not count
        for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', rule["expr"]):
            if char in "([{":
                stack.append(char)
            elif char in pairs:
                assert stack and stack.pop() == pairs[char], f"{rule['alert']}: unbalanced"
        assert not stack, f"{rule['alert']}: unbalanced {stack}"


@pytest.mark.unit
def test_rules_only_use_known_metrics(rules):
    used: set[str] = set()
    for rule in rules:
        names = set(METRIC_NAME.findall(rule["expr"]))
        unknown = names - KNOWN_METRICS
        assert not unknown, f"{rule['alert']} uses unknown metrics {sorted(unknown)}"
        used |= names
    assert used == KNOWN_METRICS, f"metrics without an alert: {sorted(KNOWN_METRICS - used)}"


@pytest.mark.unit
def test_service_down_rule_watches_the_scrape_job(rules):
    exprs = [rule["expr"] for rule in rules]
    assert any(re.search(r'up\{[^}]*job="baocao"[^}]*\}\s*==\s*0', expr) for expr in exprs)


@pytest.mark.unit
@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.local.yml"])
def test_prometheus_config_scrapes_the_four_services(config):
    document = yaml.safe_load((PROMETHEUS_DIR / config).read_text(encoding="utf-8"))
    assert any(Path(path).name == "alerts.yml" for path in document["rule_files"])
    jobs = {job["job_name"]: job for job in document["scrape_configs"]}
    job = jobs["baocao"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    services = {
        static["labels"]["service"]: target
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert set(services) == {"submissions", "deadlines", "notify", "consolidate"}
    ports = {name: int(target.rsplit(":", 1)[1]) for name, target in services.items()}
    assert ports == {"submissions": 8000, "deadlines": 8001, "notify": 8002, "consolidate": 8003}
