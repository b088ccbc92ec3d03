"""Files on the report form: upload with the form, list, choose which go with the report,
delete a draft.

The report form is posted as ``multipart/form-data`` only by its "Tải tệp lên" button
(``formenctype``), so one click uploads the file and keeps what was typed (saved as a draft).
The upload is stored by the attachments store with the API's limits and checks (type by
content, size per file and per unit and period); the page answers the same problems in the
same words (``attachments_api``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import UploadFile

from services.common.auth import Principal
from services.common.errors import ApiProblem, not_ready
from services.common.periods import Period
from services.submissions import attachments_api
from services.submissions.attachment_store import AttachmentFiled, NewAttachment
from services.submissions.attachments import (
    ALLOWED_TEXT,
    Attachment,
    AttachmentState,
)
from services.submissions.attachments_api import AttachmentDesk
from services.submissions.audit import Action, AuditTrail

FILE_FIELD, CHOSEN_FIELD = "file", "attach"
CHUNK = 64 * 1024


def desk_of(request: Request) -> AttachmentDesk:
    found: AttachmentDesk | None = getattr(request.app.state, "attachments", None)
    if found is None:
        raise not_ready()
    return found


def size_text(size: int) -> str:
    """'820 KB', '2,5 MB'."""
    if size < 1_000_000:
        return f"{max(1, round(size / 1000))} KB"
    return f"{size / 1_000_000:.1f}".rstrip("0").rstrip(".").replace(".", ",") + " MB"


@dataclass(frozen=True)
class FileRow:
    attachment: Attachment
    chosen: bool

    @property
    def filed(self) -> bool:
        return self.attachment.state is AttachmentState.SUBMITTED

    @property
    def size(self) -> str:
        return size_text(self.attachment.size)

    @property
    def download_url(self) -> str:
        a = self.attachment
        return f"/api/v1/periods/{a.period_id}/units/{a.unit_id}/attachments/{a.attachment_id}"


def chosen_ids(value: str | None, found: list[Attachment]) -> set[str]:
    """The files ticked: as saved with the form, or else every file of the unit."""
    if value is None:
        return {a.attachment_id for a in found}
    return {i for i in value.split(",") if i}


async def rows(
    desk: AttachmentDesk, period_id: str, unit_id: str, chosen: str | None
) -> list[FileRow]:
    found = await desk.store.for_unit(period_id, unit_id)
    ticked = chosen_ids(chosen, found)
    return [FileRow(a, a.attachment_id in ticked) for a in found]


def hint(desk: AttachmentDesk) -> str:
    return (
        f"Bản quét văn bản có chữ ký, biểu số liệu...: {ALLOWED_TEXT}; mỗi tệp tối đa "
        f"{size_text(desk.max_file_bytes)}, tất cả tệp của báo cáo tối đa "
        f"{size_text(desk.max_unit_bytes)}. Chọn tệp rồi bấm “Tải tệp lên”: nội dung đang nhập "
        "được lưu nháp cùng lúc."
    )


async def upload(
    request: Request,
    desk: AttachmentDesk,
    audit: AuditTrail,
    principal: Principal,
    period: Period,
    unit_id: str,
    file: UploadFile,
) -> Attachment:
    """Store the uploaded file as the API's upload does, or the API's problem."""
    attachments_api.ensure_open(desk, period)
    room = await attachments_api.room_for(desk, period, unit_id)

    async def chunks() -> AsyncIterator[bytes]:
        while data := await file.read(CHUNK):
            yield data

    new = NewAttachment(period.id, unit_id, file.filename, principal.subject, desk.clock.now())
    stored = await attachments_api.keep(desk, new, chunks(), room)
    await attachments_api.admit(desk, audit, principal, request, stored)
    return stored


async def remove(
    request: Request,
    desk: AttachmentDesk,
    audit: AuditTrail,
    principal: Principal,
    period_id: str,
    unit_id: str,
    attachment_id: str,
) -> Attachment:
    """Delete a file not yet filed, or the API's problem."""
    found = await desk.store.get(period_id, unit_id, attachment_id)
    if found is None:
        raise ApiProblem(404, "attachment_not_found", "Không tìm thấy tệp đính kèm này.")
    try:
        await desk.store.delete(period_id, unit_id, attachment_id)
    except AttachmentFiled:
        raise ApiProblem(
            409,
            "attachment_filed",
            "Tệp này thuộc một báo cáo đã nộp nên không xóa được; báo cáo bổ sung có thể "
            "đính kèm tệp khác.",
        ) from None
    await audit.record(
        Action.ATTACHMENT_REMOVED,
        actor=principal,
        request=request,
        unit_id=unit_id,
        period_id=period_id,
        attachment_id=attachment_id,
        size=found.size,
    )
    return found
