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
TARGET_LABELS = {"job", "instance", "service"}
"""Labels every scraped series carries: Prometheus's own two and the `service` the scrape
configs give each service's target (the services also set it themselves)."""
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
def service_registries() -> tuple[CollectorRegistry, ...]:
    """The registries of the four services' apps, as they are built to run."""
    from services.consolidate.app import build_app as consolidate
    from services.consolidate.config import ConsolidateSettings
    from services.deadlines.app import build_app as deadlines
    from services.deadlines.config import DeadlinesSettings
    from services.notify.app import build_app as notify
    from services.notify.config import NotifySettings
    from services.submissions.app import build_app as submissions
    from services.submissions.config import SubmissionsSettings

    apps = (
        submissions(SubmissionsSettings()),
        deadlines(DeadlinesSettings()),
        notify(NotifySettings()),
        consolidate(ConsolidateSettings()),
    )
    return tuple(app.state.runtime.registry for app in apps)


@cache
def exported_by_services() -> frozenset[str]:
    """Every series name the four services export, read from their apps' own registries."""
    return frozenset(name for registry in service_registries() for name in exported(registry))


@cache
def labels_of_metrics() -> dict[str, frozenset[str]]:
    """Each series name the services export -> the label names it can carry once scraped: the
    ones its metric declares (a labelled metric nobody has used yet shows no sample), the ones
    its samples show, ``le`` on histogram buckets, and the target's."""
    labels: dict[str, set[str]] = {name: set(TARGET_LABELS) for name in PROMETHEUS_SERIES}
    for registry in service_registries():
        collectors = registry._names_to_collectors  # no public way to read declared labels
        for name in exported(registry):
            found = labels.setdefault(name, set(TARGET_LABELS))
            found |= set(getattr(collectors.get(name), "_labelnames", ()))
            if name.endswith("_bucket"):
                found.add("le")
        for family in registry.collect():
            for sample in family.samples:
                labels.setdefault(sample.name, set(TARGET_LABELS)).update(sample.labels)
    return {name: frozenset(names) for name, names in labels.items()}


def unknown_metrics(expr: str) -> set[str]:
    """The metrics ``expr`` reads that no service exports (nor Prometheus makes)."""
    return metric_names(expr) - exported_by_services() - PROMETHEUS_SERIES


def unknown_labels(rule: dict[str, Any]) -> set[str]:
    """Label names a rule uses that the metrics it reads do not have: in a metric's own
    matchers (``m{label=...}``: that metric's labels), in ``by``/``on`` clauses and in its
    annotations' ``$labels.x`` (some metric of the rule must have it)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', rule["expr"])
    available = labels_of_metrics()
    read = metric_names(rule["expr"])
    anywhere = set().union(*(available.get(m, frozenset()) for m in read))
    unknown: set[str] = set()
    for metric, matchers in re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}", expr):
        used = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
        unknown |= used - available.get(metric, frozenset())
    for clause in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", expr):
        unknown |= {label.strip() for label in clause.split(",") if label.strip()} - anywhere
    templates = " ".join(str(v) for v in rule.get("annotations", {}).values())
    unknown |= set(re.findall(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)", templates)) - anywhere
    return unknown


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
    for rule in rules:
        unknown = unknown_metrics(rule["expr"])
        assert not unknown, f"{rule['alert']} reads metrics no service exports: {sorted(unknown)}"


@pytest.mark.unit
def test_rules_only_use_labels_their_metrics_have(rules):
    """A renamed label (``outcome``, ``channel``...) would leave a matcher that never matches
    or a grouping that merges everything: an alert that cannot fire, or says nothing."""
    for rule in rules:
        unknown = unknown_labels(rule)
        assert not unknown, f"{rule['alert']} uses labels its metrics lack: {sorted(unknown)}"


@pytest.mark.unit
def test_a_metric_or_label_no_service_exports_is_caught(rules):
    """The guards above, on real rules with one name changed, against the real services."""
    failing = next(r for r in rules if r["alert"] == "BaocaoNotificationsFailing")
    assert unknown_metrics(failing["expr"]) == set()
    renamed = failing["expr"].replace("baocao_notifications_total", "baocao_notices_sent_total")
    assert unknown_metrics(renamed) == {"baocao_notices_sent_total"}

    assert unknown_labels(failing) == set()
    matcher = {**failing, "expr": failing["expr"].replace('outcome="failed"', 'result="failed"')}
    assert unknown_labels(matcher) == {"result"}
    grouping = {**failing, "expr": failing["expr"].replace("by (channel)", "by (medium)")}
    assert unknown_labels(grouping) == {"medium"}
    template = {
        **failing,
        "annotations": {"summary": "notices over {{ $labels.medium }} are failing"},
    }
    assert unknown_labels(template) == {"medium"}
    lag = next(r for r in rules if r["alert"] == "BaocaoConsumerLagGrowing")
    assert unknown_labels(lag) == set()
    assert unknown_labels({**lag, "expr": lag["expr"].replace("topic", "subject")}) == {"subject"}


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
