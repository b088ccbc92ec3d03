"""What every page shares: the templates, who is asking, the form's CSRF check, error pages.

Pages answer HTML, never the API's JSON: a page that needs a sign-in sends the browser to the
sign-in page (303), and a refusal (403, 404, 409...) is a page in Vietnamese with the status.
Every form that changes something carries ``csrf_token``, the session's own CSRF value, and is
refused (403) without it: the cookie rides along with a cross-site form, the token does not.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import urllib.parse
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from services.common.auth import ROLE_LABELS, Authenticator, Principal, Role
from services.common.errors import ApiProblem, not_ready
from services.common.http import too_large_message
from services.submissions.config import SubmissionsSettings
from services.submissions.drafts import DraftStore
from services.submissions.identity import Identity

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parents[1]
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
STATIC_DIR = HERE / "static"
SIGN_IN = "/sign-in"
HOME = "/dashboard"
CSRF_FIELD = "csrf_token"

SECURITY_HEADERS = {
    # Our own CSS and JS only; no frames; forms post back here only.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages show a unit's reports: not to be kept by shared browsers or proxies.
    "Cache-Control": "no-store",
}


class SignInNeeded(Exception):
    """The page needs a signed-in person and none is (or the session has ended)."""


# --- rendering ------------------------------------------------------------------------------


def local(moment: dt.datetime | None, tz: Any, fmt: str = "%H:%M ngày %d/%m/%Y") -> str:
    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(tz).strftime(fmt)


def percent(share: float) -> str:
    return f"{share * 100:.0f}%"


TEMPLATES.env.filters["local"] = local
TEMPLATES.env.filters["percent"] = percent
TEMPLATES.env.globals["role_labels"] = ROLE_LABELS


def nav_for(principal: Principal | None) -> list[tuple[str, str]]:
    if principal is None:
        return []
    links = [(HOME, "Bảng điều khiển")]
    if principal.role is Role.ADMIN:
        links += [
            ("/admin/accounts", "Tài khoản"),
            ("/admin/tokens", "Mã truy cập API"),
            ("/admin/audit", "Nhật ký truy cập"),
            ("/admin/contacts", "Danh bạ đơn vị"),
        ]
    return links


def render(
    request: Request,
    template: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    principal: Principal | None = getattr(request.state, "principal", None)
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "principal": principal,
            "csrf": principal.csrf if principal else "",
            "nav": nav_for(principal),
            "path": request.url.path,
            **context,
        },
        status_code=status,
    )
    response.headers.update({**SECURITY_HEADERS, **(headers or {})})
    return response


def redirect(url: str) -> RedirectResponse:
    """303: after a form's POST the browser GETs the next page (no resubmission on reload)."""
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def safe_next(url: str | None) -> str:
    """A place on this site to go back to after signing in; anything else goes home."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return HOME
    return url


def to_sign_in(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET" or here in ("/", HOME):
        return redirect(SIGN_IN)
    return redirect(f"{SIGN_IN}?next={urllib.parse.quote(here, safe='')}")


def error_page(request: Request, problem: ApiProblem) -> HTMLResponse:
    titles = {
        403: "Không có quyền truy cập",
        404: "Không tìm thấy",
        409: "Không thực hiện được",
        429: "Thử lại sau",
        503: "Hệ thống đang bận",
    }
    return render(
        request,
        "error.html",
        status=problem.status,
        headers=dict(problem.headers),
        title=titles.get(problem.status, "Có lỗi xảy ra"),
        message=problem.message,
    )


class PageRoute(APIRoute):
    """A route answering HTML: a missing sign-in is a redirect, a refusal an error page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInNeeded:
                return to_sign_in(request)
            except ApiProblem as problem:
                if problem.status == 401:
                    return to_sign_in(request)
                return error_page(request, problem)
            except RequestValidationError:
                return error_page(
                    request, ApiProblem(404, "not_found", "Địa chỉ này không có trang nào.")
                )

        return page


# --- who asks -------------------------------------------------------------------------------


async def current(request: Request) -> Principal | None:
    """Who is signed in, if anyone (cached on the request)."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    authenticator: Authenticator | None = getattr(request.app.state, "authenticator", None)
    principal = await authenticator.authenticate(request) if authenticator else None
    if principal is not None:
        request.state.principal = principal
    return principal


async def viewer(request: Request) -> Principal:
    """The signed-in person, or a redirect to the sign-in page."""
    principal = await current(request)
    if principal is None:
        raise SignInNeeded
    return principal


Viewer = Annotated[Principal, Depends(viewer)]


async def form_of(request: Request) -> dict[str, str]:
    """The posted form's text fields (files are read by the routes that take them).

    A form that may carry a file has a larger body limit (``pages.form_routes``); one without
    keeps the API's, which browsers let us check up front: they always state the length.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        declared = request.headers.get("content-length", "")
        limit = settings_of(request).max_body_bytes
        if not declared.isdigit() or int(declared) > limit:
            raise ApiProblem(413, "payload_too_large", too_large_message(limit))
    form = await request.form()
    return {k: v for k, v in form.multi_items() if isinstance(v, str)}


async def poster(request: Request) -> Principal:
    """The signed-in person posting a form that carries their session's CSRF token."""
    principal = await viewer(request)
    sent = (await form_of(request)).get(CSRF_FIELD, "")
    if principal.via_cookie and not (
        principal.csrf and sent and hmac.compare_digest(sent, principal.csrf)
    ):
        raise ApiProblem(
            403,
            "csrf_failed",
            "Biểu mẫu này đã cũ hoặc không được gửi từ trang của hệ thống (thiếu mã xác thực "
            "biểu mẫu). Vui lòng mở lại trang và gửi lại.",
        )
    return principal


Poster = Annotated[Principal, Depends(poster)]


def allow(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        raise ApiProblem(403, "forbidden", "Tài khoản của bạn không có quyền mở trang này.")


# --- what pages use -------------------------------------------------------------------------


def identity_of(request: Request) -> Identity:
    found: Identity | None = getattr(request.app.state, "identity", None)
    if found is None:
        raise not_ready()
    return found


def drafts_of(request: Request) -> DraftStore:
    found: DraftStore | None = getattr(request.app.state, "drafts", None)
    if found is None:
        raise not_ready()
    return found


def settings_of(request: Request) -> SubmissionsSettings:
    settings: SubmissionsSettings = request.app.state.runtime.settings
    return settings


IdentityDep = Annotated[Identity, Depends(identity_of)]
DraftsDep = Annotated[DraftStore, Depends(drafts_of)]
