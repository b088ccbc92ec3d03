"""Attachments over HTTP: upload (streamed), list, download, delete.

An upload is ``multipart/form-data`` with one file field, ``file``. Its body is never held
whole: the form is parsed as it arrives (python-multipart's push parser) and the file's bytes
go on to GridFS, checked and counted on the way. Three limits answer 413: the request's
``Content-Length`` before a byte is read (``BodySizeLimit``, see :func:`upload_route`), the
file's size as soon as it passes ``max_attachment_bytes``, and what the unit keeps for the
period (``max_report_attachment_bytes``).

Who may do what is the reports' rule: the unit's own officer uploads and deletes; whoever may
read the unit's reports lists and downloads. Another unit's attachments answer 404 (audited).
"""

from __future__ import annotations

import collections
import datetime as dt
import unicodedata
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from contracts.plan import Plan
from services.common.auth import Principal, SignedIn
from services.common.clock import Clock
from services.common.errors import ApiProblem, not_ready, problems
from services.common.http import StreamedRoute, megabytes
from services.common.periods import Period, PeriodState
from services.common.reference import Catalog
from services.submissions.access import AuditDep, ensure_files, ensure_reads
from services.submissions.attachment_store import (
    AttachmentFiled,
    AttachmentStore,
    AttachmentTooLarge,
    NewAttachment,
)
from services.submissions.attachments import (
    ALLOWED_TEXT,
    Attachment,
    EmptyFile,
    MediaType,
    MismatchedFileType,
    UnsupportedFileType,
)
from services.submissions.audit import Action, AuditTrail

PATH = "/periods/{period_id}/units/{unit_id}/attachments"
UPLOAD_PATH = r"/api/v1/periods/[^/]+/units/[^/]+/attachments"
FORM_OVERHEAD = 64 * 1024
"""What a form may add to its file: boundaries, part headers (a long name), small fields."""
FILE_FIELD = "file"


@dataclass(frozen=True)
class AttachmentDesk:
    """What the routes need, kept in ``app.state.attachments`` by the wiring."""

    store: AttachmentStore
    catalog: Catalog
    clock: Clock
    max_file_bytes: int
    max_unit_bytes: int
    """All files of one unit for one period."""


def upload_route(max_file_bytes: int) -> StreamedRoute:
    """The upload route for ``BodySizeLimit``: its own limit, read as it arrives."""
    return StreamedRoute(UPLOAD_PATH, max_file_bytes + FORM_OVERHEAD, stated_bytes=max_file_bytes)


def _desk(request: Request) -> AttachmentDesk:
    found: AttachmentDesk | None = getattr(request.app.state, "attachments", None)
    if found is None:
        raise not_ready()
    return found


DeskDep = Annotated[AttachmentDesk, Depends(_desk)]

router = APIRouter(prefix="/api/v1", tags=["attachments"])


class AttachmentPublic(BaseModel):
    attachment_id: str
    period_id: str
    unit_id: str
    filename: str
    media_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: dt.datetime
    state: Literal["draft", "submitted"]
    """draft: may be deleted; submitted: part of a filed report, kept as filed."""
    download_url: str


class AttachmentList(BaseModel):
    attachments: list[AttachmentPublic]
    total_bytes: int
    max_total_bytes: int
    max_file_bytes: int


def _public(attachment: Attachment) -> AttachmentPublic:
    return AttachmentPublic(
        **{k: v for k, v in attachment.__dict__.items() if k != "state"},
        state=attachment.state.value,
        download_url=f"/api/v1/periods/{attachment.period_id}/units/{attachment.unit_id}"
        f"/attachments/{attachment.attachment_id}",
    )


def _unit_period(desk: AttachmentDesk, period_id: str, unit_id: str) -> tuple[Plan, Period]:
    found = desk.catalog.period(period_id)
    if found is None:
        raise ApiProblem(404, "unknown_period", f"Không tìm thấy kỳ báo cáo “{period_id}”.")
    plan, period = found
    unit = plan.unit(unit_id)
    if unit is None or unit not in plan.reporting_units():
        raise ApiProblem(404, "unknown_unit", f"Đơn vị “{unit_id}” không báo cáo kỳ này.")
    return plan, period


def _not_found() -> ApiProblem:
    return ApiProblem(404, "attachment_not_found", "Không tìm thấy tệp đính kèm này.")


UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {
                        FILE_FIELD: {
                            "type": "string",
                            "format": "binary",
                            "description": f"{ALLOWED_TEXT}; loại tệp xác định theo nội dung",
                        }
                    },
                }
            }
        },
    }
}


@router.post(
    PATH,
    status_code=201,
    response_model=AttachmentPublic,
    summary="Đính kèm một tệp (bản quét có chữ ký...) vào báo cáo của đơn vị",
    responses=problems(
        400,
        401,
        403,
        404,
        409,
        413,
        415,
        422,
        why={
            400: "Biểu mẫu multipart/form-data sai cú pháp hoặc bị cắt ngang (malformed_form).",
            403: "Không phải cán bộ của đơn vị (forbidden), hoặc thiếu mã CSRF.",
            404: "Kỳ báo cáo hay đơn vị không có, hoặc là đơn vị khác.",
            409: "Kỳ báo cáo chưa mở (period_not_open).",
            413: "Yêu cầu quá lớn (payload_too_large), tệp quá lớn (attachment_too_large) "
            "hoặc tổng dung lượng tệp của báo cáo vượt hạn mức (attachments_total_too_large).",
            415: "Không gửi dạng multipart/form-data (unsupported_media_type), hoặc nội dung tệp "
            f"không phải {ALLOWED_TEXT} hay trái với đuôi tên tệp (unsupported_file_type).",
            422: "Không có trường “file” hoặc có hai tệp (invalid_form); tệp rỗng (empty_file).",
        },
    ),
    openapi_extra=UPLOAD_BODY,
)
async def upload_attachment(
    period_id: str,
    unit_id: str,
    request: Request,
    response: Response,
    desk: DeskDep,
    principal: SignedIn,
    audit: AuditDep,
) -> AttachmentPublic:
    await ensure_files(audit, principal, request, unit_id, period_id)
    _, period = _unit_period(desk, period_id, unit_id)
    ensure_open(desk, period)
    boundary = _boundary(request)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > desk.max_file_bytes + FORM_OVERHEAD:
        raise _file_too_large(desk)  # normally refused before this by BodySizeLimit
    room = await room_for(desk, period, unit_id)
    form = FormStream(boundary, request.stream())
    try:
        filename = await form.find_file(FILE_FIELD)
    except FormError as error:
        raise _form_problem(error) from None
    new = NewAttachment(period_id, unit_id, filename, principal.subject, desk.clock.now())
    try:
        stored = await keep(desk, new, form.data(), room)
    except FormError as error:
        raise _form_problem(error) from None
    try:
        await form.finish(FILE_FIELD)
    except FormError as error:
        await desk.store.delete(period_id, unit_id, stored.attachment_id)
        raise _form_problem(error) from None
    await admit(desk, audit, principal, request, stored)
    public = _public(stored)
    response.headers["Location"] = public.download_url
    return public


def ensure_open(desk: AttachmentDesk, period: Period) -> None:
    if period.state(desk.clock.now()) is PeriodState.UPCOMING:
        raise ApiProblem(409, "period_not_open", f"{period.title} chưa mở nhận báo cáo.")


async def room_for(desk: AttachmentDesk, period: Period, unit_id: str) -> int:
    """How many bytes the unit may still attach in the period, or the API's problem."""
    room = desk.max_unit_bytes - await desk.store.total_size(period.id, unit_id)
    if room <= 0:
        raise _unit_full(desk)
    return room


async def keep(
    desk: AttachmentDesk, new: NewAttachment, chunks: AsyncIterator[bytes], room: int
) -> Attachment:
    """Store an upload within the file and unit limits, or the API's problem."""
    try:
        return await desk.store.put(new, chunks, limit=min(desk.max_file_bytes, room))
    except AttachmentTooLarge as error:
        full = error.limit < desk.max_file_bytes
        raise _unit_full(desk) if full else _file_too_large(desk) from None
    except UnsupportedFileType as error:
        details = (
            [{"field": FILE_FIELD, "claimed": error.claimed.value, "found": error.found}]
            if isinstance(error, MismatchedFileType)
            else []
        )
        raise ApiProblem(415, error.code, str(error), details) from None
    except EmptyFile as error:
        raise ApiProblem(422, error.code, str(error)) from None


async def admit(
    desk: AttachmentDesk,
    audit: AuditTrail,
    principal: Principal,
    request: Request,
    stored: Attachment,
) -> None:
    """Keep a stored upload (audited) unless the unit's uploads overran its budget together."""
    if await desk.store.total_size(stored.period_id, stored.unit_id) > desk.max_unit_bytes:
        # Uploads of one unit running side by side passed the budget together.
        await desk.store.delete(stored.period_id, stored.unit_id, stored.attachment_id)
        raise _unit_full(desk)
    await audit.record(
        Action.ATTACHMENT_ADDED,
        actor=principal,
        request=request,
        unit_id=stored.unit_id,
        period_id=stored.period_id,
        attachment_id=stored.attachment_id,
        size=stored.size,
        sha256=stored.sha256,
        media_type=stored.media_type,
    )


def _form_problem(error: FormError) -> ApiProblem:
    if isinstance(error, MalformedForm):
        return ApiProblem(400, "malformed_form", str(error))
    return ApiProblem(422, "invalid_form", str(error))


def _file_too_large(desk: AttachmentDesk) -> ApiProblem:
    return ApiProblem(
        413,
        "attachment_too_large",
        f"Tệp đính kèm quá lớn: mỗi tệp tối đa {megabytes(desk.max_file_bytes)}.",
    )


def _unit_full(desk: AttachmentDesk) -> ApiProblem:
    return ApiProblem(
        413,
        "attachments_total_too_large",
        "Tổng dung lượng tệp đính kèm của báo cáo vượt quá "
        f"{megabytes(desk.max_unit_bytes)}; hãy xóa bớt tệp chưa nộp hoặc giảm dung lượng tệp.",
    )


def _boundary(request: Request) -> bytes:
    media_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary", b"")
    if media_type != b"multipart/form-data" or not boundary:
        raise ApiProblem(
            415,
            "unsupported_media_type",
            "Tệp đính kèm phải được gửi dạng multipart/form-data, trong trường “file”.",
        )
    return boundary


@router.get(
    PATH,
    response_model=AttachmentList,
    summary="Các tệp đính kèm của đơn vị trong kỳ báo cáo",
    responses=problems(401, 403, 404),
)
async def list_attachments(
    period_id: str,
    unit_id: str,
    request: Request,
    desk: DeskDep,
    principal: SignedIn,
    audit: AuditDep,
) -> AttachmentList:
    await ensure_reads(audit, principal, request, unit_id, period_id)
    _unit_period(desk, period_id, unit_id)
    found = await desk.store.for_unit(period_id, unit_id)
    return AttachmentList(
        attachments=[_public(a) for a in found],
        total_bytes=sum(a.size for a in found),
        max_total_bytes=desk.max_unit_bytes,
        max_file_bytes=desk.max_file_bytes,
    )


DOWNLOAD_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Nội dung tệp, đúng như đã gửi lên",
        "content": {t.value: {"schema": {"type": "string", "format": "binary"}} for t in MediaType},
    }
}


@router.get(
    PATH + "/{attachment_id}",
    response_class=StreamingResponse,
    summary="Tải về một tệp đính kèm",
    responses={**DOWNLOAD_CONTENT, **problems(401, 403, 404)},
)
async def download_attachment(
    period_id: str,
    unit_id: str,
    attachment_id: str,
    request: Request,
    desk: DeskDep,
    principal: SignedIn,
    audit: AuditDep,
) -> StreamingResponse:
    await ensure_reads(audit, principal, request, unit_id, period_id)
    _unit_period(desk, period_id, unit_id)
    opened = await desk.store.open(period_id, unit_id, attachment_id)
    if opened is None:
        raise _not_found()
    attachment, chunks = opened
    return StreamingResponse(
        chunks,
        media_type=attachment.media_type,
        headers={
            "Content-Length": str(attachment.size),
            "Content-Disposition": content_disposition(attachment.filename),
            "ETag": f'"{attachment.sha256}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "Cache-Control": "private, no-store",
        },
    )


@router.delete(
    PATH + "/{attachment_id}",
    status_code=204,
    response_class=Response,
    summary="Xóa một tệp đính kèm chưa nộp",
    responses=problems(
        401,
        403,
        404,
        409,
        why={409: "Tệp thuộc một báo cáo đã nộp, được giữ nguyên (attachment_filed)."},
    ),
)
async def delete_attachment(
    period_id: str,
    unit_id: str,
    attachment_id: str,
    request: Request,
    desk: DeskDep,
    principal: SignedIn,
    audit: AuditDep,
) -> Response:
    await ensure_files(audit, principal, request, unit_id, period_id)
    _unit_period(desk, period_id, unit_id)
    found = await desk.store.get(period_id, unit_id, attachment_id)
    try:
        deleted = await desk.store.delete(period_id, unit_id, attachment_id)
    except AttachmentFiled:
        raise ApiProblem(
            409,
            "attachment_filed",
            "Tệp này thuộc một báo cáo đã nộp nên không xóa được; báo cáo bổ sung có thể "
            "đính kèm tệp khác.",
        ) from None
    if not deleted:
        raise _not_found()
    await audit.record(
        Action.ATTACHMENT_REMOVED,
        actor=principal,
        request=request,
        unit_id=unit_id,
        period_id=period_id,
        attachment_id=attachment_id,
        size=found.size if found else None,
    )
    return Response(status_code=204)


# --- Content-Disposition --------------------------------------------------------------------


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` for old clients and the exact name in
    ``filename*`` (RFC 6266, RFC 5987), so nothing in the name can break out of the header."""
    encoded = urllib.parse.quote(filename, safe="")
    return f"attachment; filename=\"{ascii_filename(filename)}\"; filename*=UTF-8''{encoded}"


def ascii_filename(filename: str) -> str:
    """Vietnamese without its marks (``Báo cáo đợt 1`` -> ``Bao cao dot 1``), anything else
    outside printable ASCII, quotes and backslashes as ``_``."""
    plain = unicodedata.normalize("NFKD", filename.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in plain)


# --- multipart/form-data as it arrives ------------------------------------------------------


class FormError(Exception):
    """The form is not the one expected: no ``file`` field, or two."""


class MalformedForm(FormError):
    """The body is not well-formed ``multipart/form-data`` (bad syntax, cut short)."""


class FormStream:
    """A ``multipart/form-data`` body read as it arrives.

    The push parser calls back synchronously for each piece of the chunk it is given; the
    pieces queue up here and are handed out one by one, so memory holds at most one chunk as
    the server delivered it (plus the part headers, which the parser caps).
    """

    def __init__(self, boundary: bytes, body: AsyncIterator[bytes]) -> None:
        self._body = body
        self._queue: collections.deque[tuple[str, Any]] = collections.deque()
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._complete = False
        self._exhausted = False
        try:
            self._parser = MultipartParser(
                boundary,
                callbacks={
                    "on_part_begin": self._headers.clear,
                    "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
                    "on_header_value": lambda d, s, e: self._value.extend(d[s:e]),
                    "on_header_end": self._header_end,
                    "on_headers_finished": lambda: self._queue.append(
                        ("part", dict(self._headers))
                    ),
                    "on_part_data": lambda d, s, e: self._queue.append(("data", d[s:e])),
                    "on_part_end": lambda: self._queue.append(("end", None)),
                    "on_end": self._end,
                },
            )
        except FormParserError as error:
            raise MalformedForm(f"Biểu mẫu gửi lên không hợp lệ ({error}).") from None

    def _header_end(self) -> None:
        self._headers[self._field.decode("latin-1").strip().lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _end(self) -> None:
        self._complete = True

    async def _next(self) -> tuple[str, Any] | None:
        while not self._queue:
            if self._exhausted:
                return None
            try:
                chunk = await anext(self._body)
            except StopAsyncIteration:
                self._exhausted = True
                if not self._complete:
                    raise MalformedForm("Biểu mẫu gửi lên bị cắt ngang, chưa trọn vẹn.") from None
                continue
            try:
                self._parser.write(chunk)
            except FormParserError as error:
                raise MalformedForm(f"Biểu mẫu gửi lên không hợp lệ ({error}).") from None
        return self._queue.popleft()

    async def find_file(self, field: str) -> str | None:
        """Skip to the part named ``field``; its file name as sent (None if it has none)."""
        while (event := await self._next()) is not None:
            kind, headers = event
            if kind != "part":
                continue
            name, filename = _disposition(headers)
            if name == field:
                return filename
        raise FormError(f"Biểu mẫu không có trường tệp “{field}”.")

    async def data(self) -> AsyncIterator[bytes]:
        """The bytes of the part found last, piece by piece."""
        while (event := await self._next()) is not None:
            kind, payload = event
            if kind == "end":
                return
            if kind == "data" and payload:
                yield payload
        raise MalformedForm("Biểu mẫu gửi lên bị cắt ngang, chưa trọn vẹn.")

    async def finish(self, field: str) -> None:
        """Read the rest: other fields are ignored, a second ``field`` is refused."""
        while (event := await self._next()) is not None:
            kind, headers = event
            if kind == "part" and _disposition(headers)[0] == field:
                raise FormError(f"Mỗi lần chỉ gửi một tệp trong trường “{field}”.")


def _disposition(headers: dict[str, bytes]) -> tuple[str | None, str | None]:
    """(field name, file name) of a part; names are UTF-8, as browsers send them."""
    _, options = parse_options_header(headers.get("content-disposition", b""))
    name = options.get(b"name")
    filename = options.get(b"filename")
    return (
        name.decode("utf-8", errors="replace") if name is not None else None,
        filename.decode("utf-8", errors="replace") if filename is not None else None,
    )
