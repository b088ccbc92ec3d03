"""docker-compose.yml is valid Compose, waits on healthchecks, never clashes with the local stack.

No Docker engine is needed: the file is checked against the Compose Specification JSON Schema
vendored in tests/fixtures/compose-spec.json (see tests/fixtures/README.md).
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from deploy.local import stack

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = ROOT / "tests" / "fixtures" / "compose-spec.json"

APP_SERVICES = {"submissions": 8000, "deadlines": 8001, "notify": 8002, "consolidate": 8003}
# ports the Docker-less local stack (deploy/local/stack.py) binds on the host by default
LOCAL_STACK_PORTS = {8000, 8001, 8002, 8003, 9092, 9093, 27017, 1025, 8025, 8088, 9090, 9094}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    # the file declares draft-07 as "https://json-schema.org/draft-07/schema" (no trailing "#"),
    # which jsonschema does not recognise by URI; pick the draft explicitly
    assert "draft-07" in schema["$schema"]
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def schema_errors(validator: jsonschema.protocols.Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def published_ports(service: dict[str, Any]) -> list[int]:
    """Host ports of a service, from short ("[ip:]host:container[/proto]") or long syntax."""
    ports: list[int] = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            if "published" in entry:
                ports.append(int(str(entry["published"]).split("-")[0]))
            continue
        spec = str(entry).split("/")[0]
        parts = spec.rsplit(":", 2)
        if len(parts) == 1:
            raise AssertionError(f"port {entry!r} publishes on a random host port; give one")
        ports.append(int(parts[-2].split("-")[0]))
    return ports


@pytest.mark.unit
def test_compose_file_matches_compose_spec(compose, validator):
    assert schema_errors(validator, compose) == []


@pytest.mark.unit
@pytest.mark.parametrize(
    "breakage",
    [
        "bogus_depends_on_condition",
        "unknown_healthcheck_key",
        "unknown_service_key",
        "ports_not_a_list",
    ],
)
def test_schema_rejects_a_broken_compose_file(compose, validator, breakage):
    broken = copy.deepcopy(compose)
    services = broken["services"]
    if breakage == "bogus_depends_on_condition":
        services["notify"]["depends_on"]["kafka"]["condition"] = "bogus"
    elif breakage == "unknown_healthcheck_key":
        services["kafka"]["healthcheck"]["every"] = "10s"
    elif breakage == "unknown_service_key":
        services["mongodb"]["depends"] = ["kafka"]
    elif breakage == "ports_not_a_list":
        services["mailpit"]["ports"] = "11025:1025"
    assert schema_errors(validator, broken), f"schema accepted a compose file with {breakage}"


@pytest.mark.unit
def test_expected_services_exist(compose):
    assert {"kafka", "mongodb", "mailpit", *APP_SERVICES, "prometheus", "alertmanager"} <= set(
        compose["services"]
    )


@pytest.mark.unit
def test_every_service_has_a_healthcheck(compose):
    for name, service in compose["services"].items():
        healthcheck = service.get("healthcheck")
        assert healthcheck, f"{name} has no healthcheck"
        assert not healthcheck.get("disable"), f"{name} disables its healthcheck"
        test = healthcheck.get("test")
        assert test and test not in (["NONE"], "NONE"), f"{name} has an empty healthcheck test"


@pytest.mark.unit
def test_dependencies_wait_until_healthy(compose):
    services = compose["services"]
    for name, service in services.items():
        depends_on = service.get("depends_on")
        if depends_on is None:
            continue
        assert isinstance(depends_on, dict), f"{name}: depends_on must name a condition"
        for dependency, options in depends_on.items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            assert options.get("condition") == "service_healthy", (
                f"{name} -> {dependency} does not wait for service_healthy"
            )
    for name in APP_SERVICES:
        assert {"kafka", "mongodb"} <= set(services[name]["depends_on"]), name
    assert "mailpit" in services["notify"]["depends_on"]


@pytest.mark.unit
def test_host_ports_do_not_clash_with_the_local_stack(compose):
    seen: dict[int, str] = {}
    for name, service in compose["services"].items():
        for port in published_ports(service):
            assert port not in LOCAL_STACK_PORTS, f"{name} publishes default local port {port}"
            assert port not in seen, f"{name} and {seen[port]} both publish {port}"
            seen[port] = name
    assert {19092, 27018, 11025, 18025, 18000, 18001, 18002, 18003, 19090, 19093} <= set(seen)


@pytest.mark.unit
def test_the_local_stack_defaults_are_the_ports_listed_here(monkeypatch):
    for name in list(os.environ):
        if name.startswith("BAOCAO_") and name.endswith("_PORT"):
            monkeypatch.delenv(name)
    layout = stack.Layout()
    defaults = {
        *(layout.service_port(s) for s in stack.SERVICES),
        layout.kafka_port,
        layout.kafka_controller_port,
        layout.mongo_port,
        layout.smtp_port,
        layout.mailpit_port,
        layout.ferretdb_debug_port,
        layout.prometheus_port,
        layout.alertmanager_port,
    }
    assert defaults == LOCAL_STACK_PORTS


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (relative to the compose file) of a service's bind mounts."""
    found: dict[str, str] = {}
    for mount in service.get("volumes", []):
        source, target = str(mount).split(":")[:2]
        if source.startswith("./"):
            found[target] = source
    return found


@pytest.mark.unit
def test_compose_monitoring_runs_the_local_stacks_rules_and_alertmanager_config(compose):
    """One set of rules and one Alertmanager configuration for both paths: compose mounts the
    very files the local stack renders from (stack.PROMETHEUS_DIR)."""
    shared = "./" + stack.PROMETHEUS_DIR.relative_to(ROOT).as_posix()
    prometheus = compose["services"]["prometheus"]
    mounted = mounts(prometheus)
    (config_flag,) = [c for c in prometheus["command"] if c.startswith("--config.file=")]
    config_path = config_flag.removeprefix("--config.file=")
    assert mounted[config_path] == f"{shared}/prometheus.yml"
    config = yaml.safe_load((stack.PROMETHEUS_DIR / "prometheus.yml").read_text("utf-8"))
    for rules in config["rule_files"]:
        assert mounted[rules] == f"{shared}/alerts.yml", rules
    local = yaml.safe_load((stack.PROMETHEUS_DIR / "prometheus.local.yml").read_text("utf-8"))
    assert [Path(r).name for r in config["rule_files"]] == local["rule_files"] == ["alerts.yml"]
    # Prometheus alerts the compose Alertmanager, on the port Alertmanager listens on.
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]
    assert "alertmanager" in prometheus["depends_on"]

    alertmanager = compose["services"]["alertmanager"]
    script = " ".join(alertmanager["command"])
    (template,) = [t for t, s in mounts(alertmanager).items() if s == f"{shared}/alertmanager.yml"]
    assert template in script
    # compose fills in every placeholder the template has, as stack.alertmanager_config does.
    placeholders = set(
        re.findall(r"@[A-Z_]+@", (stack.PROMETHEUS_DIR / "alertmanager.yml").read_text("utf-8"))
    )
    assert placeholders and placeholders == set(re.findall(r"s\|(@[A-Z_]+@)\|", script))
    assert "--config.file=/tmp/alertmanager.yml" in script
    assert published_ports(alertmanager) == [19093]
    assert any(str(p).endswith(":9093") for p in alertmanager["ports"])
    assert published_ports(prometheus) == [19090]


@pytest.mark.unit
def test_data_lives_in_named_volumes(compose):
    declared = set(compose.get("volumes") or {})
    for name in ("kafka", "mongodb", "mailpit"):
        mounts = compose["services"][name].get("volumes", [])
        sources = {str(m).split(":")[0] if not isinstance(m, dict) else m["source"] for m in mounts}
        assert sources & declared, f"{name} keeps its data outside a named volume"


@pytest.mark.unit
def test_app_services_share_one_image_and_pick_their_module(compose):
    for name, port in APP_SERVICES.items():
        service = compose["services"][name]
        build = service["build"]
        assert build["context"] == "." and build.get("dockerfile", "Dockerfile") == "Dockerfile"
        assert service["command"] == ["python", "-m", f"services.{name}"]
        env = service["environment"]
        assert env["BAOCAO_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["BAOCAO_MONGO_URI"] == "mongodb://mongodb:27017/"
        assert f"http://127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"])
    notify_env = compose["services"]["notify"]["environment"]
    assert notify_env["BAOCAO_SMTP_HOST"] == "mailpit"
    assert int(notify_env["BAOCAO_SMTP_PORT"]) == 1025


@pytest.mark.unit
def test_dockerfile_installs_from_the_lock_and_drops_root():
    lines = [
        line.strip()
        for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0].startswith("FROM python:3.11-slim")
    assert any("pip install --no-cache-dir -r requirements.lock" in line for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the image must run as a non-root user"
