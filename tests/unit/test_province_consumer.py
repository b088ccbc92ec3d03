"""The province's consumer (deploy/province/), built from the published contract alone."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from deploy.province.consumer import CONTRACTS, TOPIC, Province, summary

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "contracts" / "payloads" / f"{TOPIC}.2026-11.json"


def province() -> Province:
    schema = json.loads((CONTRACTS / "schemas" / f"{TOPIC}.json").read_text())
    return Province(Draft202012Validator(schema), "http://portal", None)


def event(version: int, **payload: object) -> bytes:
    base = json.loads(FIXTURE.read_text())
    base["payload"] = {**base["payload"], "version": version, **payload}
    return json.dumps(base).encode()


def test_it_imports_nothing_of_baocao() -> None:
    source = (ROOT / "deploy" / "province" / "consumer.py").read_text()
    imported = {
        (node.module or "").split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert not imported & {"contracts", "services", "tests", "deploy", "bench"}


def test_the_highest_version_of_a_period_wins_whatever_the_arrival_order() -> None:
    p = province()
    second, note = p.accept(event(2, supersedes="r-1"))
    assert second is not None, note
    first, note = p.accept(event(1))
    assert first is None and note.startswith("SKIPPED")
    again, _ = p.accept(event(2, supersedes="r-1"))  # a redelivery
    assert again is None
    assert "v2 supersedes r-1" in summary(second, "no document")


@pytest.mark.parametrize(
    ("broken", "where"),
    [
        (b"{not json", "not JSON"),
        (json.dumps({"payload": {}}).encode(), "invalid at"),
    ],
)
def test_what_breaks_the_contract_is_refused_with_where(broken: bytes, where: str) -> None:
    accepted, note = province().accept(broken)
    assert accepted is None
    assert note.startswith("REFUSED") and where in note


def test_an_envelope_without_its_identity_is_refused() -> None:
    base = json.loads(FIXTURE.read_text())
    for field in ("event_id", "event_type", "schema_version"):
        missing = {k: v for k, v in base.items() if k != field}
        accepted, note = province().accept(json.dumps(missing).encode())
        assert accepted is None, field
        assert field in note
