"""Versions, review, exceptions and extensions through the submissions API, on the real
FerretDB and Kafka (the app runs in-process with its lifespan, under a fresh namespace)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts.topics import EXTENSION_DECIDED, FILING_EXCEPTION_GRANTED, REPORT_REVIEWED
from services.common.auth import Role
from services.common.clock import FixedClock
from services.common.kafka import Names
from services.submissions.app import build_app
from services.submissions.config import SubmissionsSettings
from tests.conftest import Servers
from tests.support.auth import bearer
from tests.support.kafka import read_all
from tests.support.submissions import SEED, SEED_OPEN_AT, SEED_PERIOD, report

pytestmark = pytest.mark.integration

UNIT, OTHER = "xa-bo-y", "xa-dak-ang"
DUE = dt.datetime(2027, 6, 14, 17, tzinfo=dt.UTC)  # before 15/6, local time
LOCK = DUE + dt.timedelta(days=15)
DAY = dt.timedelta(days=1)
BASE = f"/api/v1/periods/{SEED_PERIOD}/units"
OFFICE = bearer(Role.OFFICE, "phong-vhtt", subject="tonghop")
READER = bearer(Role.READER, subject="captinh")
ADMIN = bearer(Role.ADMIN, subject="quantri")


def officer(unit_id: str = UNIT) -> dict[str, str]:
    return bearer(Role.OFFICER, unit_id, subject=f"canbo-{unit_id}")


@dataclass
class Portal:
    app: FastAPI
    http: httpx.AsyncClient
    clock: FixedClock
    names: Names
    bootstrap: str

    async def file(self, results: str, value: float = 4, unit_id: str = UNIT) -> httpx.Response:
        body = report(results, unit_id=unit_id).model_dump(mode="json")
        body["tasks"][0]["indicators"][0]["value"] = value
        return await self.http.post("/api/v1/submissions", json=body, headers=officer(unit_id))

    async def events(self, topic: Any, count: int) -> list[dict[str, Any]]:
        return await read_all(self.bootstrap, self.names.topic(topic), until=count)

    async def audit(self, action: str) -> list[dict[str, Any]]:
        trail = (await self.http.get("/api/v1/audit", headers=ADMIN)).json()
        return [e for e in trail if e["action"] == action]


@pytest.fixture
async def portal(servers: Servers, namespace: str) -> AsyncIterator[Portal]:
    settings = SubmissionsSettings(
        namespace=namespace,
        kafka_bootstrap=servers.kafka_bootstrap,
        mongo_uri=servers.mongo_uri,
        plans=str(SEED),
    )
    clock = FixedClock(SEED_OPEN_AT)
    app = build_app(settings, clock=clock)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal") as http,
    ):
        try:
            yield Portal(app, http, clock, Names(namespace), servers.kafka_bootstrap)
        finally:
            await app.state.runtime.db.client.drop_database(app.state.runtime.db.name)


async def test_versions_their_diff_and_a_return_with_its_comment(portal: Portal) -> None:
    assert (await portal.file("Tổ chức 4 buổi.\nCó ảnh.", 4)).status_code == 201
    assert (await portal.file("Tổ chức 6 buổi.\nCó ảnh.", 6)).status_code == 201

    listed = await portal.http.get(f"{BASE}/{UNIT}/versions", headers=officer())
    assert listed.status_code == 200, listed.text
    versions = listed.json()
    assert versions["state"] == "submitted"
    assert [
        (v["revision"], v["on_time"], v["submitted_by"]["name"]) for v in versions["versions"]
    ] == [
        (1, True, "Nguyễn Thị Hà"),
        (2, True, "Nguyễn Thị Hà"),
    ]
    changed = (await portal.http.get(f"{BASE}/{UNIT}/diff?from=1&to=2", headers=READER)).json()
    (task,) = changed["tasks"]
    assert task["change"] == "changed"
    assert [(i["code"], i["before"], i["after"]) for i in task["indicators"]] == [
        ("so-buoi-tuyen-truyen", {"value": 4.0}, {"value": 6.0})
    ]
    assert [line["op"] for line in task["fields"][0]["lines"]] == ["delete", "insert", "equal"]
    missing = await portal.http.get(f"{BASE}/{UNIT}/diff?from=1&to=9", headers=OFFICE)
    assert (missing.status_code, missing.json()["code"]) == (404, "version_not_found")

    review = f"{BASE}/{UNIT}/review"
    no_comment = await portal.http.post(
        review, json={"decision": "return", "revision": 2}, headers=OFFICE
    )
    assert (no_comment.status_code, no_comment.json()["code"]) == (422, "comment_required")
    stale = await portal.http.post(
        review, json={"decision": "accept", "revision": 1}, headers=OFFICE
    )
    assert (stale.status_code, stale.json()["code"]) == (409, "stale_version")
    by_reader = await portal.http.post(
        review, json={"decision": "accept", "revision": 2}, headers=READER
    )
    assert by_reader.status_code == 403
    returned = await portal.http.post(
        review,
        json={"decision": "return", "revision": 2, "comment": "Ghi rõ địa bàn tổ chức."},
        headers=OFFICE,
    )
    assert returned.status_code == 200, returned.text
    assert returned.json()["resubmit_by"] == "2027-06-06T03:00:00Z"  # 5 days after

    portal.clock.at = SEED_OPEN_AT + DAY
    resubmitted = await portal.file("Tổ chức 6 buổi tại 3 thôn.\nCó ảnh.", 6)
    assert resubmitted.json()["revision"] == 3

    versions = (await portal.http.get(f"{BASE}/{UNIT}/versions", headers=OFFICE)).json()
    assert versions["state"] == "submitted"
    assert versions["versions"][1]["review"]["decision"] == "returned"
    assert versions["versions"][1]["review"]["comment"] == "Ghi rõ địa bàn tổ chức."
    (event,) = await portal.events(REPORT_REVIEWED, 1)
    assert (event["payload"]["decision"], event["payload"]["revision"]) == ("returned", 2)
    trail = await portal.audit("review")
    assert [e["details"]["decision"] for e in trail if e["outcome"] == "ok"] == ["returned"]
    # The refused attempts are there too, with why (the reader's 403 came before any of it).
    assert sorted(e["details"]["reason"] for e in trail if e["outcome"] == "refused") == [
        "comment_required",
        "stale_version",
    ]


async def test_a_prompt_resubmission_after_the_due_date_keeps_on_time(portal: Portal) -> None:
    portal.clock.at = DUE - 2 * DAY
    assert (await portal.file("Bản đầu")).json()["on_time"] is True
    portal.clock.at = DUE - DAY
    returned = await portal.http.post(
        f"{BASE}/{UNIT}/review",
        json={"decision": "return", "revision": 1, "comment": "Thiếu số liệu."},
        headers=OFFICE,
    )
    assert returned.status_code == 200, returned.text

    portal.clock.at = DUE + 2 * DAY  # late by the calendar, within the 5 days of the return
    again = await portal.file("Bản sửa")

    assert (again.json()["revision"], again.json()["on_time"]) == (2, True)
    standing = (await portal.http.get(f"{BASE}/{UNIT}/standing", headers=officer())).json()
    assert (standing["review_state"], standing["latest_revision"]) == ("submitted", 2)
    # Another unit's officer learns nothing, and is in the audit trail.
    foreign = await portal.http.get(f"{BASE}/{UNIT}/versions", headers=officer(OTHER))
    assert foreign.status_code == 404
    assert any(e["unit_id"] == UNIT for e in await portal.audit("denied"))


async def test_after_the_lock_only_an_exception_lets_the_unit_file(portal: Portal) -> None:
    portal.clock.at = LOCK + dt.timedelta(hours=2)
    refused = await portal.file("Gửi muộn")
    assert (refused.status_code, refused.json()["code"]) == (409, "period_closed")

    granted = await portal.http.post(
        f"{BASE}/{UNIT}/exception",
        json={"reason": "Mất điện kéo dài do bão.", "until": "2027-07-02"},
        headers=OFFICE,
    )
    assert granted.status_code == 201, granted.text
    assert granted.json()["until"] == "2027-07-02T17:00:00Z"
    assert granted.json()["in_force"] is True

    filed = await portal.file("Gửi theo ngoại lệ")
    assert filed.status_code == 201, filed.text
    assert filed.json()["on_time"] is False
    assert (await portal.file("Đơn vị khác", unit_id=OTHER)).status_code == 409
    listed = await portal.http.get(f"/api/v1/periods/{SEED_PERIOD}/exceptions", headers=READER)
    assert [e["unit_id"] for e in listed.json()] == [UNIT]
    (event,) = await portal.events(FILING_EXCEPTION_GRANTED, 1)
    assert event["payload"]["reason"] == "Mất điện kéo dài do bão."
    assert len(await portal.audit("exception")) == 1


async def test_an_approved_extension_moves_the_units_due_instant(portal: Portal) -> None:
    portal.clock.at = DUE - 3 * DAY
    path = f"{BASE}/{OTHER}/extension-request"
    by_office = await portal.http.post(
        path, json={"reason": "x", "due_before": "2027-06-20"}, headers=OFFICE
    )
    assert by_office.status_code == 403  # only the unit asks
    asked = await portal.http.post(
        path,
        json={"reason": "Cán bộ phụ trách nghỉ ốm.", "due_before": "2027-06-20"},
        headers=officer(OTHER),
    )
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["request_id"]
    assert asked.json()["state"] == "pending"
    twice = await portal.http.post(
        path, json={"reason": "Lần nữa.", "due_before": "2027-06-21"}, headers=officer(OTHER)
    )
    assert (twice.status_code, twice.json()["code"]) == (409, "request_pending")
    pending = await portal.http.get(
        f"/api/v1/periods/{SEED_PERIOD}/extension-requests", headers=OFFICE
    )
    assert [(r["unit_id"], r["state"]) for r in pending.json()] == [(OTHER, "pending")]

    decided = await portal.http.post(
        f"{path}/decision",
        json={"request_id": request_id, "decision": "approve"},
        headers=OFFICE,
    )

    assert decided.status_code == 200, decided.text
    new_due = "2027-06-19T17:00:00Z"
    assert (decided.json()["state"], decided.json()["new_due_at"]) == ("approved", new_due)
    portal.clock.at = DUE + 2 * DAY
    filed = await portal.file("Gửi trong hạn mới", unit_id=OTHER)
    assert (filed.json()["on_time"], filed.json()["due_at"]) == (True, new_due)
    assert (await portal.file("Không gia hạn")).json()["on_time"] is False
    standing = (await portal.http.get(f"{BASE}/{OTHER}/standing", headers=officer(OTHER))).json()
    assert (standing["extended"], standing["due_at"]) == (True, new_due)
    assert standing["closes_at"] == "2027-07-04T17:00:00Z"
    (event,) = await portal.events(EXTENSION_DECIDED, 1)
    assert (event["payload"]["decision"], event["payload"]["new_due_at"]) == ("approved", new_due)
    assert [e["details"]["decision"] for e in await portal.audit("extension_decided")] == [
        "approved"
    ]


async def test_another_units_report_answers_exactly_as_a_missing_one(portal: Portal) -> None:
    filed = await portal.file("Tổ chức 4 buổi tuyên truyền.")
    assert filed.status_code == 201, filed.text
    base = f"/api/v1/periods/{SEED_PERIOD}/submissions"

    other = await portal.http.get(f"{base}/{filed.json()['submission_id']}", headers=officer(OTHER))
    missing = await portal.http.get(f"{base}/{uuid.uuid4()}", headers=officer(OTHER))

    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()
    assert other.json()["code"] == "submission_not_found"
    denied = await portal.audit("denied")
    assert [(e["actor_unit"], e["unit_id"]) for e in denied] == [(OTHER, UNIT)]
