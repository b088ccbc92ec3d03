"""The submissions service in-process on the real FerretDB and Kafka, under a test's namespace,
with accounts to sign in with: what the page and sign-in tests share."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from services.common.auth import Role
from services.common.clock import FixedClock
from services.submissions.account_store import MongoAccountStore
from services.submissions.accounts import Account, hash_password
from services.submissions.app import build_app
from services.submissions.config import SubmissionsSettings
from tests.conftest import Servers
from tests.support.auth import bearer
from tests.support.submissions import SEED, SEED_OPEN_AT

PASSWORD = "mật-khẩu-đủ-dài-2027"
UNIT, OTHER = "xa-bo-y", "xa-dak-ang"


def person(username: str, name: str, role: Role, unit_id: str | None = None) -> Account:
    """An account that signs in with ``PASSWORD``."""
    return Account(username, name, role, unit_id, password_hash=hash_password(PASSWORD))


OFFICER = person("canbo", "Cán bộ Bờ Y", Role.OFFICER, UNIT)
OTHER_OFFICER = person("canbo-khac", "Cán bộ Đăk Ang", Role.OFFICER, OTHER)
OFFICE = person("tonghop", "Phòng VH-TT", Role.OFFICE, "phong-vhtt")
ADMIN = person("quantri", "Quản trị", Role.ADMIN)
PROVINCE = Account("captinh", "Tỉnh", Role.READER, machine=True)


@dataclass
class Portal:
    app: FastAPI
    clock: FixedClock
    accounts: MongoAccountStore
    address: str = "10.0.0.9"

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, client=(self.address, 5000)),
            base_url="https://portal",  # the session cookie is Secure
            **kwargs,
        )

    async def sign_in_page(
        self, http: httpx.AsyncClient, username: str, password: str = PASSWORD
    ) -> httpx.Response:
        """Through the sign-in form, as a browser does."""
        page = await http.get("/sign-in")
        return await http.post(
            "/sign-in",
            data={
                "username": username,
                "password": password,
                "csrf_token": hidden(page, "csrf_token"),
            },
        )

    async def sign_in_api(
        self, http: httpx.AsyncClient, username: str, password: str = PASSWORD
    ) -> httpx.Response:
        return await http.post(
            "/api/v1/auth/session", json={"username": username, "password": password}
        )

    async def audit(self) -> list[dict[str, Any]]:
        async with self.client(headers=bearer(Role.ADMIN, subject="quantri")) as http:
            response = await http.get("/api/v1/audit")
        assert response.status_code == 200, response.text
        return list(response.json())


def hidden(page: httpx.Response, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page.text)
    assert found, f"no hidden {name} in {page.request.url}"
    return found.group(1)


@asynccontextmanager
async def running_portal(
    servers: Servers, namespace: str, accounts: Iterable[Account], *, address: str = "10.0.0.9"
) -> AsyncIterator[Portal]:
    settings = SubmissionsSettings(
        namespace=namespace,
        kafka_bootstrap=servers.kafka_bootstrap,
        mongo_uri=servers.mongo_uri,
        plans=str(SEED),
        BAOCAO_COOKIE_SECURE=True,
    )
    clock = FixedClock(SEED_OPEN_AT)
    app = build_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        store = MongoAccountStore(app.state.runtime.db)
        for account in accounts:
            await store.create(account, SEED_OPEN_AT)
        try:
            yield Portal(app, clock, store, address)
        finally:
            await app.state.runtime.db.client.drop_database(app.state.runtime.db.name)
