"""deploy/prometheus/alerts.yml is well formed, every metric it reads is one a service exports,
every rule has a runbook section and promtool unit tests (tests/integration runs promtool)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

# Series Prometheus makes itself rather than scraping them.
PROMETHEUS_SERIES = {"up"}
PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan",
}  # fmt: skip

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
ALERTS_FILE = PROMETHEUS_DIR / "alerts.yml"
SEVERITIES = {"critical", "warning", "info"}
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
RUNBOOK = PROMETHEUS_DIR / "RUNBOOK.md"
RULE_TESTS = PROMETHEUS_DIR / "tests"


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (what is left once strings, label matchers,
    ranges, grouping clauses, functions, keywords and numbers are taken away)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    words = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*\b(?!\s*\()", text)
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]", w)}


def exported(registry: CollectorRegistry) -> set[str]:
    """Names of the series a registry exposes, as Prometheus sees them once scraped."""
    suffixes = {
        "counter": ["_total"],
        "histogram": ["_bucket", "_sum", "_count"],
        "summary": ["_sum", "_count"],
    }
    return {
        family.name + suffix
        for family in registry.collect()
        for suffix in suffixes.get(family.type, [""])
    }


@cache
def exported_by_services() -> frozenset[str]:
    """Every series name the four services export, read from their apps' own registries."""
    from services.consolidate.app import build_app as consolidate
    from services.consolidate.config import ConsolidateSettings
    from services.deadlines.app import build_app as deadlines
    from services.deadlines.config import DeadlinesSettings
    from services.notify.app import build_app as notify
    from services.notify.config import NotifySettings
    from services.submissions.app import build_app as submissions
    from services.submissions.config import SubmissionsSettings

    names: set[str] = set()
    for app in (
        submissions(SubmissionsSettings()),
        deadlines(DeadlinesSettings()),
        notify(NotifySettings()),
        consolidate(ConsolidateSettings()),
    ):
        names |= exported(app.state.runtime.registry)
    return frozenset(names)


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
def test_metric_names_are_read_from_expressions():
    expr = (
        'sum by (service) (rate(http_requests_total{job="baocao", status=~"5.."}[5m]))'
        " / ignoring (plan) group_left () baocao_x > 0.05 and on (service) time() - up == 0"
    )
    assert metric_names(expr) == {"http_requests_total", "baocao_x", "up"}


@pytest.mark.unit
def test_rules_only_read_metrics_a_service_exports(rules):
    """A renamed or removed metric breaks this test instead of silently disabling an alert."""
    available = exported_by_services() | PROMETHEUS_SERIES
    for rule in rules:
        unknown = metric_names(rule["expr"]) - available
        assert not unknown, f"{rule['alert']} reads metrics no service exports: {sorted(unknown)}"


@pytest.mark.unit
def test_a_metric_no_service_exports_is_caught(rules):
    assert metric_names("baocao_no_such_metric_total > 0") - exported_by_services()


@pytest.mark.unit
def test_every_rule_speaks_both_languages_and_has_a_runbook_section(rules):
    runbook = RUNBOOK.read_text(encoding="utf-8")
    headings = {
        match.lower() for match in re.findall(r"^##+ .*?\b(Baocao[A-Za-z0-9]+)", runbook, re.M)
    }
    for rule in rules:
        annotations = rule["annotations"]
        assert annotations.get("summary_vi"), f"{rule['alert']}: no Vietnamese summary"
        anchor = rule["alert"].lower()
        # A path in the repository (alert mails put BAOCAO_RUNBOOK_BASE_URL before it).
        assert annotations.get("runbook_url") == f"{RUNBOOK.relative_to(ROOT)}#{anchor}"
        assert anchor in headings, f"RUNBOOK.md has no section for {rule['alert']}"


@pytest.mark.unit
def test_every_rule_has_promtool_tests_that_see_it_fire_and_stay_quiet(rules):
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in sorted(RULE_TESTS.glob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert [Path(f).name for f in document["rule_files"]] == ["alerts.yml"], path
        for test in document["tests"]:
            for case in test.get("alert_rule_test", []):
                (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {rule["alert"] for rule in rules}
    assert names - fires == set(), "rules never seen firing by promtool tests"
    assert names - quiet == set(), "rules never seen staying quiet by promtool tests"


@pytest.mark.unit
def test_service_down_rule_watches_the_scrape_job(rules):
    exprs = [rule["expr"] for rule in rules]
    assert any(re.search(r'up\{[^}]*job="baocao"[^}]*\}\s*==\s*0', expr) for expr in exprs)


@pytest.mark.unit
@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.local.yml"])
def test_prometheus_config_scrapes_the_four_services(config):
    document = yaml.safe_load((PROMETHEUS_DIR / config).read_text(encoding="utf-8"))
    assert any(Path(path).name == "alerts.yml" for path in document["rule_files"])
    assert document["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
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
