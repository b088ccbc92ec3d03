"""Every HTTP error answers ``{"code", "message"}``: a code for machines, Vietnamese for people."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

GENERIC = {
    400: ("bad_request", "Yêu cầu không hợp lệ."),
    404: ("not_found", "Không tìm thấy địa chỉ được yêu cầu."),
    405: ("method_not_allowed", "Phương thức không được hỗ trợ tại địa chỉ này."),
    413: ("payload_too_large", "Nội dung gửi lên quá lớn."),
    415: ("unsupported_media_type", "Chỉ nhận nội dung dạng JSON (application/json)."),
}


class ApiError(BaseModel):
    """The body of every error answer."""

    code: str = Field(description="stable, for machines (e.g. ``not_signed_in``)")
    message: str = Field(description="in Vietnamese, for people")
    details: list[dict[str, Any]] = Field(default_factory=list)


PROBLEM_TEXT = {
    400: "Yêu cầu không hợp lệ (ví dụ JSON sai cú pháp).",
    401: "Chưa đăng nhập, hoặc phiên/mã truy cập không hợp lệ hay đã hết hạn.",
    403: "Đã đăng nhập nhưng không có quyền (hoặc thiếu mã CSRF).",
    404: "Không tìm thấy (hoặc thuộc đơn vị khác).",
    405: "Phương thức không được hỗ trợ.",
    409: "Xung đột với trạng thái hiện tại.",
    413: "Nội dung quá lớn.",
    415: "Kiểu nội dung không được hỗ trợ.",
    422: "Dữ liệu không hợp lệ.",
    429: "Quá nhiều yêu cầu; xem Retry-After.",
    503: "Dịch vụ đang khởi động hoặc quá tải; xem Retry-After.",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status it can answer, with the error body.

    ``@router.get("/x", responses=problems(401, 404))``.
    """
    return {
        status: {"model": ApiError, "description": PROBLEM_TEXT.get(status, "Lỗi.")}
        for status in statuses
    }


class ApiProblem(Exception):
    """An answer other than success, raised anywhere below the web layer."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []
        self.headers = headers or {}


def not_ready() -> ApiProblem:
    """Asked before start-up wired the service to MongoDB: the same answer from every service."""
    return ApiProblem(503, "not_ready", "Dịch vụ đang khởi động, vui lòng thử lại sau giây lát.")


def problem_response(problem: ApiProblem) -> JSONResponse:
    body: dict[str, Any] = {"code": problem.code, "message": problem.message}
    if problem.details:
        body["details"] = problem.details
    return JSONResponse(body, status_code=problem.status, headers=problem.headers)


def _from_validation(error: RequestValidationError) -> ApiProblem:
    errors = list(error.errors())
    details = [
        {"field": ".".join(str(p) for p in e["loc"][1:]), "type": e["type"], "detail": e["msg"]}
        for e in errors
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        return ApiProblem(400, "invalid_json", "Nội dung gửi lên không phải JSON hợp lệ.", details)
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
    fields = ", ".join(sorted({d["field"] or "(toàn bộ)" for d in details}))
    # Our own validators already say in Vietnamese what is wrong and with which field.
    own = [
        e["msg"] for e in errors if e["type"] in {"single_line", "control_character", "json_number"}
    ]
    explained = " " + " ".join(dict.fromkeys(own)) if own else ""
    return ApiProblem(
        422, "invalid_request", f"Dữ liệu không hợp lệ ở: {fields}.{explained}", details
    )


async def require_json_body(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """415 for a body that is not declared JSON, instead of a puzzling validation error."""
    has_body = int(request.headers.get("content-length") or 0) > 0 or (
        "transfer-encoding" in request.headers
    )
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

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        code, message = GENERIC.get(
            exc.status_code, ("http_error", "Yêu cầu không thực hiện được.")
        )
        return problem_response(ApiProblem(exc.status_code, code, message))

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
