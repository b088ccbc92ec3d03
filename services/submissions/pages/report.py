"""An officer's report form (fill in, save a draft, resume, file) and the receipt page.

Filing goes through the JSON API's own route function (``web.create_submission``): the same
checks, admission control, idempotency and audit as a report sent by a program. What the form
adds is the conversion of typed text to the API's body and every problem put back next to its
field (``report_form``).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from contracts.plan import Plan, Unit
from services.common.auth import Principal
from services.common.errors import ApiProblem
from services.common.periods import Period, PeriodState
from services.submissions import web
from services.submissions.access import AuditDep, ensure_files, ensure_reads, report_not_found
from services.submissions.audit import Action, AuditTrail
from services.submissions.handlers import Intake
from services.submissions.models import SubmissionCreate, SubmissionReceipt
from services.submissions.pages import attachments as files
from services.submissions.pages.attachments import CHOSEN_FIELD, FILE_FIELD
from services.submissions.pages.base import (
    CSRF_FIELD,
    DraftsDep,
    PageRoute,
    Poster,
    Viewer,
    form_of,
    local,
    redirect,
    render,
)
from services.submissions.report_form import (
    FORM_LEVEL,
    STATUS_LABELS,
    SUBMITTER_NAME,
    field_id,
    field_labels,
    indicator_problems,
    sections,
    shown_answer,
    to_body,
    validation_problems,
    values_of,
)
from services.submissions.web import IntakeDep

router = APIRouter(route_class=PageRoute, include_in_schema=False)

FormDep = Annotated[dict[str, str], Depends(form_of)]
KEY_FIELD, ACTION_FIELD = "idempotency_key", "action"
_KEY = re.compile(r"^[A-Za-z0-9-]{16,64}$")
IN_PROGRESS_WAITS = 20
"""Half-second waits for the first of two clicks to finish before the second is answered."""


def report_path(period_id: str) -> str:
    return f"/periods/{period_id}/report"


def receipt_path(period_id: str, submission_id: str) -> str:
    return f"/periods/{period_id}/submissions/{submission_id}/receipt"


def _new_key() -> str:
    """One per rendering of the form: a double click files once."""
    return uuid.uuid4().hex


async def _filing(
    request: Request, principal: Principal, intake: Intake, audit: AuditTrail, period_id: str
) -> tuple[Plan, Period, Unit]:
    """The period and the officer's own unit, or the page's 403/404."""
    await ensure_files(audit, principal, request, principal.unit_id or "", period_id)
    found = intake.catalog.period(period_id)
    unit = found[0].unit(principal.unit_id or "") if found else None
    if found is None or unit is None or unit not in found[0].reporting_units():
        raise ApiProblem(404, "unknown_period", "Không tìm thấy kỳ báo cáo này của đơn vị.")
    return found[0], found[1], unit


async def _form_page(
    request: Request,
    intake: Intake,
    plan: Plan,
    period: Period,
    unit: Unit,
    values: Mapping[str, str],
    *,
    key: str,
    problems: Mapping[str, str] | None = None,
    status: int = 200,
    notice: str = "",
    draft_at: str = "",
    revision: int | None = None,
) -> Response:
    problems = problems or {}
    found = sections(plan, unit.id)
    labels = {
        **field_labels(found),
        FILE_FIELD: "Tệp đính kèm",
        CHOSEN_FIELD: "Tệp đính kèm",
    }
    desk = files.desk_of(request)
    summary = [
        (f"#{field_id(name)}" if name != FORM_LEVEL else "", labels.get(name, ""), message)
        for name, message in problems.items()
    ]
    now = intake.clock.now()
    return render(
        request,
        "report_form.html",
        status=status,
        title=f"{period.title}: báo cáo của {unit.name}",
        plan=plan,
        period=period,
        unit=unit,
        state=period.state(now),
        states=PeriodState,
        sections=found,
        values=values,
        problems=problems,
        summary=summary,
        statuses=STATUS_LABELS,
        key=key,
        notice=notice,
        draft_at=draft_at,
        revision=revision,
        files=await files.rows(desk, period.id, unit.id, values.get(CHOSEN_FIELD)),
        file_hint=files.hint(desk),
        due_local=local(period.due_at, plan.tz, "%d/%m/%Y"),
        closes_local=local(period.closes_at, plan.tz, "%d/%m/%Y"),
        opens_local=local(period.opens_at, plan.tz, "%d/%m/%Y"),
    )


@router.get("/periods/{period_id}/report")
async def report_form(
    period_id: str,
    request: Request,
    principal: Viewer,
    intake: IntakeDep,
    drafts: DraftsDep,
    audit: AuditDep,
    saved: bool = False,
    uploaded: bool = False,
    removed: bool = False,
) -> Response:
    plan, period, unit = await _filing(request, principal, intake, audit, period_id)
    draft = await drafts.get(period.id, unit.id)
    head = await intake.store.head(period.id, unit.id)
    values: dict[str, str] = {}
    notice = ""
    if draft is not None:
        values = dict(draft.values)
        if saved:
            notice = "Đã lưu nháp."
        elif uploaded:
            notice = "Đã tải tệp lên; nội dung đang nhập đã được lưu nháp."
        elif removed:
            notice = "Đã xóa tệp; nội dung đang nhập đã được lưu nháp."
        else:
            notice = "Đang tiếp tục bản nháp đã lưu."
    elif head is not None:
        filed = await intake.store.get(period.id, head["submission_id"])
        values = values_of(filed["tasks"], plan) if filed else {}
        ids = [a["attachment_id"] for a in (filed or {}).get("attachments") or []]
        values[CHOSEN_FIELD] = ",".join(ids)
        notice = (
            f"Đơn vị đã gửi báo cáo kỳ này (lần {head['revision']}, số tiếp nhận "
            f"{head['receipt_no']}). Nội dung dưới đây là bản đã gửi; gửi lại sẽ tạo phiên bản "
            "mới."
        )
    values.setdefault(SUBMITTER_NAME, principal.name)
    return await _form_page(
        request,
        intake,
        plan,
        period,
        unit,
        values,
        key=_new_key(),
        notice=notice,
        draft_at=local(draft.saved_at, plan.tz) if draft else "",
        revision=head["revision"] if head else None,
    )


@router.post("/periods/{period_id}/report")
async def file_report(
    period_id: str,
    request: Request,
    principal: Poster,
    intake: IntakeDep,
    drafts: DraftsDep,
    audit: AuditDep,
    form: FormDep,
) -> Response:
    plan, period, unit = await _filing(request, principal, intake, audit, period_id)
    key = form.get(KEY_FIELD, "")
    key = key if _KEY.match(key) else _new_key()
    raw = await request.form()
    chosen = [v for v in raw.getlist(CHOSEN_FIELD) if isinstance(v, str) and v]
    skipped = (CSRF_FIELD, KEY_FIELD, ACTION_FIELD, FILE_FIELD, CHOSEN_FIELD)
    values = {k: v for k, v in form.items() if k not in skipped}
    values[CHOSEN_FIELD] = ",".join(chosen)
    action = form.get(ACTION_FIELD, "submit")

    async def save_draft() -> None:
        await drafts.save(period.id, unit.id, values, principal.subject, intake.clock.now())
        await audit.record(
            Action.DRAFT_SAVED,
            actor=principal,
            request=request,
            unit_id=unit.id,
            period_id=period.id,
        )

    async def again(problems: dict[str, str], status: int) -> Response:
        return await _form_page(
            request, intake, plan, period, unit, values, key=key, problems=problems, status=status
        )

    if action == "draft":
        await save_draft()
        return redirect(f"{report_path(period.id)}?saved=1")
    if action == "upload":
        upload = raw.get(FILE_FIELD)
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await again({FILE_FIELD: "Chưa chọn tệp nào để tải lên."}, 422)
        try:
            stored = await files.upload(
                request, files.desk_of(request), audit, principal, period, unit.id, upload
            )
        except ApiProblem as problem:
            return await again({FILE_FIELD: problem.message}, problem.status)
        values[CHOSEN_FIELD] = ",".join([*chosen, stored.attachment_id])
        await save_draft()
        return redirect(f"{report_path(period.id)}?uploaded=1")
    if action.startswith("delete:"):
        attachment_id = action.removeprefix("delete:")
        try:
            await files.remove(
                request, files.desk_of(request), audit, principal, period.id, unit.id, attachment_id
            )
        except ApiProblem as problem:
            return await again({CHOSEN_FIELD: problem.message}, problem.status)
        values[CHOSEN_FIELD] = ",".join(i for i in chosen if i != attachment_id)
        await save_draft()
        return redirect(f"{report_path(period.id)}?removed=1")
    converted = to_body(plan, period.id, unit.id, values)
    converted.body["attachments"] = chosen
    problems = dict(converted.problems)
    pending = form.get(FILE_FIELD, "")
    if pending:
        # A file chosen, then "Gửi báo cáo" clicked: the form went without it.
        problems[FILE_FIELD] = (
            f"Tệp “{pending}” đã được chọn nhưng chưa được tải lên: bấm “Tải tệp lên” trước "
            "khi gửi báo cáo (hoặc bỏ chọn tệp)."
        )
    body: SubmissionCreate | None = None
    try:
        body = SubmissionCreate.model_validate(converted.body)
    except ValidationError as error:
        for name, message in validation_problems(error, converted).items():
            problems.setdefault(name, message)
    for name, message in indicator_problems(converted).items():
        problems.setdefault(name, message)
    if problems or body is None:
        return await again(problems, 422)
    try:
        receipt = await _file(body, request, intake, principal, audit, key)
    except ApiProblem as problem:
        if problem.code == "idempotency_key_reused":
            # The form was sent before with other content (back button): a new version.
            key = _new_key()
        where = CHOSEN_FIELD if problem.code == "unknown_attachment" else FORM_LEVEL
        return await again({where: problem.message}, problem.status)
    await drafts.delete(period.id, unit.id)
    return redirect(receipt_path(period.id, str(receipt.submission_id)))


async def _file(
    body: SubmissionCreate,
    request: Request,
    intake: Intake,
    principal: Principal,
    audit: AuditTrail,
    key: str,
) -> SubmissionReceipt:
    """File as the API does; a second click waits for the first and gets its receipt."""
    for _ in range(IN_PROGRESS_WAITS):
        try:
            return await web.create_submission(
                body, request, Response(), intake, principal, audit, idempotency_key=key
            )
        except ApiProblem as problem:
            if problem.code != "request_in_progress":
                raise
            await asyncio.sleep(0.5)
    return await web.create_submission(
        body, request, Response(), intake, principal, audit, idempotency_key=key
    )


@router.get("/periods/{period_id}/submissions/{submission_id}/receipt")
async def receipt(
    period_id: str,
    submission_id: str,
    request: Request,
    principal: Viewer,
    intake: IntakeDep,
    audit: AuditDep,
) -> Response:
    doc = await intake.store.get(period_id, submission_id)
    if doc is None:
        raise report_not_found()
    await ensure_reads(
        audit, principal, request, doc["unit_id"], period_id, missing=report_not_found()
    )
    found = intake.catalog.period(period_id)
    if found is None:
        raise ApiProblem(404, "unknown_period", "Không tìm thấy kỳ báo cáo này.")
    plan, period = found
    tasks: list[dict[str, Any]] = []
    for report in doc["tasks"]:
        task = next((t for t in plan.tasks if t.id == report["task_id"]), None)
        if task is None:
            continue
        answers = [
            (indicator.name, shown_answer(indicator, answer))
            for answer in report.get("indicators") or []
            if (indicator := plan.indicator(answer["code"])) is not None
        ]
        tasks.append(
            {
                "task": task,
                "status": STATUS_LABELS.get(report["status"], report["status"]),
                "answers": answers,
            }
        )
    received = doc["received_at"]
    offset = local(received, plan.tz, "%z")
    return render(
        request,
        "receipt.html",
        title=f"Biên nhận {doc['receipt_no']}",
        doc=doc,
        plan=plan,
        period=period,
        unit=plan.unit(doc["unit_id"]),
        tasks=tasks,
        received_local=local(received, plan.tz),
        received_iso=local(received, plan.tz, "%Y-%m-%dT%H:%M:%S%z"),
        utc_offset=f"UTC{offset[:3]}:{offset[3:]}" if offset else "",
        due_local=local(doc["due_at"], plan.tz, "%d/%m/%Y"),
        submitter=(doc.get("submitted_by") or {}).get("name", ""),
        attached=[
            (a["filename"], files.size_text(int(a["size"]))) for a in doc.get("attachments") or []
        ],
        is_officer=principal.can_file_for(doc["unit_id"]),
    )
