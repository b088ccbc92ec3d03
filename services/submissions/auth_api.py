"""JSON API for signing in, API tokens, accounts (admins) and the audit trail (admins)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.common.auth import Admin, Role, SignedIn
from services.common.errors import ApiProblem, not_ready, problems
from services.submissions.account_store import public
from services.submissions.accounts import (
    Account,
    AccountRejected,
    check_role_unit,
    hash_password,
    issue_api_token,
    new_password,
    normal_username,
)
from services.submissions.audit import Action, AuditQuery
from services.submissions.identity import Identity, SignInRefused, SignInThrottled


def _identity(request: Request) -> Identity:
    found: Identity | None = getattr(request.app.state, "identity", None)
    if found is None:
        raise not_ready()
    return found


IdentityDep = Annotated[Identity, Depends(_identity)]

router = APIRouter(prefix="/api/v1", tags=["sign-in and accounts"])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SignInCreate(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class SessionPublic(BaseModel):
    username: str
    name: str
    role: Role
    unit_id: str | None
    csrf_token: str | None = Field(
        None, description="send it back as X-CSRF-Token with changes carried by the cookie"
    )


class AccessTokenPublic(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth token type)
    expires_at: dt.datetime


class AccountCreate(Strict):
    username: str = Field(min_length=2, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    role: Role
    unit_id: str | None = Field(None, max_length=64)
    email: str | None = Field(None, max_length=254)
    machine: bool = Field(False, description="a system, not a person: signs in by API token only")


class AccountUpdate(Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    role: Role | None = None
    unit_id: str | None = Field(None, max_length=64)
    email: str | None = Field(None, max_length=254)
    active: bool | None = None
    reset_password: bool = False


class AccountPublic(BaseModel):
    username: str
    name: str
    role: Role
    unit_id: str | None
    email: str | None
    machine: bool
    active: bool
    password: str | None = Field(None, description="a new password, shown this once")


class TokenCreate(Strict):
    label: str = Field(min_length=1, max_length=100)


class TokenPublic(BaseModel):
    token_id: str
    username: str
    label: str
    created_by: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    token: str | None = Field(None, description="the token itself, shown this once")


def _rejected(error: AccountRejected) -> ApiProblem:
    status = 409 if error.code == "account_exists" else 422
    return ApiProblem(status, error.code, error.message)


@router.post(
    "/auth/session",
    response_model=SessionPublic,
    responses=problems(401, 422, 429),
    summary="Sign in with a username and password (sets the session cookie)",
)
async def sign_in(
    body: SignInCreate, request: Request, response: Response, identity: IdentityDep
) -> SessionPublic:
    username = body.username.strip().lower()
    try:
        account, token = await identity.sign_in(username, body.password, request)
    except SignInThrottled as error:
        raise ApiProblem(
            429,
            "too_many_attempts",
            "Đăng nhập sai quá nhiều lần; vui lòng thử lại sau "
            f"{max(1, math.ceil(error.retry_after / 60))} phút.",
            headers={"Retry-After": str(error.retry_after)},
        ) from error
    except SignInRefused as error:
        raise ApiProblem(
            401, "invalid_credentials", "Tên đăng nhập hoặc mật khẩu không đúng."
        ) from error
    identity.set_cookie(response, token)
    claims = identity.verifier.verify(token, identity.clock.now())
    return SessionPublic(
        username=account.username,
        name=account.name,
        role=account.role,
        unit_id=account.unit_id,
        csrf_token=claims.get("csrf"),
    )


@router.delete("/auth/session", status_code=204, responses=problems(401), summary="Sign out")
async def sign_out(principal: SignedIn, request: Request, identity: IdentityDep) -> Response:
    await identity.sign_out(principal, request)
    response = Response(status_code=204)
    identity.clear_cookie(response)
    return response


@router.get("/auth/me", response_model=SessionPublic, responses=problems(401))
async def me(principal: SignedIn) -> SessionPublic:
    return SessionPublic(
        username=principal.subject,
        name=principal.name,
        role=principal.role,
        unit_id=principal.unit_id,
        csrf_token=principal.csrf,
    )


@router.post(
    "/auth/token",
    response_model=AccessTokenPublic,
    responses=problems(401),
    summary="A 5-minute token for the other services (deadlines, notify, consolidate)",
)
async def exchange(principal: SignedIn, identity: IdentityDep) -> AccessTokenPublic:
    token, expires_at = identity.exchange(principal)
    return AccessTokenPublic(access_token=token, expires_at=expires_at)


# --- accounts (admins) ----------------------------------------------------------------------


def _known_units(request: Request) -> set[str]:
    catalog = request.app.state.runtime.catalog
    return {u.id for plan in catalog.plans.values() for u in plan.units}


@router.get("/accounts", response_model=list[AccountPublic], responses=problems(401, 403))
async def list_accounts(_: Admin, identity: IdentityDep) -> list[dict[str, Any]]:
    return [public(a) for a in await identity.store.all()]


@router.post(
    "/accounts",
    status_code=201,
    response_model=AccountPublic,
    responses=problems(401, 403, 409, 422),
    summary="Create an account; a person's first password is generated and shown once",
)
async def create_account(
    body: AccountCreate, admin: Admin, request: Request, identity: IdentityDep
) -> dict[str, Any]:
    try:
        username = normal_username(body.username)
        check_role_unit(body.role, body.unit_id, _known_units(request))
        password = None if body.machine else new_password()
        account = Account(
            username=username,
            name=body.name,
            role=body.role,
            unit_id=body.unit_id,
            email=body.email,
            machine=body.machine,
            password_hash=hash_password(password) if password else None,
        )
        await identity.store.create(account, identity.clock.now())
    except AccountRejected as error:
        raise _rejected(error) from error
    await identity.audit.record(
        Action.ACCOUNT_CHANGED,
        actor=admin,
        request=request,
        unit_id=account.unit_id,
        account=username,
        change="created",
        role=account.role.value,
    )
    return {**public(account), "password": password}


@router.patch(
    "/accounts/{username}", response_model=AccountPublic, responses=problems(401, 403, 404, 422)
)
async def update_account(
    username: str, body: AccountUpdate, admin: Admin, request: Request, identity: IdentityDep
) -> dict[str, Any]:
    account = await identity.store.get(username)
    if account is None:
        raise ApiProblem(404, "account_not_found", "Không tìm thấy tài khoản này.")
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"reset_password"})
    role = Role(changes.get("role", account.role))
    unit_id = changes.get("unit_id", account.unit_id)
    try:
        check_role_unit(role, unit_id, _known_units(request))
        if (
            account.role is Role.ADMIN
            and (role is not Role.ADMIN or changes.get("active") is False)
            and await identity.store.count_admins() <= 1
        ):
            raise AccountRejected("last_admin", "Không thể bỏ quyền của quản trị viên cuối cùng.")
        password = None
        if body.reset_password and not account.machine:
            password = new_password()
            changes["password_hash"] = hash_password(password)
    except AccountRejected as error:
        raise _rejected(error) from error
    if "role" in changes:
        changes["role"] = role.value
    await identity.store.update(username, changes, identity.clock.now())
    if {"role", "unit_id", "active", "password_hash"} & changes.keys():
        # What the account could do has changed: its open sign-ins end now.
        await identity.store.close_sessions_of(username)
    await identity.audit.record(
        Action.ACCOUNT_CHANGED,
        actor=admin,
        request=request,
        unit_id=unit_id,
        account=username,
        change=sorted(k for k in changes if k != "password_hash")
        + (["password_reset"] if password else []),
    )
    updated = await identity.store.get(username)
    assert updated is not None
    return {**public(updated), "password": password}


# --- API tokens (admins) --------------------------------------------------------------------


def _token_public(doc: dict[str, Any], secret: str | None = None) -> TokenPublic:
    return TokenPublic(
        token_id=doc["_id"],
        username=doc["username"],
        label=doc["label"],
        created_by=doc["created_by"],
        created_at=doc["created_at"],
        revoked_at=doc.get("revoked_at"),
        token=secret,
    )


@router.get("/tokens", response_model=list[TokenPublic], responses=problems(401, 403))
async def list_tokens(
    _: Admin, identity: IdentityDep, username: str | None = None
) -> list[TokenPublic]:
    return [_token_public(d) for d in await identity.store.tokens_of(username)]


@router.post(
    "/accounts/{username}/tokens",
    status_code=201,
    response_model=TokenPublic,
    responses=problems(401, 403, 404, 422),
    summary="Issue an API token for an account; the token is shown once, kept only hashed",
)
async def create_token(
    username: str, body: TokenCreate, admin: Admin, request: Request, identity: IdentityDep
) -> TokenPublic:
    account = await identity.store.get(username)
    if account is None:
        raise ApiProblem(404, "account_not_found", "Không tìm thấy tài khoản này.")
    issued = issue_api_token()
    now = identity.clock.now()
    await identity.store.add_token(
        issued.token_id, issued.digest, username, body.label, admin.subject, now
    )
    await identity.audit.record(
        Action.TOKEN_CREATED,
        actor=admin,
        request=request,
        unit_id=account.unit_id,
        account=username,
        token_id=issued.token_id,
        label=body.label,
    )
    doc = await identity.store.token(issued.token_id)
    assert doc is not None
    return _token_public(doc, issued.secret)


@router.delete("/tokens/{token_id}", response_model=TokenPublic, responses=problems(401, 403, 404))
async def revoke_token(
    token_id: str, admin: Admin, request: Request, identity: IdentityDep
) -> TokenPublic:
    doc = await identity.store.revoke_token(token_id, identity.clock.now())
    if doc is None:
        raise ApiProblem(404, "token_not_found", "Không tìm thấy mã truy cập này.")
    await identity.audit.record(
        Action.TOKEN_REVOKED,
        actor=admin,
        request=request,
        account=doc["username"],
        token_id=token_id,
    )
    return _token_public(doc)


# --- audit trail (admins) -------------------------------------------------------------------


def audit_query(
    actor: Annotated[str | None, Query(max_length=64, description="username")] = None,
    unit: Annotated[
        str | None, Query(max_length=64, description="records about the unit or by its people")
    ] = None,
    action: Action | None = None,
    since: Annotated[
        dt.date | None,
        Query(alias="from", description="first UTC day (default: the start of last month)"),
    ] = None,
    until: Annotated[dt.date | None, Query(alias="to", description="last UTC day")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AuditQuery:
    if since and until and since > until:
        raise ApiProblem(422, "invalid_range", "Ngày bắt đầu phải trước hoặc bằng ngày kết thúc.")
    return AuditQuery(
        actor=actor or None,
        unit_id=unit or None,
        action=action.value if action else None,
        since=since,
        until=until,
        limit=limit,
    )


@router.get("/audit", responses=problems(401, 403, 422))
async def audit_trail(
    _: Admin, identity: IdentityDep, query: Annotated[AuditQuery, Depends(audit_query)]
) -> list[dict[str, Any]]:
    """The newest records of the audit trail matching the filters, newest first. Without
    ``from``, this month's and last month's; older months are read when ``from`` reaches them."""
    return await identity.audit.search(query)
