"""Every HTTP error answers ``{"code", "message", "details"}``: a code for machines, Vietnamese
for people, and in ``details`` what exactly was wrong (each field, or the line and column of a
JSON syntax error).

A route declares the errors it can answer with :func:`problems`; the ones any route can answer
whatever it does (signed out, body too large or not JSON, starting up...) are added to the
OpenAPI document for every route by ``services.common.openapi``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match

log = logging.getLogger(__name__)

GENERIC = {
    400: ("bad_request", "Yêu cầu không hợp lệ."),
    404: ("not_found", "Không tìm thấy địa chỉ được yêu cầu."),
    405: ("method_not_allowed", "Phương thức không được hỗ trợ tại địa chỉ này."),
    413: ("payload_too_large", "Nội dung gửi lên quá lớn."),
    415: ("unsupported_media_type", "Chỉ nhận nội dung dạng JSON (application/json)."),
}

UNREADABLE_BODY = "There was an error parsing the body"
"""What FastAPI says (as a 400) of a body it cannot decode, e.g. bytes that are not UTF-8."""


class ApiError(BaseModel):
    """The body of every error answer."""

    code: str = Field(description="stable, for machines (e.g. ``not_signed_in``)")
    message: str = Field(description="in Vietnamese, for people")
    details: list[dict[str, Any]] = Field(
        default_factory=list,
        description="what was wrong, one entry each: ``field``, ``type``, ``detail`` for a "
        "refused value; ``line``, ``column`` for a JSON syntax error",
    )


PROBLEM_TEXT = {
    400: "Nội dung gửi lên không đọc được: JSON sai cú pháp (invalid_json; dòng và cột ở "
    "details) hoặc không mã hóa UTF-8.",
    401: "Chưa đăng nhập, hoặc phiên/mã truy cập không hợp lệ hay đã hết hạn (not_signed_in).",
    403: "Đã đăng nhập nhưng không có quyền (forbidden), hoặc thay đổi gửi bằng cookie mà "
    "thiếu mã CSRF (csrf_failed).",
    404: "Không tìm thấy (hoặc thuộc đơn vị khác).",
    405: "Phương thức không được hỗ trợ tại địa chỉ này (xem Allow).",
    409: "Xung đột với trạng thái hiện tại.",
    413: "Nội dung gửi lên quá lớn (payload_too_large).",
    415: "Nội dung gửi lên không phải JSON: cần Content-Type: application/json "
    "(unsupported_media_type).",
    422: "Dữ liệu không hợp lệ: thiếu nội dung (missing_body), thiếu trường (missing_field), "
    "trường không được hỗ trợ (unknown_field) hoặc giá trị sai (invalid_request); details "
    "nêu từng trường.",
    429: "Quá nhiều yêu cầu; thử lại sau số giây ở Retry-After.",
    503: "Dịch vụ đang khởi động (not_ready) hoặc đang quá tải (busy; thử lại sau số giây ở "
    "Retry-After).",
}
"""What each status means, as the OpenAPI document explains it."""

_RETRY_AFTER = {
    "Retry-After": {
        "description": "số giây nên chờ trước khi thử lại",
        "schema": {"type": "integer"},
    }
}
HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "cách đăng nhập: Bearer",
            "schema": {"type": "string"},
        }
    },
    405: {"Allow": {"description": "các phương thức được hỗ trợ", "schema": {"type": "string"}}},
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}
"""Headers an error answer carries, declared with it."""


def problems(
    *statuses: int, why: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each error status it can answer, with :class:`ApiError`.

    ``@router.get("/x/{x_id}", responses=problems(404, 409))``; ``why`` replaces the general
    description of a status with what it means at this route, e.g.
    ``problems(404, 409, why={409: "Kỳ báo cáo đã đóng."})``.

    List the statuses the route itself decides (404, 409, 422 from the domain, 429...). Those
    that come from what the route is made of are added to every route by
    ``services.common.openapi``: 401 for a route that needs sign-in, 403 for a role check or
    a change (CSRF), 400/415 for a JSON body, 413, 422 for parameters or a body, 503.
    """
    notes = why or {}
    answers: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        answer: dict[str, Any] = {
            "model": ApiError,
            "description": notes.get(status) or PROBLEM_TEXT.get(status, "Lỗi."),
        }
        if status in HEADERS:
            answer["headers"] = HEADERS[status]
        answers[status] = answer
    return answers


class ApiProblem(Exception):
    """An answer other than success, raised anywhere below the web layer."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []
        self.headers = dict(headers or {})


def not_ready() -> ApiProblem:
    """Asked before start-up wired the service to MongoDB: the same answer from every service."""
    return ApiProblem(503, "not_ready", "Dịch vụ đang khởi động, vui lòng thử lại sau giây lát.")


def problem_response(problem: ApiProblem) -> JSONResponse:
    body = {"code": problem.code, "message": problem.message, "details": problem.details}
    return JSONResponse(body, status_code=problem.status, headers=problem.headers)


_JSON_REASONS = {
    "Expecting value": "thiếu giá trị hoặc giá trị không hợp lệ",
    "Expecting property name enclosed in double quotes": "tên trường phải đặt trong dấu "
    "nháy kép (và không có dấu phẩy thừa trước dấu đóng)",
    "Expecting ',' delimiter": "thiếu dấu phẩy",
    "Expecting ':' delimiter": "thiếu dấu hai chấm sau tên trường",
    "Extra data": "có nội dung thừa sau khi JSON đã kết thúc",
    "Unterminated string starting at": "chuỗi ký tự chưa có dấu nháy đóng",
    "Invalid control character at": "chuỗi ký tự chứa ký tự điều khiển (phải viết dạng \\n, "
    "\\t hoặc \\uXXXX)",
    "Invalid \\escape": "dấu gạch chéo ngược (\\) không hợp lệ trong chuỗi",
    "Invalid \\uXXXX escape": "mã \\uXXXX không hợp lệ trong chuỗi",
}


def _invalid_json(error: RequestValidationError, found: dict[str, Any]) -> ApiProblem:
    """400 saying where the syntax breaks, in lines and columns (FastAPI gives an offset)."""
    offset = found["loc"][-1] if isinstance(found["loc"][-1], int) else 0
    text = error.body if isinstance(error.body, str) else ""
    # As the json module counts: lines from 1, columns from 1, in characters.
    line = text.count("\n", 0, offset) + 1
    column = offset - text.rfind("\n", 0, offset)
    reason = _JSON_REASONS.get(str((found.get("ctx") or {}).get("error", "")), "sai cú pháp")
    where = f"dòng {line}, cột {column}"
    return ApiProblem(
        400,
        "invalid_json",
        f"Nội dung gửi lên không phải JSON hợp lệ: {reason} ({where}).",
        [{"type": "json_invalid", "line": line, "column": column, "detail": f"{where}: {reason}"}],
    )


def _field(loc: tuple[int | str, ...]) -> str:
    """``tasks.0.results`` for a body field; a parameter by its name (``limit``)."""
    return ".".join(str(p) for p in loc[1:])


def _from_validation(error: RequestValidationError) -> ApiProblem:
    errors = list(error.errors())
    for found in errors:
        if found["type"] == "json_invalid":
            return _invalid_json(error, found)
    if any(e["type"] == "missing" and tuple(e["loc"]) == ("body",) for e in errors):
        return ApiProblem(
            422,
            "missing_body",
            "Thiếu nội dung yêu cầu (JSON).",
            [{"type": "missing", "detail": "Yêu cầu này cần một nội dung JSON."}],
        )
    details = [
        {"field": _field(tuple(e["loc"])), "type": e["type"], "detail": e["msg"]} for e in errors
    ]
    extra = [d["field"] for d in details if d["type"] == "extra_forbidden"]
    if extra:
        return ApiProblem(
            422, "unknown_field", "Có trường không được hỗ trợ: " + ", ".join(extra) + ".", details
        )
    missing = [d["field"] for d in details if d["type"] == "missing"]
    if missing:
        return ApiProblem(
            422, "missing_field", "Thiếu thông tin bắt buộc: " + ", ".join(missing) + ".", details
        )
    fields = ", ".join(sorted({d["field"] or "(toàn bộ nội dung)" for d in details}))
    # Our own validators already say in Vietnamese what is wrong and with which field.
    own = [
        e["msg"] for e in errors if e["type"] in {"single_line", "control_character", "json_number"}
    ]
    explained = " " + " ".join(dict.fromkeys(own)) if own else ""
    return ApiProblem(
        422, "invalid_request", f"Dữ liệu không hợp lệ ở: {fields}.{explained}", details
    )


def _allowed_methods(request: Request) -> str | None:
    """Every method the path answers: the router's ``Allow`` names only the first route's."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(route.methods or ())
    return ", ".join(sorted(methods)) or None


def _from_http(request: Request, error: HTTPException) -> ApiProblem:
    headers = dict(error.headers or {})
    if error.status_code == 405 and (allowed := _allowed_methods(request)):
        headers["Allow"] = allowed
    if error.status_code == 400 and error.detail == UNREADABLE_BODY:
        code, message = (
            "invalid_json",
            "Nội dung gửi lên không đọc được: phải là JSON mã hóa UTF-8.",
        )
    else:
        code, message = GENERIC.get(
            error.status_code, ("http_error", "Yêu cầu không thực hiện được.")
        )
    return ApiProblem(error.status_code, code, message, headers=headers)


async def require_json_body(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """415 for a body that is not declared JSON, instead of a puzzling validation error."""
    length = request.headers.get("content-length", "")
    has_body = (length.isdigit() and int(length) > 0) or "transfer-encoding" in request.headers
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method in {"POST", "PUT", "PATCH"} and has_body and media_type != "application/json":
        return problem_response(ApiProblem(415, *GENERIC[415]))
    return await call_next(request)


def install_error_handlers(app: FastAPI) -> None:
    async def on_problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return problem_response(exc)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(_from_validation(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return problem_response(_from_http(request, exc))

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
