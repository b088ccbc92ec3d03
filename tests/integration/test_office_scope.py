"""Office staff act on the plans their unit consolidates: with two plans loaded, the district
office reviews the district plan's reports, and the province's office (another plan's
consolidating unit) gets 404 for them, every attempt in the audit trail. Submissions in-process
on the real FerretDB and Kafka, under a fresh namespace."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.common.auth import Role
from services.common.clock import FixedClock
from services.consolidate.app import build_app as consolidate_app
from services.consolidate.config import ConsolidateSettings
from services.deadlines.app import build_app as deadlines_app
from services.deadlines.config import DeadlinesSettings
from services.notify.app import build_app as notify_app
from services.notify.config import NotifySettings
from services.submissions.app import build_app
from services.submissions.config import SubmissionsSettings
from tests.conftest import Servers
from tests.integration.test_notify_ledger_list import outgoing
from tests.support.auth import bearer
from tests.support.in_process import serving
from tests.support.submissions import SEED, SEED_OPEN_AT, SEED_PERIOD, report

pytestmark = pytest.mark.integration

PROVINCE_PLAN = (
    Path(__file__).resolve().parents[1] / "fixtures" / "plans" / "kh-tinh-hai-cap-quy.yaml"
)
UNIT = "xa-bo-y"
DISTRICT_OFFICE = bearer(Role.OFFICE, "phong-vhtt", subject="tonghop")  # the seed plan's
PROVINCE_OFFICE = bearer(Role.OFFICE, "so-vhttdl", subject="tonghop-tinh")  # the other plan's
ADMIN = bearer(Role.ADMIN, subject="quantri")
BASE = f"/api/v1/periods/{SEED_PERIOD}/units/{UNIT}"


@dataclass
class Portal:
    app: FastAPI
    http: httpx.AsyncClient

    async def denied(self) -> list[dict[str, Any]]:
        trail = (await self.http.get("/api/v1/audit", headers=ADMIN)).json()
        return [e for e in trail if e["action"] == "denied"]


@pytest.fixture
async def portal(servers: Servers, namespace: str) -> AsyncIterator[Portal]:
    settings = SubmissionsSettings(
        namespace=namespace,
        kafka_bootstrap=servers.kafka_bootstrap,
        mongo_uri=servers.mongo_uri,
        plans=f"{SEED},{PROVINCE_PLAN}",
    )
    app = build_app(settings, clock=FixedClock(SEED_OPEN_AT))
    async with serving(app) as http:
        yield Portal(app, http)


async def test_another_plans_office_cannot_read_review_or_grant_and_is_audited(
    portal: Portal,
) -> None:
    body = report("Tổ chức 4 buổi tuyên truyền.", unit_id=UNIT).model_dump(mode="json")
    filed = await portal.http.post(
        "/api/v1/submissions",
        json=body,
        headers=bearer(Role.OFFICER, UNIT, subject="canbo-bo-y"),
    )
    assert filed.status_code == 201, filed.text
    receipt = f"/api/v1/periods/{SEED_PERIOD}/submissions/{filed.json()['submission_id']}"
    review = {"decision": "accept", "revision": 1}
    exception = {"reason": "Mất điện", "until": "2027-07-30"}
    attempts = [
        ("GET", receipt, None),
        ("GET", f"{BASE}/versions", None),
        ("GET", f"{BASE}/standing", None),
        ("POST", f"{BASE}/review", review),
        ("POST", f"{BASE}/exception", exception),
        ("GET", f"/api/v1/periods/{SEED_PERIOD}/exceptions", None),
        ("GET", f"/api/v1/periods/{SEED_PERIOD}/extension-requests", None),
        ("GET", f"/periods/{SEED_PERIOD}/status", None),  # the office's page of the period
    ]

    for method, path, payload in attempts:
        answer = await portal.http.request(method, path, json=payload, headers=PROVINCE_OFFICE)
        assert answer.status_code == 404, (path, answer.text)
    denied = await portal.denied()
    assert len(denied) == len(attempts)
    assert {(e["actor"], e["period_id"], e["details"]["reason"]) for e in denied} == {
        ("tonghop-tinh", SEED_PERIOD, "plan")
    }

    # Nothing was decided by them; the plan's own office still reads, reviews and grants.
    for method, path, payload in attempts:
        answer = await portal.http.request(method, path, json=payload, headers=DISTRICT_OFFICE)
        assert answer.status_code in (200, 201), (path, answer.text)
    versions = (await portal.http.get(f"{BASE}/versions", headers=DISTRICT_OFFICE)).json()
    assert versions["versions"][0]["review"]["reviewer"] == "tonghop"


async def test_an_office_lists_only_the_periods_of_plans_it_consolidates(portal: Portal) -> None:
    district = await portal.http.get("/api/v1/periods", headers=DISTRICT_OFFICE)
    province = await portal.http.get("/api/v1/periods", headers=PROVINCE_OFFICE)

    assert district.status_code == province.status_code == 200
    assert {p["plan_id"] for p in district.json()} == {"kh-nq35-ngoc-hoi"}
    assert "kh-nq35-ngoc-hoi" not in {p["plan_id"] for p in province.json()}


@pytest.fixture
async def others(servers: Servers, namespace: str) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """deadlines, consolidate and notify with the same two plans, in-process on the real
    servers."""
    common: dict[str, Any] = {
        "namespace": namespace,
        "kafka_bootstrap": servers.kafka_bootstrap,
        "mongo_uri": servers.mongo_uri,
        "plans": f"{SEED},{PROVINCE_PLAN}",
    }
    clock = FixedClock(SEED_OPEN_AT)
    apps = {
        "deadlines": deadlines_app(DeadlinesSettings(**common), clock=clock),
        "consolidate": consolidate_app(ConsolidateSettings(**common), clock=clock),
        "notify": notify_app(NotifySettings(**common), clock=clock),
    }
    async with AsyncExitStack() as stack:
        clients = {
            name: await stack.enter_async_context(serving(app, f"http://{name}"))
            for name, app in apps.items()
        }
        yield clients | {"notify-app": apps["notify"]}  # type: ignore[dict-item]


async def test_deadlines_and_consolidate_keep_another_plans_office_out(
    others: dict[str, httpx.AsyncClient],
) -> None:
    period = f"/api/v1/periods/{SEED_PERIOD}"
    attempts = [
        ("deadlines", "GET", f"{period}/units/{UNIT}"),
        ("deadlines", "GET", f"{period}/schedule"),
        ("consolidate", "GET", f"{period}/preview"),
        ("consolidate", "GET", f"{period}/status"),
        ("consolidate", "GET", f"{period}/reports"),
        ("consolidate", "POST", f"{period}/consolidate"),
        ("consolidate", "GET", f"/periods/{SEED_PERIOD}/status"),
    ]
    for service, method, path in attempts:
        answer = await others[service].request(method, path, headers=PROVINCE_OFFICE)
        assert answer.status_code == 404, (service, path, answer.text)
        unknown = await others[service].request(
            method, path.replace(SEED_PERIOD, "kh-khong-co.2027.nam"), headers=PROVINCE_OFFICE
        )
        # As for a period that does not exist: nothing says the plan is there.
        assert (unknown.status_code, unknown.json()["code"]) == (404, answer.json()["code"])
    for service, method, path in attempts:
        answer = await others[service].request(method, path, headers=DISTRICT_OFFICE)
        assert answer.status_code in (200, 202), (service, path, answer.text)

    listed = await others["deadlines"].get("/api/v1/periods", headers=PROVINCE_OFFICE)
    assert listed.status_code == 200
    assert "kh-nq35-ngoc-hoi" not in {p["plan_id"] for p in listed.json()["periods"]}
    assert {p["plan_id"] for p in listed.json()["periods"]} == {"kh-ttcs-hai-lam"}


async def test_notify_lists_each_office_the_notices_of_its_own_plans(
    others: dict[str, Any],
) -> None:
    ledger = others["notify-app"].state.delivery.ledger
    at = SEED_OPEN_AT
    for plan_id, unit_id in (("kh-nq35-ngoc-hoi", UNIT), ("kh-ttcs-hai-lam", "xa-mot")):
        notice = outgoing(UNIT, SEED_PERIOD)
        notice = dataclasses.replace(
            notice, plan_id=plan_id, unit_id=unit_id, notification_id=f"{plan_id}|{unit_id}"
        )
        assert await ledger.claim(notice, "here:1", at, dt.timedelta(minutes=2))

    def plans(answer: httpx.Response) -> set[str]:
        assert answer.status_code == 200, answer.text
        return {n["plan_id"] for n in answer.json()}

    notify = others["notify"]
    assert plans(await notify.get("/api/v1/notifications", headers=DISTRICT_OFFICE)) == {
        "kh-nq35-ngoc-hoi"
    }
    assert plans(await notify.get("/api/v1/notifications", headers=PROVINCE_OFFICE)) == {
        "kh-ttcs-hai-lam"
    }
    assert plans(await notify.get("/api/v1/notifications", headers=ADMIN)) == {
        "kh-nq35-ngoc-hoi",
        "kh-ttcs-hai-lam",
    }
