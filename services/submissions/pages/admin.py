"""Admins' pages: accounts (list, create, reset a password, (de)activate), API tokens (issue,
revoke), the audit trail and the units' contacts (read from the plans).

Each change goes through the JSON API's own route function (``auth_api``): the same rules
(the last admin stays, an officer names a unit...), the same audit records. A new password or
token is shown once, on the page that answers the form, and never again.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from services.common.auth import ROLE_LABELS, Role
from services.common.errors import ApiProblem
from services.submissions import auth_api
from services.submissions.account_store import public
from services.submissions.audit import Action
from services.submissions.identity import Identity
from services.submissions.pages.base import (
    IdentityDep,
    PageRoute,
    Poster,
    Viewer,
    allow,
    form_of,
    local,
    render,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False, prefix="/admin")

FormDep = Annotated[dict[str, str], Depends(form_of)]
TZ = "Asia/Ho_Chi_Minh"
"""The audit trail is not about one plan: its times are shown in Vietnam's time."""


def _units(request: Request) -> list[tuple[str, str]]:
    catalog = request.app.state.runtime.catalog
    seen: dict[str, str] = {}
    for plan in catalog.plans.values():
        for unit in plan.units:
            seen.setdefault(unit.id, unit.name)
    return sorted(seen.items(), key=lambda item: item[1])


async def _accounts_page(
    request: Request,
    identity: Identity,
    *,
    status: int = 200,
    error: str = "",
    created: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    accounts = [public(a) for a in await identity.store.all()]
    return render(
        request,
        "admin_accounts.html",
        status=status,
        title="Tài khoản",
        accounts=sorted(accounts, key=lambda a: (a["role"], a["username"])),
        roles=ROLE_LABELS,
        units=_units(request),
        error=error,
        created=created,
        form=form or {},
    )


def _first_problem(error: ValidationError) -> str:
    found = error.errors()[0]
    field = ".".join(str(p) for p in found["loc"])
    names = {"username": "Tên đăng nhập", "name": "Họ và tên", "role": "Vai trò", "label": "Nhãn"}
    return f"{names.get(field, field)}: giá trị chưa hợp lệ (thiếu hoặc quá dài)."


@router.get("/accounts")
async def accounts(request: Request, principal: Viewer, identity: IdentityDep) -> Response:
    allow(principal, Role.ADMIN)
    return await _accounts_page(request, identity)


@router.post("/accounts")
async def create_account(
    request: Request, admin: Poster, identity: IdentityDep, form: FormDep
) -> Response:
    allow(admin, Role.ADMIN)
    try:
        body = auth_api.AccountCreate(
            username=form.get("username", ""),
            name=form.get("name", ""),
            role=form.get("role", ""),
            unit_id=form.get("unit_id") or None,
            email=form.get("email") or None,
            machine=form.get("machine") == "yes",
        )
        created = await auth_api.create_account(body, admin, request, identity)
    except ValidationError as error:
        return await _accounts_page(
            request, identity, status=422, error=_first_problem(error), form=form
        )
    except ApiProblem as problem:
        return await _accounts_page(
            request, identity, status=problem.status, error=problem.message, form=form
        )
    return await _accounts_page(request, identity, created=created)


@router.post("/accounts/{username}")
async def change_account(
    username: str, request: Request, admin: Poster, identity: IdentityDep, form: FormDep
) -> Response:
    """``change``: ``reset_password``, ``deactivate`` or ``activate``."""
    allow(admin, Role.ADMIN)
    change = form.get("change", "")
    updates = {
        "reset_password": {"reset_password": True},
        "deactivate": {"active": False},
        "activate": {"active": True},
    }
    if change not in updates:
        raise ApiProblem(422, "unknown_change", "Thao tác không hợp lệ.")
    try:
        changed = await auth_api.update_account(
            username, auth_api.AccountUpdate(**updates[change]), admin, request, identity
        )
    except ApiProblem as problem:
        return await _accounts_page(request, identity, status=problem.status, error=problem.message)
    return await _accounts_page(request, identity, created=changed if changed["password"] else None)


async def _tokens_page(
    request: Request,
    identity: Identity,
    *,
    status: int = 200,
    error: str = "",
    issued: auth_api.TokenPublic | None = None,
) -> Response:
    tokens = await identity.store.tokens_of(None)
    return render(
        request,
        "admin_tokens.html",
        status=status,
        title="Mã truy cập API",
        tokens=[auth_api._token_public(t) for t in tokens],
        accounts=[a.username for a in await identity.store.all() if a.active],
        error=error,
        issued=issued,
        local=local,
        tz=_tz(),
    )


def _tz() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(TZ)


@router.get("/tokens")
async def tokens(request: Request, principal: Viewer, identity: IdentityDep) -> Response:
    allow(principal, Role.ADMIN)
    return await _tokens_page(request, identity)


@router.post("/tokens")
async def create_token(
    request: Request, admin: Poster, identity: IdentityDep, form: FormDep
) -> Response:
    allow(admin, Role.ADMIN)
    try:
        body = auth_api.TokenCreate(label=form.get("label", ""))
        issued = await auth_api.create_token(
            form.get("username", ""), body, admin, request, identity
        )
    except ValidationError as error:
        return await _tokens_page(request, identity, status=422, error=_first_problem(error))
    except ApiProblem as problem:
        return await _tokens_page(request, identity, status=problem.status, error=problem.message)
    return await _tokens_page(request, identity, issued=issued)


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(
    token_id: str, request: Request, admin: Poster, identity: IdentityDep
) -> Response:
    allow(admin, Role.ADMIN)
    try:
        await auth_api.revoke_token(token_id, admin, request, identity)
    except ApiProblem as problem:
        return await _tokens_page(request, identity, status=problem.status, error=problem.message)
    return await _tokens_page(request, identity)


@router.get("/audit")
async def audit(request: Request, principal: Viewer, identity: IdentityDep) -> Response:
    """The API's filters as a GET form; a blank field does not filter."""
    allow(principal, Role.ADMIN)
    asked = {k: v.strip() for k, v in request.query_params.items() if v.strip()}
    error, entries = "", []
    try:
        query = auth_api.audit_query(
            actor=asked.get("actor"),
            unit=asked.get("unit"),
            action=Action(asked["action"]) if "action" in asked else None,
            since=dt.date.fromisoformat(asked["from"]) if "from" in asked else None,
            until=dt.date.fromisoformat(asked["to"]) if "to" in asked else None,
            limit=max(1, min(1000, int(asked.get("limit", "200")))),
        )
        entries = await identity.audit.search(query)
    except ApiProblem as problem:
        error = problem.message
    except ValueError:
        error = "Bộ lọc không hợp lệ: ngày theo dạng năm-tháng-ngày, số dòng là số nguyên."
    return render(
        request,
        "admin_audit.html",
        status=422 if error else 200,
        title="Nhật ký truy cập",
        entries=entries,
        asked=asked,
        actions=[a.value for a in Action],
        error=error,
        local=local,
        tz=_tz(),
    )


@router.get("/contacts")
async def contacts(request: Request, principal: Viewer) -> Response:
    """Each plan's units with their contact officers, as the plan data gives them. They are
    data, not accounts: who is reminded and by which channel changes in the plan file (checked
    by ``python -m contracts.plan check``), and the services read it when they start."""
    allow(principal, Role.ADMIN)
    catalog = request.app.state.runtime.catalog
    plans = sorted(catalog.plans.values(), key=lambda plan: plan.id)
    return render(
        request,
        "admin_contacts.html",
        title="Danh bạ đơn vị",
        plans=plans,
        channels={"email": "Thư điện tử", "sms": "Tin nhắn SMS"},
        duties={"officer": "Cán bộ đầu mối", "head": "Lãnh đạo đơn vị"},
    )
