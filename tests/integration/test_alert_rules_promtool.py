"""promtool's own checks of the alerting rules: syntax, and the unit tests in
deploy/prometheus/tests/ (input series -> expected alerts with their rendered annotations).

promtool comes with Debian's prometheus package, which `make test` unpacks into .stack/; this
test unpacks it if it is missing rather than skipping, so a broken rule can never pass unseen.
"""

from __future__ import annotations

import subprocess

import pytest

from deploy.local import stack

pytestmark = pytest.mark.integration

RULES = stack.PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = sorted((stack.PROMETHEUS_DIR / "tests").glob("*.yml"))


@pytest.fixture(scope="module")
def promtool() -> str:
    return str(stack.provision_monitoring(stack.Layout()).promtool)


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_promtool_accepts_the_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_behaves_as_its_promtool_tests_say(promtool: str) -> None:
    assert RULE_TESTS
    result = run(promtool, "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_tests_catch_a_broken_rule(promtool: str, tmp_path) -> None:
    """The tests are not vacuous: the same tests against a rule that never fires fail."""
    broken = tmp_path / "alerts.yml"
    broken.write_text(
        RULES.read_text(encoding="utf-8").replace(
            "expr: max by (service, consumer) (baocao_dead_letters_waiting) > 0",
            "expr: max by (service, consumer) (baocao_dead_letters_waiting) > 1000",
        ),
        encoding="utf-8",
    )
    tests = tmp_path / "tests"
    tests.mkdir()
    for path in RULE_TESTS:
        (tests / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    result = run(promtool, "test", "rules", *(str(tests / p.name) for p in RULE_TESTS))
    assert result.returncode != 0
    assert "BaocaoDeadLetters" in result.stdout + result.stderr
