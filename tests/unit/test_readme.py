"""The README documents every setting a service reads (and the two commands)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from services.consolidate.config import ConsolidateSettings
from services.deadlines.config import DeadlinesSettings
from services.notify.config import NotifySettings
from services.submissions.config import SubmissionsSettings

pytestmark = pytest.mark.unit

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def env_names(settings: type[BaseSettings]) -> set[str]:
    prefix = settings.model_config.get("env_prefix", "")
    names = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else f"{prefix}{name}".upper())
    return names


@pytest.mark.parametrize(
    "settings", [SubmissionsSettings, DeadlinesSettings, NotifySettings, ConsolidateSettings]
)
def test_every_environment_variable_is_in_the_readme(settings: type[BaseSettings]) -> None:
    missing = sorted(n for n in env_names(settings) if f"`{n}`" not in README)
    assert not missing, f"add to the README's configuration table: {missing}"


def test_the_quick_start_is_two_commands() -> None:
    assert "make up" in README
    assert "make test" in README
