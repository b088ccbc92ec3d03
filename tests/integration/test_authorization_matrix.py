"""Every endpoint of every service, asked by every role, for its own unit and for another.

The four apps run in-process on the real FerretDB and Kafka under one namespace. Routes are
read from the apps themselves, so a new endpoint that is not in :data:`POLICY` fails the test
until someone decides who may use it. For each route and caller the test checks:
- nobody signed in: 401, on everything but the sign-in itself and the probes;
- a role the policy leaves out: 403 (an officer asking for another unit: 404, as if it did not
  exist, and an audit record);
- a role the policy lets in: neither 401 nor 403;
- an officer never gets a 2xx for another unit's data, and no answer to them contains it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from services.common.auth import Role
from services.common.clock import FixedClock
from services.consolidate.app import build_app as consolidate_app
from services.consolidate.config import ConsolidateSettings
from services.deadlines.app import build_app as deadlines_app
from services.deadlines.config import DeadlinesSettings
from services.notify.app import build_app as notify_app
from services.notify.config import NotifySettings
from services.submissions.app import build_app as submissions_app
from services.submissions.config import SubmissionsSettings
from services.submissions.pages.base import PageRoute
from tests.conftest import Servers
from tests.support.auth import bearer
from tests.support.submissions import SEED, SEED_OPEN_AT, SEED_PERIOD, report

pytestmark = pytest.mark.integration

OWN, OTHER = "xa-bo-y", "xa-dak-ang"
SECRET = "Bí-mật-của-xã-Đăk-Ang"
"""Written in the other unit's report: must never reach the officer of OWN."""


class Who(Enum):
    PUBLIC = "public"
    """No sign-in: the sign-in itself."""
    ANY = "any"
    """Anyone signed in."""
    UNIT_READ = "unit_read"
    """The unit's own officer, and those who read everything (office, admin, reader)."""
    UNIT_FILE = "unit_file"
    """The unit's own officer only."""
    READERS = "readers"
    """Office, admin and the read-only province."""
    UNIT_STAFF = "unit_staff"
    """The unit's own officer, office and admin (not the read-only province)."""
    STAFF = "staff"
    """Office and admin."""
    FEED = "feed"
    """A unit's calendar feed token in the query string, and nothing else: a sign-in is
    refused (401) like no token at all."""
    ADMIN = "admin"


POLICY: dict[tuple[str, str, str], Who] = {
    # submissions: intake
    ("submissions", "POST", "/api/v1/submissions"): Who.UNIT_FILE,
    ("submissions", "POST", "/api/v1/submissions/validate"): Who.UNIT_FILE,
    ("submissions", "GET", "/api/v1/periods"): Who.ANY,
    ("submissions", "GET", "/api/v1/periods/{period_id}/submissions/{submission_id}"): (
        Who.UNIT_READ
    ),
    ("submissions", "GET", "/api/v1/periods/{period_id}/units/{unit_id}/template"): (Who.UNIT_READ),
    # submissions: attachments (issue 9, part 5)
    ("submissions", "POST", "/api/v1/periods/{period_id}/units/{unit_id}/attachments"): (
        Who.UNIT_FILE
    ),
    ("submissions", "GET", "/api/v1/periods/{period_id}/units/{unit_id}/attachments"): (
        Who.UNIT_READ
    ),
    **{
        (
            "submissions",
            method,
            "/api/v1/periods/{period_id}/units/{unit_id}/attachments/{attachment_id}",
        ): who
        for method, who in (("GET", Who.UNIT_READ), ("DELETE", Who.UNIT_FILE))
    },
    # submissions: sign-in, accounts, tokens, audit
    ("submissions", "POST", "/api/v1/auth/session"): Who.PUBLIC,
    ("submissions", "DELETE", "/api/v1/auth/session"): Who.ANY,
    ("submissions", "GET", "/api/v1/auth/me"): Who.ANY,
    ("submissions", "POST", "/api/v1/auth/token"): Who.ANY,
    ("submissions", "GET", "/api/v1/accounts"): Who.ADMIN,
    ("submissions", "POST", "/api/v1/accounts"): Who.ADMIN,
    ("submissions", "PATCH", "/api/v1/accounts/{username}"): Who.ADMIN,
    ("submissions", "GET", "/api/v1/tokens"): Who.ADMIN,
    ("submissions", "POST", "/api/v1/accounts/{username}/tokens"): Who.ADMIN,
    ("submissions", "DELETE", "/api/v1/tokens/{token_id}"): Who.ADMIN,
    ("submissions", "GET", "/api/v1/audit"): Who.ADMIN,
    ("submissions", "POST", "/api/v1/units/{unit_id}/calendar-token"): Who.UNIT_STAFF,
    # submissions: versions, review, exceptions, extensions (issue 9, parts 6-7)
    **{
        ("submissions", method, f"/api/v1/periods/{{period_id}}/units/{{unit_id}}/{path}"): who
        for method, path, who in (
            ("GET", "versions", Who.UNIT_READ),
            ("GET", "versions/{revision}", Who.UNIT_READ),
            ("GET", "diff", Who.UNIT_READ),
            ("GET", "standing", Who.UNIT_READ),
            ("POST", "review", Who.STAFF),
            ("POST", "exception", Who.STAFF),
            ("POST", "extension-request", Who.UNIT_FILE),
            ("POST", "extension-request/decision", Who.STAFF),
        )
    },
    ("submissions", "GET", "/api/v1/periods/{period_id}/exceptions"): Who.READERS,
    ("submissions", "GET", "/api/v1/periods/{period_id}/extension-requests"): Who.READERS,
    # deadlines
    ("deadlines", "GET", "/api/v1/periods"): Who.ANY,
    ("deadlines", "GET", "/api/v1/periods/{period_id}/units/{unit_id}"): Who.UNIT_READ,
    ("deadlines", "POST", "/api/v1/scan"): Who.ADMIN,
    ("deadlines", "GET", "/api/v1/periods/{period_id}/schedule"): Who.READERS,
    ("deadlines", "GET", "/api/v1/units/{unit_id}/calendar.ics"): Who.FEED,
    # notify
    ("notify", "GET", "/api/v1/notifications"): Who.STAFF,
    # consolidate
    ("consolidate", "POST", "/api/v1/periods/{period_id}/consolidate"): Who.STAFF,
    ("consolidate", "GET", "/api/v1/periods/{period_id}/preview"): Who.READERS,
    ("consolidate", "GET", "/api/v1/periods/{period_id}/reports"): Who.READERS,
    ("consolidate", "GET", "/api/v1/periods/{period_id}/reports/{report_id}/files/{name}"): (
        Who.READERS
    ),
    ("consolidate", "GET", "/api/v1/periods/{period_id}/status"): Who.READERS,
    ("consolidate", "GET", "/periods/{period_id}/status"): Who.STAFF,
    # every service: operations
    **{
        (service, method, path): Who.ADMIN
        for service in ("submissions", "deadlines", "notify", "consolidate")
        for method, path in (
            ("GET", "/api/v1/dead-letters"),
            ("POST", "/api/v1/dead-letters/{letter_id}/replay"),
            ("POST", "/api/v1/dead-letters/{letter_id}/discard"),
            ("GET", "/api/v1/outbox/parked"),
            ("POST", "/api/v1/outbox/parked/{event_id}/replay"),
        )
    },
}

OPEN = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
}
"""Probes and the API's own description: no sign-in, no data."""

CALLERS: dict[str, dict[str, str]] = {
    "anonymous": {},
    "officer": bearer(Role.OFFICER, OWN, subject="canbo-bo-y"),
    "office": bearer(Role.OFFICE, "phong-vhtt", subject="tonghop"),
    "admin": bearer(Role.ADMIN, subject="quantri"),
    "reader": bearer(Role.READER, subject="captinh"),
}
ALLOWED: dict[Who, set[str]] = {
    Who.PUBLIC: set(CALLERS),
    Who.ANY: {"officer", "office", "admin", "reader"},
    Who.UNIT_READ: {"officer", "office", "admin", "reader"},  # officer: own unit only
    Who.UNIT_FILE: {"officer"},  # own unit only
    Who.READERS: {"office", "admin", "reader"},
    Who.UNIT_STAFF: {"officer", "office", "admin"},  # officer: own unit only
    Who.STAFF: {"office", "admin"},
    Who.ADMIN: {"admin"},
    Who.FEED: set(),
}


@dataclass
class System:
    apps: dict[str, FastAPI]
    clients: dict[str, httpx.AsyncClient]
    ids: dict[str, str]
    """Path parameters, all naming the OTHER unit's things."""


@pytest.fixture
async def system(servers: Servers, namespace: str) -> AsyncIterator[System]:
    common: dict[str, Any] = {
        "namespace": namespace,
        "kafka_bootstrap": servers.kafka_bootstrap,
        "mongo_uri": servers.mongo_uri,
        "plans": str(SEED),
    }
    clock = FixedClock(SEED_OPEN_AT)
    apps = {
        "submissions": submissions_app(SubmissionsSettings(**common), clock=clock),
        "deadlines": deadlines_app(DeadlinesSettings(**common), clock=clock),
        "notify": notify_app(
            NotifySettings(**common, smtp_host=servers.smtp_host, smtp_port=servers.smtp_port),
            clock=clock,
        ),
        "consolidate": consolidate_app(ConsolidateSettings(**common), clock=clock),
    }
    async with AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        clients = {
            name: await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")
            )
            for name, app in apps.items()
        }
        filed = await clients["submissions"].post(
            "/api/v1/submissions",
            json=report(SECRET, unit_id=OTHER).model_dump(mode="json"),
            headers=bearer(Role.OFFICER, OTHER),
        )
        assert filed.status_code == 201, filed.text
        ids = {
            "period_id": SEED_PERIOD,
            "unit_id": OTHER,
            "submission_id": filed.json()["submission_id"],
            "username": "canbo-dak-ang",
            "token_id": uuid.uuid4().hex[:12],
            "letter_id": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()),
        }
        try:
            yield System(apps, clients, ids)
        finally:
            for app in apps.values():
                await app.state.runtime.db.client.drop_database(app.state.runtime.db.name)


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every endpoint, included routers too (FastAPI keeps them nested)."""
    found = []
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or route.path in OPEN:
            continue
        if isinstance(route.original_route, PageRoute):
            continue  # HTML pages redirect to sign-in: their own matrix is in test_pages.py
        assert route.path is not None and route.methods is not None
        found += [(method, route.path) for method in sorted(route.methods - {"HEAD"})]
    return found


def body_for(path: str, ids: dict[str, str]) -> dict[str, Any] | None:
    """A request body that passes validation, so what answers is the authorisation."""
    if path.startswith("/api/v1/submissions"):
        return report("Cán bộ xã Bờ Y gửi thay", unit_id=ids["unit_id"]).model_dump(mode="json")
    return None


async def test_every_route_of_every_service_is_in_the_policy(system: System) -> None:
    served = {(name, m, p) for name, app in system.apps.items() for m, p in routes(app)}
    unclassified = sorted(served - POLICY.keys())
    assert not unclassified, f"decide who may use these, in POLICY: {unclassified}"
    gone = sorted(POLICY.keys() - served)
    assert not gone, f"in POLICY but not served: {gone}"


@pytest.mark.parametrize("caller", list(CALLERS))
async def test_each_role_reaches_only_what_it_may(system: System, caller: str) -> None:
    problems: list[str] = []
    for (service, method, template), who in sorted(POLICY.items(), key=lambda i: i[0]):
        path = re.sub(r"\{(\w+)\}", lambda m: system.ids.get(m.group(1), "x"), template)
        body = body_for(template, system.ids)
        response = await system.clients[service].request(
            method, path, json=body, headers=CALLERS[caller]
        )
        status, where = response.status_code, f"{caller} {method} {service}{template}"
        if status >= 500:
            problems.append(f"{where}: {status} {response.text[:200]}")
        elif who is Who.PUBLIC:
            continue
        elif who is Who.FEED:
            if status != 401:
                problems.append(f"{where}: {status}, expected 401 (no feed token)")
        elif caller == "anonymous":
            if status != 401:
                problems.append(f"{where}: {status}, expected 401")
        elif caller not in ALLOWED[who]:
            if status != 403:
                problems.append(f"{where}: {status}, expected 403")
        elif caller == "officer" and who in {Who.UNIT_READ, Who.UNIT_FILE, Who.UNIT_STAFF}:
            # The path or body names the OTHER unit's things.
            if status != 404:
                problems.append(f"{where}: {status}, expected 404 (another unit)")
        elif status in {401, 403}:
            problems.append(f"{where}: {status}, expected to be let in")
        if caller == "officer" and SECRET in response.text:
            problems.append(f"{where}: the other unit's report leaked")
    assert not problems, "\n".join(problems)


async def test_an_officer_reaching_for_another_unit_is_in_the_audit_trail(
    system: System,
) -> None:
    http = system.clients["submissions"]
    path = f"/api/v1/periods/{SEED_PERIOD}/submissions/{system.ids['submission_id']}"
    assert (await http.get(path, headers=CALLERS["officer"])).status_code == 404
    trail = (await http.get("/api/v1/audit", headers=CALLERS["admin"])).json()
    denied = [e for e in trail if e["action"] == "denied" and e["path"] == path]
    assert denied, trail[:3]
    assert denied[0]["actor"] == "canbo-bo-y"
    assert denied[0]["unit_id"] == OTHER
