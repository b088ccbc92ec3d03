"""The audit trail as admins read it (filters, older months) and a filed report's record
surviving a failed first answer; submissions in-process on the real FerretDB and Kafka."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.common.auth import Role
from services.submissions.audit import Action, AuditTrail
from tests.conftest import Servers
from tests.support.auth import bearer
from tests.support.portal import ADMIN, OFFICE, OFFICER, UNIT, Portal, running_portal
from tests.support.submissions import SEED_OPEN_AT, report

pytestmark = pytest.mark.integration

JANUARY = dt.datetime(2027, 1, 10, 2, tzinfo=dt.UTC)  # five months before the portal's "now"
AS_ADMIN = bearer(Role.ADMIN, subject="quantri")


@pytest.fixture
async def portal(servers: Servers, namespace: str) -> AsyncIterator[Portal]:
    async with running_portal(servers, namespace, [OFFICER, OFFICE, ADMIN]) as running:
        yield running


async def trail(http: httpx.AsyncClient, **params: Any) -> httpx.Response:
    return await http.get("/api/v1/audit", params=params, headers=AS_ADMIN)


async def test_admins_filter_the_trail_by_actor_unit_action_and_days_of_older_months(
    portal: Portal,
) -> None:
    portal.clock.at = JANUARY
    async with portal.client() as http:
        assert (await portal.sign_in_api(http, "canbo")).status_code == 200
        portal.clock.advance(dt.timedelta(minutes=1))
        assert (await portal.sign_in_api(http, "tonghop", "sai-mat-khau-1")).status_code == 401
    portal.clock.at = SEED_OPEN_AT
    async with portal.client() as http:
        assert (await portal.sign_in_api(http, "tonghop")).status_code == 200

        recent = await trail(http)  # this month and last only
        january = await trail(http, **{"from": "2027-01-01", "to": "2027-01-31"})
        by_actor = await trail(http, actor="canbo", **{"from": "2027-01-01"})
        by_unit = await trail(http, unit=UNIT, **{"from": "2026-12-01"})
        failed = await trail(http, action="sign_in_failed", **{"from": "2027-01-01"})
        newest = await trail(http, limit=1, **{"from": "2027-01-01"})
        backwards = await trail(http, **{"from": "2027-02-01", "to": "2027-01-01"})
        unknown_action = await trail(http, action="khong-co")

    def seen(answer: httpx.Response) -> list[tuple[str, str]]:
        assert answer.status_code == 200, answer.text
        return [(e["action"], e["actor"]) for e in answer.json()]

    assert seen(recent) == [("sign_in", "tonghop")]
    assert seen(january) == [("sign_in_failed", "tonghop"), ("sign_in", "canbo")]
    assert seen(by_actor) == [("sign_in", "canbo")]
    assert seen(by_unit) == [("sign_in", "canbo")]  # by the unit's officer
    assert seen(failed) == [("sign_in_failed", "tonghop")]
    assert seen(newest) == [("sign_in", "tonghop")]
    assert (backwards.status_code, backwards.json()["code"]) == (422, "invalid_range")
    assert unknown_action.status_code == 422


async def test_the_admin_page_has_the_same_filters(portal: Portal) -> None:
    portal.clock.at = JANUARY
    async with portal.client() as http:
        assert (await portal.sign_in_api(http, "canbo")).status_code == 200
    portal.clock.at = SEED_OPEN_AT
    async with portal.client(headers=AS_ADMIN) as http:
        assert (await portal.sign_in_api(http, "tonghop")).status_code == 200
        january = await http.get(
            "/admin/audit", params={"actor": "canbo", "from": "2027-01-01", "to": "", "action": ""}
        )
        default = await http.get("/admin/audit")
        bad = await http.get("/admin/audit", params={"from": "01/2027"})

    assert january.status_code == 200, january.text
    assert ">canbo" in january.text and ">tonghop" not in january.text
    assert 'value="2027-01-01"' in january.text  # the form keeps what was asked
    assert ">tonghop" in default.text and ">canbo" not in default.text
    assert bad.status_code == 422
    assert "Bộ lọc không hợp lệ" in bad.text


async def test_a_report_whose_audit_record_failed_is_recorded_on_its_idempotent_retry(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    audit: AuditTrail = portal.app.state.audit
    real = audit.record
    failures = [RuntimeError("the audit store is away")]

    async def flaky(action: Action, **kwargs: Any) -> Any:
        if action is Action.SUBMISSION and failures:
            raise failures.pop()
        return await real(action, **kwargs)

    monkeypatch.setattr(audit, "record", flaky)
    body = report(unit_id=UNIT).model_dump(mode="json")
    headers = {**bearer(Role.OFFICER, UNIT, subject="canbo"), "Idempotency-Key": "lan-gui-1"}

    async with portal.client(headers=headers) as http:
        with pytest.raises(RuntimeError):  # the first answer fails after the report is stored
            await http.post("/api/v1/submissions", json=body)
        retried = await http.post("/api/v1/submissions", json=body)
        again = await http.post("/api/v1/submissions", json=body)

    assert retried.status_code == again.status_code == 200, retried.text
    records = [e for e in await portal.audit() if e["action"] == "submission"]
    assert len(records) == 1
    assert records[0]["details"]["submission_id"] == retried.json()["submission_id"]
    assert records[0]["actor"] == "canbo"
