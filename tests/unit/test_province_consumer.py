"""The province's consumer (deploy/province/), built from the published contract alone."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.province.consumer import (
    CONTRACTS,
    DETAIL_SCHEMA,
    TOPIC,
    Province,
    handle,
    recompute,
    summary,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "tests" / "contracts" / "payloads"
FIXTURE = PAYLOADS / f"{TOPIC}.2026-11.json"
DETAIL = (PAYLOADS / f"{DETAIL_SCHEMA}.2026-11.json").read_bytes()
DOCX = b"PK\x03\x04 the DOCX"


def province() -> Province:
    return Province.from_contracts(CONTRACTS, "http://portal", None)


def raw(version: int = 1, **payload: object) -> dict[str, Any]:
    base = json.loads(FIXTURE.read_text())
    base["payload"] = {**base["payload"], "version": version, **payload}
    return base


def event(version: int, **payload: object) -> bytes:
    return json.dumps(raw(version, **payload)).encode()


def served(files: dict[str, bytes]) -> httpx.AsyncClient:
    """A client whose GETs are answered from ``files`` by the URL's last segment."""

    def answer(request: httpx.Request) -> httpx.Response:
        name = request.url.path.rsplit("/", 1)[-1]
        return httpx.Response(200, content=files[name]) if name in files else httpx.Response(404)

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


def with_docx(base: dict[str, Any]) -> dict[str, Any]:
    """The fixture's event naming the DOCX this test serves."""
    document = base["payload"]["document"]
    document.update(sha256=hashlib.sha256(DOCX).hexdigest(), size=len(DOCX))
    return base


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


def test_it_reads_v2_whose_detail_is_a_file() -> None:
    assert TOPIC == "baocao.report-consolidated.v2"
    asyncapi = json.loads((CONTRACTS / "asyncapi.json").read_text())
    assert TOPIC in asyncapi["channels"]
    assert asyncapi["components"]["schemas"]["ReportDetailV2"] == {
        "$ref": f"schemas/{DETAIL_SCHEMA}.json"
    }


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


def test_an_envelope_without_its_identity_or_a_v2_without_its_detail_is_refused() -> None:
    base = raw()
    for field in ("event_id", "event_type", "schema_version"):
        missing = {k: v for k, v in base.items() if k != field}
        accepted, note = province().accept(json.dumps(missing).encode())
        assert accepted is None, field
        assert field in note
    base["payload"].pop("detail")
    accepted, note = province().accept(json.dumps(base).encode())
    assert accepted is None and "detail" in note


async def test_a_version_is_checked_against_its_docx_and_its_detail_and_recomputed() -> None:
    value = json.dumps(with_docx(raw())).encode()
    files = {"bao-cao-kh-nq35-ngoc-hoi.2027.6-thang-v1.docx": DOCX}
    files["chi-tiet-kh-nq35-ngoc-hoi.2027.6-thang-v1.json"] = DETAIL
    async with served(files) as http:
        line = await handle(province(), http, value)
    assert line.startswith("kh-nq35-ngoc-hoi.2027.6-thang v1: 1/2 units reported"), line
    assert "document ok" in line and "detail ok (2 units" in line, line
    assert "1 indicator(s) recomputed, all agree" in line, line


@pytest.mark.parametrize(
    ("detail", "says"),
    [
        (DETAIL.replace(b"3.0", b"4.0"), "SHA-256 MISMATCH"),
        (None, "download failed: HTTP 404"),
    ],
)
async def test_a_detail_file_that_is_not_the_one_named_is_refused(
    detail: bytes | None, says: str
) -> None:
    files = {"bao-cao-kh-nq35-ngoc-hoi.2027.6-thang-v1.docx": DOCX}
    if detail is not None:
        files["chi-tiet-kh-nq35-ngoc-hoi.2027.6-thang-v1.json"] = detail
    async with served(files) as http:
        line = await handle(province(), http, json.dumps(with_docx(raw())).encode())
    assert f"detail: {says}" in line and "recomputed" not in line, line


async def test_a_detail_that_does_not_add_up_to_the_event_is_refused() -> None:
    # The same file named honestly (its own SHA-256 and size) by an event with other counts.
    base = with_docx(raw(on_time=0, late=1))
    async with served(
        {
            "bao-cao-kh-nq35-ngoc-hoi.2027.6-thang-v1.docx": DOCX,
            "chi-tiet-kh-nq35-ngoc-hoi.2027.6-thang-v1.json": DETAIL,
        }
    ) as http:
        line = await handle(province(), http, json.dumps(base).encode())
    assert "detail REFUSED units (expected, on time, late, missing) (2, 1, 0, 1)" in line, line


def test_a_rate_is_recomputed_from_the_units_answers_by_its_rule() -> None:
    answers = [
        {"unit_id": "xa-tan-lap", "value": 90.0, "weight": 1200},
        {"unit_id": "phuong-hai-lam", "value": 96.0, "weight": 3000},
        {"unit_id": "dac-khu-hon-ngoc", "value": 75.0, "weight": 800},
        {"unit_id": "cong-an-tinh", "value": 0.0, "weight": None},  # no weight: left out
    ]
    weighted = recompute({"aggregation": "weighted_mean"}, answers)
    assert weighted == pytest.approx((1200 * 90 + 3000 * 96 + 800 * 75) / 5000)  # 91.2
    assert recompute({"aggregation": "sum"}, answers) == pytest.approx(261.0)
    assert recompute({"aggregation": "mean"}, answers) == pytest.approx(65.25)
    flags = [{"value": 1.0, "flag": True}, {"value": 0.0, "flag": False}, {"value": 1.0}]
    assert recompute({"aggregation": "count_yes"}, flags) == 2.0
    assert recompute({"aggregation": "list"}, answers) is None
    assert recompute({"aggregation": "weighted_mean"}, answers[3:]) is None
