"""Review, locks, exceptions and extensions through the four services as processes.

The system's clock starts two and a half minutes before the 2027 six-month report is due
(before 15/6, local time), so that the due instant passes during the test: a report returned
before it and resubmitted after it keeps its timeliness, and an extension approved before it
holds back that unit's overdue notice. The 2026 annual period is long locked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.common.auth import Role
from tests.conftest import Servers
from tests.e2e import flow
from tests.e2e.conftest import SEED_PLAN, System, start_system
from tests.support import mailpit
from tests.support.auth import bearer
from tests.support.kafka import read_all
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

SIX_MONTHS = "kh-nq35-ngoc-hoi.2027.6-thang"
LOCKED = "kh-nq35-ngoc-hoi.2026.hang-nam"
DUE = dt.datetime(2027, 6, 14, 17, tzinfo=dt.UTC)
NEW_DUE = "2027-06-19T17:00:00Z"
OFFICE = bearer(Role.OFFICE, "phong-vhtt", subject="tonghop")
RETURNED, EXTENDED, PLAIN, SILENT, EXCEPTED = (
    "xa-dak-ang",
    "xa-sa-loong",
    "xa-dak-kan",
    "xa-bo-y",
    "xa-dak-nong",
)


def officer(unit_id: str) -> dict[str, str]:
    return bearer(Role.OFFICER, unit_id, subject=f"canbo-{unit_id}")


def calendar_day_seed(folder: Path) -> Path:
    """The seed plan with its kinds' reminders in the first form (calendar days, the overdue
    notice at the due instant). This module lets the due instant pass in real time and reads
    the overdue notices within a minute; the seed's working-day ladder sends its first one at
    08:00 on the next working day (tests/unit/test_deadlines_year.py covers that ladder)."""
    data = yaml.safe_load(SEED_PLAN.read_text(encoding="utf-8"))
    for kind in data["schedule"]:
        kind.pop("reminders", None)
    path = folder / SEED_PLAN.name
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def review_system(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    start = (DUE - dt.timedelta(seconds=100)).isoformat()
    plan = calendar_day_seed(tmp_path_factory.mktemp("plan"))
    system = start_system(servers, tmp_path_factory.mktemp("e2e"), [plan], start)
    yield system
    system.stop()


async def call(
    system: System, service: str, method: str, path: str, headers: dict[str, str], **kw: Any
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=system.url(service), timeout=30) as client:
        return await client.request(method, path, headers=headers, **kw)


async def file(system: System, period_id: str, unit_id: str, value: int = 3) -> httpx.Response:
    plan = flow.plan_of(system)
    body = flow.report_body(plan, period_id, unit_id, {"so-buoi-tuyen-truyen": value})
    return await call(
        system, "submissions", "POST", "/api/v1/submissions", officer(unit_id), json=body
    )


async def mail(system: System, unit_id: str, subject: str) -> list[dict[str, Any]]:
    unit = flow.plan_of(system).unit(unit_id)
    assert unit is not None
    address = next(c.email for c in unit.contacts if c.email)

    async def found() -> list[dict[str, Any]] | None:
        query = f'from:{system.sender} to:{address} subject:"{subject}"'
        return await mailpit.search(system.servers.mailpit_api, query) or None

    return await eventually(found, timeout=60, what=f"“{subject}” mailed to {unit_id}")


async def test_extension_and_a_return_resubmitted_after_the_due_instant(
    review_system: System,
) -> None:
    system = review_system
    unit_path = f"/api/v1/periods/{SIX_MONTHS}/units"

    # An extension, asked by the unit and approved by the office before the due instant ...
    asked = await call(
        system,
        "submissions",
        "POST",
        f"{unit_path}/{EXTENDED}/extension-request",
        officer(EXTENDED),
        json={"reason": "Cán bộ phụ trách nghỉ ốm.", "due_before": "2027-06-20"},
    )
    assert asked.status_code == 201, asked.text
    approved = await call(
        system,
        "submissions",
        "POST",
        f"{unit_path}/{EXTENDED}/extension-request/decision",
        OFFICE,
        json={"request_id": asked.json()["request_id"], "decision": "approve"},
    )
    assert approved.status_code == 200, approved.text

    # ... moves that unit's due instant in deadlines, from the event alone.
    async def moved() -> dict[str, Any] | None:
        response = await call(
            system, "deadlines", "GET", f"{unit_path}/{EXTENDED}", officer(EXTENDED)
        )
        body = response.json() if response.status_code == 200 else {}
        return body if body.get("due_at") == NEW_DUE else None

    in_deadlines = await eventually(moved, timeout=60, what="the new due instant in deadlines")
    assert in_deadlines["extended"] is True
    assert in_deadlines["period_due_at"] == "2027-06-14T17:00:00Z"

    # Versions and their diff; the latest returned with a comment before the due instant.
    first = await file(system, SIX_MONTHS, RETURNED, 3)
    assert first.status_code == 201, first.text
    assert first.json()["on_time"] is True, "the system started too late for this test"
    assert (await file(system, SIX_MONTHS, RETURNED, 5)).json()["revision"] == 2
    changed = await call(
        system, "submissions", "GET", f"{unit_path}/{RETURNED}/diff?from=1&to=2", OFFICE
    )
    indicators = [i for t in changed.json()["tasks"] for i in t["indicators"]]
    assert {(i["code"], i["before"]["value"], i["after"]["value"]) for i in indicators} == {
        ("so-buoi-tuyen-truyen", 3.0, 5.0)
    }
    returned = await call(
        system,
        "submissions",
        "POST",
        f"{unit_path}/{RETURNED}/review",
        OFFICE,
        json={"decision": "return", "revision": 2, "comment": "Ghi rõ địa bàn tổ chức."},
    )
    assert returned.status_code == 200, returned.text

    # The due instant passes.
    async def past_due() -> bool:
        response = await call(system, "deadlines", "GET", "/api/v1/periods", OFFICE)
        now = dt.datetime.fromisoformat(response.json()["now"])
        return now > DUE + dt.timedelta(seconds=5)

    await eventually(past_due, timeout=200, interval=1, what="the due instant to pass")

    # The resubmission keeps the returned version's timeliness; a plain late report is late.
    again = await file(system, SIX_MONTHS, RETURNED, 6)
    assert again.status_code == 201, again.text
    assert dt.datetime.fromisoformat(again.json()["received_at"]) > DUE
    assert (again.json()["revision"], again.json()["on_time"]) == (3, True)
    assert (await file(system, SIX_MONTHS, PLAIN)).json()["on_time"] is False
    extended = await file(system, SIX_MONTHS, EXTENDED)
    assert (extended.json()["on_time"], extended.json()["due_at"]) == (True, NEW_DUE)
    versions = await call(
        system, "submissions", "GET", f"{unit_path}/{RETURNED}/versions", officer(RETURNED)
    )
    assert [(v["revision"], v["on_time"]) for v in versions.json()["versions"]] == [
        (1, True),
        (2, True),
        (3, True),
    ]
    assert versions.json()["versions"][1]["review"]["decision"] == "returned"

    # deadlines: overdue notices for the units that did not report, not for the extended one.
    topic = system.topic("baocao.deadline-overdue.v1")

    async def overdue_units() -> set[str] | None:
        events = await read_all(system.servers.kafka_bootstrap, topic, until=1, timeout=10)
        units = {e["payload"]["unit_id"] for e in events if e["payload"]["period_id"] == SIX_MONTHS}
        return units if SILENT in units else None

    overdue = await eventually(overdue_units, timeout=60, what="overdue notices")
    assert EXTENDED not in overdue

    # consolidate judges each unit by its own due and the return rule.
    async def judged() -> dict[str, str] | None:
        response = await call(
            system, "consolidate", "GET", f"/api/v1/periods/{SIX_MONTHS}/preview", OFFICE
        )
        units = {u["unit_id"]: u for u in response.json()["units"]}
        if units[RETURNED].get("revision") != 3 or units[EXTENDED]["status"] == "missing":
            return None
        return {u: units[u]["status"] for u in (RETURNED, EXTENDED, PLAIN)}

    statuses = await eventually(judged, timeout=60, what="the projection to catch up")
    assert statuses == {RETURNED: "on_time", EXTENDED: "on_time", PLAIN: "late"}

    # notify told the units: the return with its comment, the extension approved.
    (returned_mail, *_) = await mail(system, RETURNED, "Trả lại để chỉnh sửa")
    full = await mailpit.message(system.servers.mailpit_api, returned_mail["ID"])
    assert "Ghi rõ địa bàn tổ chức." in full["Text"]
    await mail(system, EXTENDED, "Đồng ý gia hạn")


async def test_after_the_lock_an_exception_lets_the_unit_file(review_system: System) -> None:
    system = review_system
    refused = await file(system, LOCKED, EXCEPTED)
    assert (refused.status_code, refused.json()["code"]) == (409, "period_closed")

    granted = await call(
        system,
        "submissions",
        "POST",
        f"/api/v1/periods/{LOCKED}/units/{EXCEPTED}/exception",
        OFFICE,
        json={"reason": "Mất điện kéo dài do bão.", "until": "2027-06-20"},
    )
    assert granted.status_code == 201, granted.text

    filed = await file(system, LOCKED, EXCEPTED)
    assert filed.status_code == 201, filed.text
    assert filed.json()["on_time"] is False
    assert (await file(system, LOCKED, SILENT)).status_code == 409

    async def known_to_deadlines() -> dict[str, Any] | None:
        response = await call(
            system,
            "deadlines",
            "GET",
            f"/api/v1/periods/{LOCKED}/units/{EXCEPTED}",
            officer(EXCEPTED),
        )
        body = response.json() if response.status_code == 200 else {}
        return body if body.get("exception_until") else None

    seen = await eventually(known_to_deadlines, timeout=60, what="the exception in deadlines")
    assert seen["exception_until"] == "2027-06-20T17:00:00Z"
