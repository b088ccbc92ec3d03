"""The district report end to end: units file (on time, late, one corrected, a percentage
weighted by households), the period closes, the province's consumer (``deploy/province``,
its own functions, nothing of baocao's) receives version 1 on ``ReportConsolidated`` v2,
downloads the DOCX and the per-unit detail file, checks both SHA-256 and recomputes the
weighted percentage from the units' answers; v1, published beside it at a district's size,
says the same; the DOCX read back is the official report; the PDF exists with the same
sections and its first page is kept as a PNG under ``.stack/artifacts/``. A unit filing after
the close (under an exception) makes version 2, which supersedes version 1.

The province plan is used because it has a percentage indicator (the seed plan has none). The
system runs twice on the same data: first a minute before the due instant (on-time reports),
then restarted shortly before the lock (late reports, the correction, the close).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docx
import httpx
import pytest

from deploy.province import consumer as province
from services.common.auth import Role
from services.common.periods import find_period
from services.common.reference import load_plan
from services.consolidate.docx_report import SECTION_HEADINGS
from tests.conftest import Servers
from tests.e2e import flow
from tests.e2e.conftest import PROVINCE_PLAN, ROOT, SERVICES, System
from tests.support import mailpit
from tests.support.auth import bearer
from tests.support.kafka import read_all
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

Q2 = "kh-ttcs-hai-lam.2027.quy.q2"
PERCENTAGE, HOUSEHOLDS = "ty-le-ho-tiep-can-thong-tin", "so-ho-gia-dinh"
OFFICE = bearer(Role.OFFICE, "so-vhttdl", subject="tonghop")
READER = bearer(Role.READER, subject="captinh")
LEADERSHIP = "vanthu@hailam.example"
"""UBND tỉnh, above the consolidating department: told of every version of the report."""
ARTIFACTS = ROOT / ".stack" / "artifacts"


def launch_all(system: System) -> None:
    # The files' URLs in the event must lead to this system's consolidate, not the stack's.
    for service in SERVICES:
        system.launch(service, BAOCAO_CONSOLIDATE_PUBLIC_URL=system.url("consolidate"))
    for service in SERVICES:
        system.wait_ready(service, timeout=180)  # a loaded machine: readiness waits on Kafka


@pytest.fixture(scope="module")
def report_system(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    plan = load_plan(PROVINCE_PLAN)
    period = find_period(plan, Q2)
    assert period is not None
    start = (period.due_at - dt.timedelta(seconds=120)).isoformat()
    namespace = "e2e" + uuid.uuid4().hex[:10]
    tmp = tmp_path_factory.mktemp("e2e")
    system = System(servers, namespace, [PROVINCE_PLAN], start, tmp / namespace)
    try:
        launch_all(system)
        yield system
    finally:
        system.stop()


def restart_at(system: System, clock_start: dt.datetime) -> None:
    system.clock_start = clock_start.isoformat()
    for service in SERVICES:
        system.halt(service)
    launch_all(system)


async def file(system: System, unit_id: str, households: int, share: float) -> dict[str, Any]:
    plan = flow.plan_of(system)
    body = flow.report_body(plan, Q2, unit_id, {HOUSEHOLDS: households, PERCENTAGE: share})
    for task in body["tasks"]:
        task["results"] = f"{unit_id}: kết quả nhiệm vụ {task['task_id']}, lần {share:g}."
    return await flow.submit(system, body)


async def reports_for_province(
    system: System, count: int, topic: str = flow.V2
) -> list[dict[str, Any]]:
    events = await read_all(
        system.servers.kafka_bootstrap, system.topic(topic), until=count, timeout=240
    )
    return [e for e in events if e["payload"]["period_id"] == Q2]


async def v1_of(system: System, version: int) -> dict[str, Any]:
    """The same version on v1: a district's report fits in a record, so it is there too."""
    found = await reports_for_province(system, version, flow.V1)
    return next(e["payload"] for e in found if e["payload"]["version"] == version)


async def download(url: str) -> bytes:
    async with httpx.AsyncClient(timeout=60, headers=READER) as http:
        response = await http.get(url)
    assert response.status_code == 200, response.text
    return response.content


def text_of(data: bytes) -> list[str]:
    document = docx.Document(io.BytesIO(data))
    texts = [p.text for p in document.paragraphs]
    for table in document.tables:
        texts += [p.text for cell in table._cells for p in cell.paragraphs]
    return texts


def pdf_text_and_first_page(pdf_path: Path) -> str:
    """The PDF's text, and its page 1 as a PNG beside it (``…-trang-1.png``)."""
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "80",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(pdf_path),
            str(pdf_path.with_name(pdf_path.stem + "-trang-1")),
        ],
        check=True,
    )
    return subprocess.run(
        ["pdftotext", "-layout", str(pdf_path), "-"], capture_output=True, text=True, check=True
    ).stdout


def weighted(figures: dict[str, tuple[int, float]]) -> float:
    households = sum(h for h, _ in figures.values())
    return sum(h * s for h, s in figures.values()) / households


async def test_the_province_receives_versions_of_the_official_report(
    report_system: System,
) -> None:
    system = report_system
    plan = flow.plan_of(system)
    period = find_period(plan, Q2)
    assert period is not None

    # Before the due instant: on time.
    for unit_id in ("xa-tan-lap", "phuong-hai-lam", "so-khcn"):
        assert (await file(system, unit_id, 1200 if unit_id == "xa-tan-lap" else 3000, 90.0))[
            "on_time"
        ] is True

    # Shortly before the lock: late reports and a correction, then the close.
    restart_at(system, period.closes_at - dt.timedelta(seconds=150))
    late = await file(system, "dac-khu-hon-ngoc", 800, 75.0)
    assert late["on_time"] is False
    assert (await file(system, "cong-an-tinh", 0, 0.0))["on_time"] is False
    corrected = await file(system, "phuong-hai-lam", 3000, 96.0)
    assert corrected["revision"] == 2
    figures = {"xa-tan-lap": (1200, 90.0), "phuong-hai-lam": (3000, 96.0)}
    figures["dac-khu-hon-ngoc"] = (800, 75.0)

    # Version 1, at the close, read and checked by the province's own consumer functions.
    side = province.Province.from_contracts(ROOT / "contracts", system.url("submissions"), None)
    side._access = READER["Authorization"].removeprefix("Bearer ")
    [first] = await reports_for_province(system, 1)
    async with httpx.AsyncClient(timeout=60) as http:
        printed = await province.handle(side, http, json.dumps(first).encode())
    assert printed.startswith(f"{Q2} v1: 5/"), printed
    assert "document ok" in printed and "detail ok" in printed, printed
    assert "indicator(s) recomputed, all agree" in printed, printed
    v1 = await flow.with_detail(system, first["payload"])
    flow.same_as_v1(v1, await v1_of(system, 1))
    assert (v1["version"], v1["trigger"], v1["supersedes"]) == (1, "period_closed", None)
    expected = len(plan.reporting_units())
    assert flow.counts(v1) == (expected, 5, 3, 2, expected - 5)
    statuses = {u["unit_id"]: u["status"] for u in v1["units"]}
    assert statuses["phuong-hai-lam"] == "on_time" and statuses["cong-an-tinh"] == "late"
    totals = {t["code"]: t for t in v1["indicator_totals"]}
    assert totals[PERCENTAGE]["value"] == pytest.approx(weighted(figures))  # 91.2
    assert province.recompute(totals[PERCENTAGE], totals[PERCENTAGE]["values"]) == pytest.approx(
        weighted(figures)
    )
    assert totals[HOUSEHOLDS]["value"] == 5000
    document = v1["document"]

    docx_bytes = await download(document["url"])
    assert hashlib.sha256(docx_bytes).hexdigest() == document["sha256"]
    texts = text_of(docx_bytes)
    joined = "\n".join(texts)
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in joined
    assert any(t.strip() == "BÁO CÁO" for t in texts)
    assert any("quý II năm 2027" in t and "Kết quả thực hiện Kế hoạch" in t for t in texts)
    assert "DỰ THẢO" not in joined  # a closing version is not a draft
    assert "Nơi nhận:" in joined and "PHÓ CHỦ TỊCH" in joined
    assert "TM. ỦY BAN NHÂN DÂN" in joined
    # Each reporting unit's results under the task it reported on.
    names = {u.id: u.name for u in plan.units}
    for task in v1["tasks"]:
        heading = next(i for i, t in enumerate(texts) if t.startswith(f"{task['section']}. "))
        for entry in task["entries"]:
            line = next(
                i
                for i, t in enumerate(texts)
                if i > heading
                and t.startswith(f"- {names[entry['unit_id']]}")
                and entry["results"] in t
            )
            assert line > heading
    assert "phuong-hai-lam: kết quả nhiệm vụ" in joined and "lần 96" in joined

    # After the close, a unit allowed to file late makes version 2, superseding version 1.
    async with httpx.AsyncClient(base_url=system.url("submissions"), timeout=30) as http:
        granted = await http.post(
            f"/api/v1/periods/{Q2}/units/xa-binh-son/exception",
            headers=OFFICE,
            json={"reason": "Mất điện kéo dài do bão.", "until": "2027-06-30"},
        )
    assert granted.status_code == 201, granted.text
    await file(system, "xa-binh-son", 950, 80.0)
    figures["xa-binh-son"] = (950, 80.0)

    async def second() -> dict[str, Any] | None:
        found = await reports_for_province(system, 2)
        return next((e for e in found if e["payload"]["version"] == 2), None)

    v2_event = await eventually(second, timeout=240, what="version 2 of the report")
    async with httpx.AsyncClient(timeout=60) as http:
        printed = await province.handle(side, http, json.dumps(v2_event).encode())
    assert printed.startswith(f"{Q2} v2 supersedes {v1['report_id']}: 6/"), printed
    assert "detail ok" in printed and "all agree" in printed, printed
    v2 = await flow.with_detail(system, v2_event["payload"])
    flow.same_as_v1(v2, await v1_of(system, 2))
    assert v2["supersedes"] == v1["report_id"]
    assert flow.counts(v2) == (expected, 6, 3, 3, expected - 6)
    totals = {t["code"]: t for t in v2["indicator_totals"]}
    assert totals[PERCENTAGE]["value"] == pytest.approx(weighted(figures))
    assert v2["document"]["sha256"] != document["sha256"]
    assert v2["detail"]["sha256"] != v1["detail"]["sha256"]
    v2_docx = await download(v2["document"]["url"])
    assert hashlib.sha256(v2_docx).hexdigest() == v2["document"]["sha256"]
    assert any(t.startswith("- UBND xã Bình Sơn") or "Bình Sơn" in t for t in text_of(v2_docx))

    # notify reads v2: the province's leadership is told of both versions.
    async def told() -> list[dict[str, Any]] | None:
        found = await mailpit.search(
            system.servers.mailpit_api,
            f'from:{system.sender} to:{LEADERSHIP} subject:"Báo cáo tổng hợp"',
        )
        return found if len(found) >= 2 else None

    notices = await eventually(told, timeout=90, what="the leadership's notice of each version")
    assert sorted("(phiên bản 2)" in m["Subject"] for m in notices) == [False, True]

    # The PDF of version 1: same sections, page 1 kept for a person to look at (last: without
    # LibreOffice the test ends here, skipped).
    pdfs = [f for f in document["files"] if f["media_type"] == "application/pdf"]
    if shutil.which("soffice") is None:
        pytest.skip("LibreOffice is not installed: the report says so in document.missing")
    [pdf] = pdfs
    pdf_bytes = await download(pdf["url"])
    assert hashlib.sha256(pdf_bytes).hexdigest() == pdf["sha256"] and pdf_bytes[:5] == b"%PDF-"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf_path = ARTIFACTS / f"bao-cao-{Q2}-v1.pdf"
    pdf_path.write_bytes(pdf_bytes)
    pdf_text = pdf_text_and_first_page(pdf_path)
    assert [h for h in SECTION_HEADINGS if h in pdf_text] == list(SECTION_HEADINGS)
    assert (ARTIFACTS / f"bao-cao-{Q2}-v1-trang-1.png").stat().st_size > 10_000
