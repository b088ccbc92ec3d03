"""The one address people open (``/``), signing in and out.

The sign-in form has no session yet to take a CSRF token from, so it gets one of its own: a
short-lived token signed with the service's key, set in a cookie and repeated in the form
(a signed double submit). A site that cannot read our cookies cannot repeat it, and one that
can set cookies cannot sign one.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from typing import Annotated

import jwt
from fastapi import APIRouter, Depends, Request, Response

from services.submissions.identity import Identity, SignInRefused, SignInThrottled
from services.submissions.pages.base import (
    CSRF_FIELD,
    HOME,
    SIGN_IN,
    IdentityDep,
    PageRoute,
    Poster,
    current,
    form_of,
    redirect,
    render,
    safe_next,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)

FORM_COOKIE = "baocao_sign_in_form"
FORM_PURPOSE = "sign-in-form"
FORM_LIFETIME = dt.timedelta(hours=2)


def form_token(identity: Identity) -> str:
    now = identity.clock.now()
    claims = {
        "purpose": FORM_PURPOSE,
        "nonce": secrets.token_urlsafe(16),
        "exp": int((now + FORM_LIFETIME).timestamp()),
    }
    return jwt.encode(claims, identity.signer.private_key, algorithm="EdDSA")


def form_token_valid(identity: Identity, cookie: str, sent: str) -> bool:
    if not (cookie and sent and hmac.compare_digest(cookie, sent)):
        return False
    try:
        claims = jwt.decode(
            sent,
            identity.verifier.public_key,
            algorithms=["EdDSA"],
            # Expiry against the service's clock, which rehearsals move (as for sessions).
            options={"require": ["exp"], "verify_exp": False},
        )
    except jwt.PyJWTError:
        return False
    return bool(
        claims.get("purpose") == FORM_PURPOSE and claims["exp"] >= identity.clock.now().timestamp()
    )


def _sign_in_page(
    request: Request,
    identity: Identity,
    *,
    status: int = 200,
    error: str = "",
    username: str = "",
    next_url: str = "",
    notice: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    token = form_token(identity)
    response = render(
        request,
        "sign_in.html",
        status=status,
        headers=headers,
        title="Đăng nhập",
        form_token=token,
        error=error,
        username=username,
        next_url=next_url,
        notice=notice,
    )
    response.set_cookie(
        FORM_COOKIE,
        token,
        max_age=int(FORM_LIFETIME.total_seconds()),
        path=SIGN_IN,
        secure=identity.cookie_secure,
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/")
async def home(request: Request) -> Response:
    return redirect(HOME if await current(request) else SIGN_IN)


@router.get(SIGN_IN)
async def sign_in_form(
    request: Request, identity: IdentityDep, next: str = "", signed_out: bool = False
) -> Response:
    if await current(request):
        return redirect(safe_next(next))
    notice = "Bạn đã đăng xuất." if signed_out else ""
    return _sign_in_page(request, identity, next_url=next, notice=notice)


@router.post(SIGN_IN)
async def sign_in(
    request: Request,
    identity: IdentityDep,
    form: Annotated[dict[str, str], Depends(form_of)],
) -> Response:
    username = form.get("username", "").strip().lower()
    password = form.get("password", "")
    next_url = form.get("next", "")
    if not form_token_valid(
        identity, request.cookies.get(FORM_COOKIE, ""), form.get(CSRF_FIELD, "")
    ):
        return _sign_in_page(
            request,
            identity,
            status=403,
            error="Biểu mẫu đăng nhập đã hết hạn hoặc không hợp lệ. Vui lòng đăng nhập lại.",
            username=username,
            next_url=next_url,
        )
    if not username or not password:
        return _sign_in_page(
            request,
            identity,
            status=422,
            error="Vui lòng nhập tên đăng nhập và mật khẩu.",
            username=username,
            next_url=next_url,
        )
    try:
        _, token = await identity.sign_in(username, password[:256], request)
    except SignInThrottled as throttled:
        minutes = max(1, -(-throttled.retry_after // 60))
        return _sign_in_page(
            request,
            identity,
            status=429,
            error=f"Đăng nhập sai quá nhiều lần; vui lòng thử lại sau {minutes} phút.",
            headers={"Retry-After": str(throttled.retry_after)},
            username=username,
            next_url=next_url,
        )
    except SignInRefused:
        return _sign_in_page(
            request,
            identity,
            status=401,
            error="Tên đăng nhập hoặc mật khẩu không đúng.",
            username=username,
            next_url=next_url,
        )
    response = redirect(safe_next(next_url))
    identity.set_cookie(response, token)
    response.delete_cookie(FORM_COOKIE, path=SIGN_IN, secure=identity.cookie_secure)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, identity: IdentityDep, principal: Poster) -> Response:
    await identity.sign_out(principal, request)
    response = redirect(f"{SIGN_IN}?signed_out=1")
    identity.clear_cookie(response)
    return response
