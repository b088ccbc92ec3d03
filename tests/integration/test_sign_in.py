"""Signing in, sessions, CSRF, throttling and API tokens, on the submissions service against the
real FerretDB and Kafka (the app runs in-process with its lifespan, under a fresh namespace)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from services.common.auth import SESSION_COOKIE, Role
from tests.conftest import Servers
from tests.support.auth import bearer
from tests.support.portal import (
    ADMIN,
    OFFICE,
    OFFICER,
    OTHER,
    PASSWORD,
    PROVINCE,
    UNIT,
    Portal,
    running_portal,
)
from tests.support.submissions import report

pytestmark = pytest.mark.integration


@pytest.fixture
async def portal(servers: Servers, namespace: str) -> AsyncIterator[Portal]:
    async with running_portal(
        servers, namespace, [OFFICER, OFFICE, ADMIN, PROVINCE], address="10.0.0.7"
    ) as running:
        yield running


async def test_a_sign_in_sets_a_hardened_session_cookie_and_is_audited(portal: Portal) -> None:
    async with portal.client() as http:
        response = await portal.sign_in_api(http, "CanBo")  # usernames are not case-sensitive

    assert response.status_code == 200, response.text
    assert response.json()["role"] == "officer"
    assert response.json()["unit_id"] == UNIT
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    for flag in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"):
        assert flag.lower() in cookie.lower()
    stored = await portal.accounts.accounts.find_one({"_id": "canbo"})
    assert stored is not None
    assert stored["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in str(stored)
    signed_in = [e for e in await portal.audit() if e["action"] == "sign_in"]
    assert signed_in[0]["actor"] == "canbo"
    assert signed_in[0]["address"] == "10.0.0.7"


async def test_wrong_passwords_get_401_then_429_with_retry_after(portal: Portal) -> None:
    async with portal.client() as http:
        answers = [await portal.sign_in_api(http, "canbo", "sai-mat-khau-123") for _ in range(5)]
        portal.clock.advance(dt.timedelta(seconds=30))
        throttled = await portal.sign_in_api(http, "canbo")  # even the right password now waits

    assert [a.status_code for a in answers] == [401] * 5
    assert answers[0].json()["code"] == "invalid_credentials"
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "too_many_attempts"
    assert int(throttled.headers["Retry-After"]) == 15 * 60 - 30
    assert "sau 15 phút" in throttled.json()["message"]  # 14.5 minutes, rounded up
    portal.clock.advance(dt.timedelta(minutes=16))
    async with portal.client() as http:
        assert (await portal.sign_in_api(http, "canbo")).status_code == 200
    failed = [e for e in await portal.audit() if e["action"] == "sign_in_failed"]
    assert {e["outcome"] for e in failed} == {"refused", "throttled"}


async def test_one_address_guessing_many_accounts_is_throttled(portal: Portal) -> None:
    async with portal.client() as http:
        answers = [await portal.sign_in_api(http, f"khong-co-{n}", "x" * 12) for n in range(21)]
    assert [a.status_code for a in answers[:20]] == [401] * 20
    assert answers[20].status_code == 429


async def test_a_change_carried_by_the_cookie_needs_the_csrf_token(portal: Portal) -> None:
    async with portal.client() as http:
        signed = await portal.sign_in_api(http, "canbo")
        csrf = signed.json()["csrf_token"]
        body = report(unit_id=UNIT).model_dump(mode="json")

        forged = await http.post("/api/v1/submissions", json=body)
        wrong = await http.post("/api/v1/submissions", json=body, headers={"X-CSRF-Token": "x"})
        good = await http.post("/api/v1/submissions", json=body, headers={"X-CSRF-Token": csrf})

    assert forged.status_code == wrong.status_code == 403
    assert forged.json()["code"] == "csrf_failed"
    assert good.status_code == 201, good.text
    assert good.json()["revision"] == 1  # the refused two stored nothing


async def test_sign_out_ends_the_session_at_once(portal: Portal) -> None:
    async with portal.client() as http:
        await portal.sign_in_api(http, "canbo")
        token = http.cookies[SESSION_COOKIE]
        assert (await http.get("/api/v1/auth/me")).status_code == 200
        csrf = (await http.get("/api/v1/auth/me")).json()["csrf_token"]
        assert (
            await http.delete("/api/v1/auth/session", headers={"X-CSRF-Token": csrf})
        ).status_code == 204
    async with portal.client(cookies={SESSION_COOKIE: token}) as replay:
        again = await replay.get("/api/v1/auth/me")
    assert again.status_code == 401
    assert again.json()["code"] == "not_signed_in"


async def test_deactivating_an_account_ends_its_sessions(portal: Portal) -> None:
    async with portal.client() as http:
        await portal.sign_in_api(http, "canbo")
        async with portal.client(headers=bearer(Role.ADMIN, subject="quantri")) as admin:
            changed = await admin.patch("/api/v1/accounts/canbo", json={"active": False})
        assert changed.status_code == 200, changed.text
        assert (await http.get("/api/v1/auth/me")).status_code == 401
        assert (await portal.sign_in_api(http, "canbo")).status_code == 401


async def test_an_api_token_is_scoped_to_its_account_and_revocable(portal: Portal) -> None:
    async with portal.client(headers=bearer(Role.ADMIN, subject="quantri")) as admin:
        issued = await admin.post("/api/v1/accounts/canbo/tokens", json={"label": "phần mềm xã"})
        reader = await admin.post("/api/v1/accounts/captinh/tokens", json={"label": "tỉnh"})
        listed = await admin.get("/api/v1/tokens")
    assert issued.status_code == reader.status_code == 201, issued.text
    secret, token_id = issued.json()["token"], issued.json()["token_id"]
    assert secret.startswith("bct_")
    assert all(t["token"] is None for t in listed.json())  # shown once, at creation only
    stored = await portal.accounts.tokens.find_one({"_id": token_id})
    assert stored is not None and secret not in str(stored)

    own = report(unit_id=UNIT).model_dump(mode="json")
    other = report(unit_id=OTHER).model_dump(mode="json")
    async with portal.client(headers={"Authorization": f"Bearer {secret}"}) as unit_client:
        assert (await unit_client.post("/api/v1/submissions", json=own)).status_code == 201
        cross = await unit_client.post("/api/v1/submissions", json=other)
        assert cross.status_code == 404
        exchanged = await unit_client.post("/api/v1/auth/token")
        assert exchanged.status_code == 200
    short_lived = {"Authorization": f"Bearer {exchanged.json()['access_token']}"}
    async with portal.client(headers=short_lived) as exchanged_client:
        assert (await exchanged_client.get("/api/v1/periods")).status_code == 200
        again = await exchanged_client.post("/api/v1/auth/token")  # renewed, still tied to it
        assert again.status_code == 200
    renewed = {"Authorization": f"Bearer {again.json()['access_token']}"}
    async with portal.client(
        headers={"Authorization": f"Bearer {reader.json()['token']}"}
    ) as province:
        assert (await province.get("/api/v1/periods")).status_code == 200
        assert (await province.post("/api/v1/submissions", json=own)).status_code == 403
        assert (await province.get("/api/v1/accounts")).status_code == 403

    async with portal.client(headers=bearer(Role.ADMIN, subject="quantri")) as admin:
        revoked = await admin.delete(f"/api/v1/tokens/{token_id}")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    async with portal.client(headers={"Authorization": f"Bearer {secret}"}) as unit_client:
        assert (await unit_client.get("/api/v1/periods")).status_code == 401
    # What was exchanged for it ends with it, here at once (elsewhere within 5 minutes).
    for headers in (short_lived, renewed):
        async with portal.client(headers=headers) as exchanged_client:
            assert (await exchanged_client.get("/api/v1/periods")).status_code == 401
            assert (await exchanged_client.post("/api/v1/auth/token")).status_code == 401
    actions = [e["action"] for e in await portal.audit()]
    assert {"token_created", "token_revoked", "denied", "submission"} <= set(actions)


async def test_no_account_can_sign_in_without_a_password_set(portal: Portal) -> None:
    # Machine accounts have none; nothing is a default.
    async with portal.client() as http:
        assert (await portal.sign_in_api(http, "captinh", "")).status_code == 422
        assert (await portal.sign_in_api(http, "captinh", "bất-kỳ-mật-khẩu")).status_code == 401
