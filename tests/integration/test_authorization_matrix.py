"""Every endpoint of every service, asked by every role, for its own unit and for another.

The four apps run in-process on the real FerretDB and Kafka under one namespace. Routes are
read from the apps themselves, so a new endpoint that is not in :data:`POLICY` fails the test
until someone decides who may use it. Both units have a report in two versions and an
attachment, and paths carry those real ids. For each route and caller the test checks:
- nobody signed in: 401, on everything but the sign-in itself and the probes;
- a role the policy leaves out: 403;
- a role the policy lets in: neither 401 nor 403;
- an officer, by bearer token and by session cookie with its CSRF header: let in to their own
  unit's things (not 401, 403 or 404); 404 for the other unit's, each refusal by submissions in
  the audit trail; never an answer that contains the other unit's report.
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

from services.common.auth import CSRF_HEADER, SESSION_COOKIE, Role
from services.common.clock import FixedClock
from services.consolidate.app import build_app as consolidate_app
from services.consolidate.config import ConsolidateSettings
from services.deadlines.app import build_app as deadlines_app
from services.deadlines.config import DeadlinesSettings
from services.notify.app import build_app as notify_app
from services.notify.config import NotifySettings
from services.submissions.account_store import MongoAccountStore
from services.submissions.accounts import Account, hash_password
from services.submissions.app import build_app as submissions_app
from services.submissions.config import SubmissionsSettings
from services.submissions.pages.base import PageRoute
from tests.conftest import Servers
from tests.support import attachments
from tests.support.auth import bearer
from tests.support.portal import PASSWORD
from tests.support.submissions import SEED, SEED_OPEN_AT, SEED_PERIOD, report

pytestmark = pytest.mark.integration

OWN, OTHER = "xa-bo-y", "xa-dak-ang"
SECRET = "Bí-mật-của-xã-Đăk-Ang"
"""Written in the other unit's report: must never reach the officer of OWN."""
DRAFT: dict[str, Any] = {"values": {"ii-1-1-tuyen-truyen-giao-duc.status": "in_progress"}}


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
    # submissions: the form's draft (issue 9, part 9): as the form, the unit's officer only
    **{
        ("submissions", method, "/api/v1/periods/{period_id}/units/{unit_id}/draft"): Who.UNIT_FILE
        for method in ("GET", "PUT", "DELETE")
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
"""Signed bearer tokens, as submissions issues to API clients. The browser's caller, a real
account's session cookie with its CSRF header, is made by the fixture (it needs the store)."""
COOKIE_OFFICER = "officer-cookie"
COOKIE_ACCOUNT = "canbo-phien"
SUBJECTS = {"officer": "canbo-bo-y", COOKIE_OFFICER: COOKIE_ACCOUNT}
"""The officers of OWN, each checked against their own unit and against OTHER."""
ALLOWED: dict[Who, set[str]] = {
    Who.PUBLIC: {*CALLERS, COOKIE_OFFICER},
    Who.ANY: {"officer", COOKIE_OFFICER, "office", "admin", "reader"},
    Who.UNIT_READ: {"officer", COOKIE_OFFICER, "office", "admin", "reader"},  # officer: own unit
    Who.UNIT_FILE: {"officer", COOKIE_OFFICER},  # own unit only
    Who.READERS: {"office", "admin", "reader"},
    Who.UNIT_STAFF: {"officer", COOKIE_OFFICER, "office", "admin"},  # officer: own unit only
    Who.STAFF: {"office", "admin"},
    Who.ADMIN: {"admin"},
    Who.FEED: set(),
}
UNIT_SCOPED = {Who.UNIT_READ, Who.UNIT_FILE, Who.UNIT_STAFF}


@dataclass
class System:
    apps: dict[str, FastAPI]
    clients: dict[str, httpx.AsyncClient]
    callers: dict[str, dict[str, str]]
    ids: dict[str, dict[str, str]]
    """Path parameters per unit (OWN, OTHER): ids of things that exist, so that a 404 for
    another unit's attachment or version is the check refusing it, not a missing object."""


async def _file_things_of(http: httpx.AsyncClient, unit_id: str, text: str) -> dict[str, str]:
    """Two versions of the unit's report and an attachment: what the unit's paths name."""
    officer = bearer(Role.OFFICER, unit_id)
    filed = []
    for _ in range(2):  # two versions, so that the diff has something to compare
        answer = await http.post(
            "/api/v1/submissions",
            json=report(text, unit_id=unit_id).model_dump(mode="json"),
            headers=officer,
        )
        assert answer.status_code == 201, answer.text
        filed.append(answer.json())
    body, content_type = attachments.form(attachments.pdf())
    uploaded = await http.post(
        f"/api/v1/periods/{SEED_PERIOD}/units/{unit_id}/attachments",
        content=body,
        headers={**officer, "Content-Type": content_type},
    )
    assert uploaded.status_code == 201, uploaded.text
    drafted = await http.put(
        f"/api/v1/periods/{SEED_PERIOD}/units/{unit_id}/draft",
        json={"values": DRAFT["values"] | {"ii-1-1-tuyen-truyen-giao-duc.results": text}},
        headers=officer,
    )
    assert drafted.status_code == 200, drafted.text
    return {
        "period_id": SEED_PERIOD,
        "unit_id": unit_id,
        "submission_id": filed[-1]["submission_id"],
        "revision": "1",
        "attachment_id": uploaded.json()["attachment_id"],
        "username": COOKIE_ACCOUNT,
        "token_id": uuid.uuid4().hex[:12],
        "letter_id": str(uuid.uuid4()),
        "event_id": str(uuid.uuid4()),
    }


async def _cookie_caller(app: FastAPI, http: httpx.AsyncClient) -> dict[str, str]:
    """A real officer account of OWN signed in as a browser is: the session cookie, and the
    session's CSRF token sent back in its header (what the pages' scripts-free forms carry in
    a field instead)."""
    await MongoAccountStore(app.state.runtime.db).create(
        Account(
            COOKIE_ACCOUNT,
            "Cán bộ Bờ Y (trình duyệt)",
            Role.OFFICER,
            OWN,
            password_hash=hash_password(PASSWORD),
        ),
        SEED_OPEN_AT,
    )
    signed = await http.post(
        "/api/v1/auth/session", json={"username": COOKIE_ACCOUNT, "password": PASSWORD}
    )
    assert signed.status_code == 200, signed.text
    return {
        "Cookie": f"{SESSION_COOKIE}={signed.cookies[SESSION_COOKIE]}",
        CSRF_HEADER: signed.json()["csrf_token"],
    }


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
        ids = {
            OWN: await _file_things_of(clients["submissions"], OWN, "Xã Bờ Y đã quán triệt."),
            OTHER: await _file_things_of(clients["submissions"], OTHER, SECRET),
        }
        callers = {
            **CALLERS,
            COOKIE_OFFICER: await _cookie_caller(apps["submissions"], clients["submissions"]),
        }
        try:
            yield System(apps, clients, callers, ids)
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


def body_for(method: str, path: str, ids: dict[str, str]) -> dict[str, Any] | None:
    """A request body that passes validation, so what answers is the authorisation and then
    the route's own work."""
    if path.startswith("/api/v1/submissions"):
        return report("Cán bộ xã Bờ Y gửi", unit_id=ids["unit_id"]).model_dump(mode="json")
    if method == "PUT" and path.endswith("/draft"):
        return DRAFT
    if method != "POST":
        return None
    bodies: dict[str, dict[str, Any]] = {
        "/review": {"decision": "accept", "revision": 2},
        "/exception": {"reason": "Lũ cắt đường vào xã.", "until": "2027-07-10"},
        "/extension-request": {"reason": "Chờ số liệu của thôn.", "due_before": "2027-06-25"},
        "/extension-request/decision": {
            "request_id": "khong-co",
            "decision": "refuse",
            "reason": "Không có yêu cầu này.",
        },
    }
    return next((body for end, body in bodies.items() if path.endswith(end)), None)


def _run_order(item: tuple[tuple[str, str, str], Who]) -> tuple[bool, bool, tuple[str, str, str]]:
    """Deletions last (a deleted attachment is not there to read), signing out the very last
    (the cookie caller's session ends there)."""
    (_, method, template), _ = item
    return (method == "DELETE", template == "/api/v1/auth/session", item[0])


@dataclass
class Asked:
    service: str
    method: str
    path: str
    who: Who
    status: int


async def _ask_all(
    system: System, caller: str, unit: str, scoped_only: bool
) -> tuple[list[Asked], list[str]]:
    """Every route in the policy as ``caller``, its path naming ``unit``'s things; with
    ``scoped_only`` just the routes that name a unit. The answers, and what leaked."""
    asked, leaks = [], []
    ids = system.ids[unit]
    for (service, method, template), who in sorted(POLICY.items(), key=_run_order):
        if scoped_only and who not in UNIT_SCOPED:
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "x"), template)
        headers = dict(system.callers[caller])
        extra: dict[str, Any] = {"json": body_for(method, template, ids)}
        if template.endswith("/attachments") and method == "POST":
            content, headers["Content-Type"] = attachments.form(attachments.pdf())
            extra = {"content": content}
        if template.endswith("/diff"):
            extra["params"] = {"from": 1, "to": 2}
        response = await system.clients[service].request(method, path, headers=headers, **extra)
        asked.append(Asked(service, method, path, who, response.status_code))
        if caller in SUBJECTS and SECRET in response.text:
            leaks.append(f"{caller} {method} {service}{template}: the other unit's report leaked")
        if response.status_code >= 500:
            leaks.append(f"{caller} {method} {service}{template}: {response.text[:200]}")
    return asked, leaks


def _judge(caller: str, answer: Asked, *, own: bool) -> str | None:
    """What is wrong with this answer, if anything."""
    status, who = answer.status, answer.who
    where = f"{caller} {answer.method} {answer.service}{answer.path}: {status}"
    if status >= 500 or who is Who.PUBLIC:
        return None  # a 5xx is reported with its text by _ask_all
    if who is Who.FEED:
        return None if status == 401 else f"{where}, expected 401 (no feed token)"
    if caller == "anonymous":
        return None if status == 401 else f"{where}, expected 401"
    if caller not in ALLOWED[who]:
        return None if status == 403 else f"{where}, expected 403"
    if caller in SUBJECTS and who in UNIT_SCOPED and not own:
        return None if status == 404 else f"{where}, expected 404 (another unit)"
    if caller in SUBJECTS and who in UNIT_SCOPED and status == 404:
        return f"{where}, expected to be let in to their own unit's things"
    return f"{where}, expected to be let in" if status in {401, 403} else None


async def test_every_route_of_every_service_is_in_the_policy(system: System) -> None:
    served = {(name, m, p) for name, app in system.apps.items() for m, p in routes(app)}
    unclassified = sorted(served - POLICY.keys())
    assert not unclassified, f"decide who may use these, in POLICY: {unclassified}"
    gone = sorted(POLICY.keys() - served)
    assert not gone, f"in POLICY but not served: {gone}"


async def test_each_role_but_the_officer_reaches_only_what_it_may(system: System) -> None:
    # One system for the four: none of them is unit-bound, and what one changes (a review,
    # an exception) leaves the others' answers to the policy alone. It halves the runtime.
    problems: list[str] = []
    for caller in ("anonymous", "reader", "office", "admin"):
        asked, leaks = await _ask_all(system, caller, OTHER, scoped_only=False)
        problems += leaks + [p for a in asked if (p := _judge(caller, a, own=False))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("caller", list(SUBJECTS))
async def test_an_officer_is_let_in_to_their_unit_and_nowhere_else_and_is_audited(
    system: System, caller: str
) -> None:
    # Another unit first: the own-unit pass deletes its attachment and, for the cookie, signs
    # out at the end.
    theirs, problems = await _ask_all(system, caller, OTHER, scoped_only=True)
    ours, leaks = await _ask_all(system, caller, OWN, scoped_only=False)
    problems += leaks
    problems += [p for a in theirs if (p := _judge(caller, a, own=False))]
    problems += [p for a in ours if (p := _judge(caller, a, own=True))]
    # Each refusal by submissions, which keeps the audit trail, is recorded against the caller.
    trail = (
        await system.clients["submissions"].get(
            "/api/v1/audit", params={"limit": 1000}, headers=CALLERS["admin"]
        )
    ).json()
    denied = {
        (e["method"], e["path"])
        for e in trail
        if e["action"] == "denied" and e["actor"] == SUBJECTS[caller] and e["unit_id"] == OTHER
    }
    problems += [
        f"{caller} {a.method} {a.path}: refused but not in the audit trail"
        for a in theirs
        if a.service == "submissions" and (a.method, a.path) not in denied
    ]
    assert not problems, "\n".join(problems)
